/**
 * The `[X-Fleet]` section as a typed `Requirements` value (fleet-reference §2.6), and fleet's
 * validation of contradictory requirements.
 */
import type { UnitOption } from "../api/types";
import { UnitValidationError } from "./errors";
import { compileGlob } from "./glob";
import { parseResources } from "./resources";
import { substituteSpecifiers } from "./specifiers";

/** Section holding fleet's scheduling options. */
export const X_FLEET_SECTION = "X-Fleet";

/** Where a unit may run and what it displaces. Plain data: safe to copy and compare. */
export interface Requirements {
  /** Required machine (full ID, or the 8-character short ID). First value of MachineID and aliases. */
  machineId: string | undefined;
  /** Units that must already be on the machine (exact names, no globs). */
  machineOf: string[];
  /** key → accepted values. Same key repeated = OR; different keys = AND. */
  machineMetadata: Map<string, string[]>;
  /** Glob patterns of units that must not share a machine with this one (checked both ways). */
  conflicts: string[];
  /** Run on every machine matching `machineMetadata` and free of conflicts. */
  global: boolean;
  /** Glob patterns of units this unit displaces from its machine. */
  replaces: string[];
  /** Milli-CPUs the unit needs (`[X-Fleet] CPUs=`, else `CPUQuota=`); 0 = none. */
  cpus: number;
  /** Bytes of memory the unit needs (`[X-Fleet] Memory=`, else `MemoryMax=`/`MemoryLimit=`); 0 = none. */
  memory: number;
  /** Metadata keys whose values the instances of this unit's template spread across (`Spread=`). */
  spread: string[];
}

/** Result of {@link parseRequirements}: the requirements and non-fatal warnings (unknown keys). */
export interface ParsedRequirements {
  requirements: Requirements;
  /** e.g. "unrecognized requirement in [X-Fleet] section: Foo" (fleetctl prints these). */
  warnings: string[];
}

type Key = "machineId" | "machineBootId" | "machineOf" | "machineMetadata" | "conflicts" | "global" | "replaces" | "spread" | "resource";

/** Every accepted key, with its deprecated aliases. */
const KEYS: ReadonlyMap<string, Key> = new Map<string, Key>([
  ["MachineID", "machineId"],
  ["X-ConditionMachineID", "machineId"],
  ["X-ConditionMachineBootID", "machineBootId"],
  ["MachineOf", "machineOf"],
  ["X-ConditionMachineOf", "machineOf"],
  ["MachineMetadata", "machineMetadata"],
  ["X-ConditionMachineMetadata", "machineMetadata"],
  ["Conflicts", "conflicts"],
  ["X-Conflicts", "conflicts"],
  ["Global", "global"],
  ["Replaces", "replaces"],
  ["Spread", "spread"],
  ["CPUs", "resource"],
  ["Memory", "resource"],
]);

const TRUTHY: ReadonlySet<string> = new Set(["true", "yes", "1", "on", "t"]);

/**
 * fleet's multi-value rule: only a value that starts AND ends with `"` is split into its quoted,
 * space-separated items (`"a=b" "c=d"` → `a=b`, `c=d`); any other value is one item. Empty items
 * (from doubled spaces) are dropped: fleet kept them, but no rule could use an empty value.
 */
