/**
 * What a unit needs from its machine: CPUs (in milli-CPUs) and memory (bytes), from its own systemd
 * settings (`CPUQuota=`, `MemoryMax=`/`MemoryLimit=`) or `[X-Fleet] CPUs=` / `Memory=`, which win.
 * Units that say nothing need nothing (fleet's units schedule exactly as before).
 */
import type { UnitOption } from "../api/types";

/** A unit's needs, or a machine's capacity. Integers: milli-CPUs and bytes. */
export interface ResourceAmounts {
  cpus: number;
  memory: number;
}

/** Needs and the first invalid value found (refused at submit; counted as zero by the scheduler). */
export interface ParsedResources extends ResourceAmounts {
  problem: string | undefined;
}

const SUFFIX: Readonly<Record<string, number>> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4, P: 1024 ** 5, E: 1024 ** 6 };

/** systemd's byte size: `512M`, `1.5G`, `1048576`; `infinity` → 0 (no need). Percentages count 0 (host-relative). */
export function parseMemory(value: string): number | undefined {
  const v = value.trim();
  if (v === "infinity") return 0;
  if (/^\d+(\.\d+)?%$/.test(v)) return 0;
  const m = /^(\d+(?:\.\d+)?)\s*([KMGTPE]?)B?$/i.exec(v);
  if (m === null) return undefined;
  const bytes = Math.floor(Number(m[1]) * (SUFFIX[(m[2] ?? "").toUpperCase()] ?? 1));
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** CPUs as milli-CPUs: `150%` (systemd CPUQuota) or `1.5` / `500m` (X-Fleet CPUs). */
export function parseCpus(value: string, allowPlain: boolean): number | undefined {
  const v = value.trim();
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(v);
  if (pct !== null) return Math.round(Number(pct[1]) * 10);
  if (!allowPlain) return undefined;
  const milli = /^(\d+)m$/.exec(v);
  if (milli !== null) return Number(milli[1]);
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  return undefined;
}

/** "1.5 CPUs", "512 MiB": for messages. */
export function formatCpus(milli: number): string {
  return `${Number((milli / 1000).toFixed(3))} CPU${milli === 1000 ? "" : "s"}`;
}

export function formatMemory(bytes: number): string {
  for (const [unit, size] of [["TiB", 1024 ** 4], ["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(2))} ${unit}`;
  }
  return `${bytes} B`;
}

const SYSTEMD_SECTIONS = new Set(["Service", "Socket", "Mount", "Swap", "Slice", "Scope"]);

/** Reads a unit's needs. The last assignment of a key wins; an empty value resets it (systemd). */
export function parseResources(options: readonly UnitOption[]): ParsedResources {
  let quota: number | undefined;
  let memMax: number | undefined;
  let memLimit: number | undefined;
  let fleetCpus: number | undefined;
  let fleetMemory: number | undefined;
  let problem: string | undefined;
  const bad = (where: string, value: string, want: string): void => {
    problem ??= `invalid ${where} value ${JSON.stringify(value)}: ${want}`;
  };
  for (const o of options) {
    const empty = o.value.trim() === "";
    if (o.section === "X-Fleet") {
      if (o.name === "CPUs") {
        fleetCpus = empty ? undefined : parseCpus(o.value, true);
        if (!empty && fleetCpus === undefined) bad("[X-Fleet] CPUs=", o.value, 'give a number of CPUs, e.g. "1.5", "500m" or "150%"');
      } else if (o.name === "Memory") {
        fleetMemory = empty ? undefined : parseMemory(o.value);
        if (!empty && fleetMemory === undefined) bad("[X-Fleet] Memory=", o.value, 'give bytes with an optional K, M, G or T suffix, e.g. "512M"');
      }
      continue;
    }
    if (!SYSTEMD_SECTIONS.has(o.section)) continue;
    if (o.name === "CPUQuota") {
      quota = empty ? undefined : parseCpus(o.value, false);
      if (!empty && quota === undefined) bad(`[${o.section}] CPUQuota=`, o.value, 'give a percentage of one CPU, e.g. "150%"');
    } else if (o.name === "MemoryMax" || o.name === "MemoryLimit") {
      const bytes = empty ? undefined : parseMemory(o.value);
      if (!empty && bytes === undefined) bad(`[${o.section}] ${o.name}=`, o.value, 'give bytes with an optional K, M, G or T suffix, e.g. "512M", or "infinity"');
      if (o.name === "MemoryMax") memMax = bytes;
      else memLimit = bytes;
    }
  }
  return { cpus: fleetCpus ?? quota ?? 0, memory: fleetMemory ?? memMax ?? memLimit ?? 0, problem };
}