export function parseMultiValue(value: string): string[] {
  if (value.length < 2 || !value.startsWith('"') || !value.endsWith('"')) return [value];
  const items: string[] = [];
  let current = "";
  let quoted = false;
  for (const ch of value) {
    if (ch === '"') {
      quoted = !quoted;
    } else if (!quoted && ch === " ") {
      if (current !== "") items.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  if (current !== "") items.push(current);
  return items;
}

/** Empty requirements (a unit without `[X-Fleet]`). */
export function emptyRequirements(): Requirements {
  return { machineId: undefined, machineOf: [], machineMetadata: new Map(), conflicts: [], global: false, replaces: [], cpus: 0, memory: 0, spread: [] };
}

/**
 * Reads `[X-Fleet]` from a unit's options. Values are specifier-substituted from `unitName` before
 * use. Unknown keys become warnings, never errors (as in fleet).
 */
export function parseRequirements(unitName: string, options: readonly UnitOption[]): ParsedRequirements {
  const requirements = emptyRequirements();
  const warnings: string[] = [];
  const machineIds: string[] = [];
  const bootIds: string[] = [];
  for (const option of options) {
    if (option.section !== X_FLEET_SECTION) continue;
    const key = KEYS.get(option.name);
    if (key === undefined) {
      warnings.push(`unrecognized requirement in [X-Fleet] section: ${option.name}`);
      continue;
    }
    const values = parseMultiValue(option.value).map((v) => substituteSpecifiers(v, unitName));
    switch (key) {
      case "machineId":
        machineIds.push(...values);
        break;
      case "machineBootId":
        bootIds.push(...values);
        break;
      case "machineOf":
        requirements.machineOf.push(...values.filter((v) => v !== ""));
        break;
      case "machineMetadata":
        for (const item of values) addMetadataItem(requirements.machineMetadata, item);
        break;
      case "conflicts":
        for (const v of values) requirements.conflicts.push(...v.split(/\s+/).filter((p) => p !== ""));
        break;
      case "global": {
        const last = values[values.length - 1];
        if (last !== undefined) requirements.global = TRUTHY.has(last.trim().toLowerCase());
        break;
      }
      case "replaces":
        requirements.replaces.push(...values.filter((v) => v !== ""));
        break;
      case "spread":
        for (const v of values) requirements.spread.push(...v.split(/[\s,]+/).filter((p) => p !== ""));
        break;
      case "resource":
        break; // read with the systemd settings below
    }
  }
  // The legacy boot-ID key only counts when no MachineID is given (fleet's fallback order).
  requirements.machineId = [...machineIds, ...bootIds].find((v) => v !== "");
  requirements.machineOf = unique(requirements.machineOf);
  requirements.conflicts = unique(requirements.conflicts);
  requirements.replaces = unique(requirements.replaces);
  requirements.spread = unique(requirements.spread);
  const needs = parseResources(options);
  requirements.cpus = needs.cpus;
  requirements.memory = needs.memory;
  return { requirements, warnings };
}

/** `key=value` with exactly one `=` and both sides non-empty; anything else is ignored, as in fleet. */
function addMetadataItem(into: Map<string, string[]>, item: string): void {
  const parts = item.split("=");
  if (parts.length !== 2) return;
  const key = (parts[0] ?? "").trim();
  const value = (parts[1] ?? "").trim();
  if (key === "" || value === "") return;
  const list = into.get(key);
  if (list === undefined) into.set(key, [value]);
  else if (!list.includes(value)) list.push(value);
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/**
 * fleet's `ValidateRequirements`, same order and texts. Returns the first problem as a typed error,
 * or `undefined` when the combination is acceptable. Cross-unit rules need the other units and are the
 * scheduler's (a circular Replaces pair runs one unit at most, see fleetd/scheduler/README.md).
 */
export function validateRequirements(unitName: string, requirements: Requirements): UnitValidationError | undefined {
  const problem = requirementsProblem(requirements);
  return problem === undefined ? undefined : new UnitValidationError(unitName, problem);
}

function requirementsProblem(r: Requirements): string | undefined {
  const conflicts = r.conflicts.map(compileGlob);
  const replaces = r.replaces.map(compileGlob);
  for (const peer of r.machineOf) {
    const conflict = conflicts.find((g) => g.match(peer));
    if (conflict !== undefined) return `unresolvable requirements: peer ${JSON.stringify(peer)} matches conflict ${JSON.stringify(conflict.pattern)}`;
    const replace = replaces.find((g) => g.match(peer));
    if (replace !== undefined) return `unresolvable requirements: peer ${JSON.stringify(peer)} matches replace ${JSON.stringify(replace.pattern)}`;
  }
  const hasPeers = r.machineOf.length > 0;
  const hasConflicts = r.conflicts.length > 0;
  const hasReplaces = r.replaces.length > 0;
  if (r.machineId !== undefined) {
    if (r.global) return "MachineID cannot be used with Global";
    if (hasPeers) return "MachineID cannot be used with Peers";
    if (hasConflicts) return "MachineID cannot be used with Conflicts";
    if (hasReplaces) return "MachineID cannot be used with Replaces";
  }
  if (r.global) {
    if (hasPeers) return "Global cannot be used with Peers";
    if (hasReplaces) return "Global cannot be used with Replaces";
  }
  if (hasConflicts && hasReplaces) return "Conflicts cannot be used with Replaces";
  const badKey = r.spread.find((k) => !/^[A-Za-z0-9_.-]+$/.test(k));
  if (badKey !== undefined) return `invalid Spread key ${JSON.stringify(badKey)}: give machine metadata keys, e.g. Spread=zone`;
  if (r.global && r.spread.length > 0) return "Spread cannot be used with Global";
  return undefined;
}
