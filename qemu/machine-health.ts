/**
 * When a machine counts as healthy: SSH answers, `systemctl is-system-running` says "running" (not
 * "degraded"), no unit has failed, and its console log shows none of the known failure patterns.
 * Used by `up`, `status` and after every end-to-end test.
 */
import { readFile } from "node:fs/promises";
import { openIfExists } from "./vm";
import type { ClusterPaths, MachineSpec } from "./cluster-layout";
import { runOnMachine } from "./machine-ssh";

/** Console patterns that mean a machine is broken whatever else it says. */
export const CONSOLE_FAILURE_PATTERNS: readonly { name: string; pattern: RegExp }[] = [
  { name: "kernel panic", pattern: /Kernel panic - not syncing/ },
  { name: "kernel oops", pattern: /\bOops(?::| - )|\bBUG: unable to handle|\bgeneral protection fault\b/ },
  { name: "emergency shell", pattern: /You are in emergency mode|Entering emergency mode|emergency shell|Give root password for maintenance/i },
  { name: "OOM kill", pattern: /Out of memory: Kill(?:ed)? process|invoked oom-killer|oom-kill:/ },
  { name: "ordering cycle", pattern: /Found ordering cycle/ },
];

/** The failure patterns found in a console log, each with the first matching line. */
export function scanConsole(text: string): { name: string; line: string }[] {
  const found: { name: string; line: string }[] = [];
  const lines = text.split(/\r?\n/);
  for (const { name, pattern } of CONSOLE_FAILURE_PATTERNS) {
    const line = lines.find((l) => pattern.test(l));
    if (line !== undefined) found.push({ name, line: line.trim() });
  }
  return found;
}

/**
 * Scans a growing console log incrementally: each call reads only what was appended since the last one
 * (polling the whole multi-megabyte log every few seconds costs real CPU on a 2-core host).
 */
export class ConsoleScanner {
  private offset = 0;
  private partial = "";
  private readonly found: { name: string; line: string }[] = [];
  constructor(private readonly file: string) {}

  /** Every failure pattern seen so far. */
  async scan(): Promise<{ name: string; line: string }[]> {
    const fh = await openIfExists(this.file);
    if (!fh) return this.found;
    try {
      const size = (await fh.stat()).size;
      if (size > this.offset) {
        const buf = Buffer.alloc(size - this.offset);
        await fh.read(buf, 0, buf.length, this.offset);
        this.offset = size;
        const text = this.partial + buf.toString("utf8");
        const cut = text.lastIndexOf("\n");
        this.partial = cut >= 0 ? text.slice(cut + 1) : text;
        for (const p of scanConsole(cut >= 0 ? text.slice(0, cut) : "")) {
          if (!this.found.some((f) => f.name === p.name)) this.found.push(p);
        }
      }
    } finally {
      await fh.close();
    }
    return this.found;
  }
}

/** The last `lines` lines of a machine's console log ("" when there is none yet). */
export async function consoleTail(paths: ClusterPaths, index: number, lines = 40): Promise<string> {
  try {
    const text = await readFile(paths.machine(index).console, "utf8");
    // Serial consoles carry control characters and CRs; keep the tail readable.
    return text
      // eslint-disable-next-line no-control-regex -- ANSI escapes are exactly what is stripped here
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "")
      .split(/\r?\n/)
      .slice(-lines)
      .join("\n");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw err;
  }
}

export interface HealthReport {
  machine: string;
  healthy: boolean;
  /** systemctl is-system-running's answer, or why SSH did not answer. */
  systemState: string;
  failedUnits: string[];
  /** The last journal lines of each failed unit (why it failed), when there are failed units. */
  failedUnitLogs: Record<string, string>;
  consoleProblems: { name: string; line: string }[];
}

/** One health check of one machine (never throws for an unhealthy machine; reports it). */
export async function checkMachine(paths: ClusterPaths, machine: MachineSpec, signal?: AbortSignal): Promise<HealthReport> {
  let consoleText = "";
  try {
    consoleText = await readFile(paths.machine(machine.index).console, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const consoleProblems = scanConsole(consoleText);
  const r = await runOnMachine(paths, machine, "systemctl is-system-running; echo '--'; systemctl list-units --failed --no-legend --plain --no-pager", {
    allowFailure: true,
    timeoutMs: 30_000,
    ...(signal ? { signal } : {}),
  });
  const [stateText = "", failedText = ""] = r.stdout.split("--\n");
  const sshOk = r.exitCode !== 255 && r.stdout.includes("--");
  const systemState = sshOk ? stateText.trim() || "unknown" : `ssh failed: ${(r.stderr.trim().split("\n").pop() ?? "").trim() || `exit ${r.exitCode}`}`;
  const failedUnits = sshOk
    ? failedText
        .split("\n")
        .map((l) => l.trim().split(/\s+/)[0] ?? "")
        .filter(Boolean)
    : [];
  const failedUnitLogs: Record<string, string> = {};
  for (const unit of failedUnits.filter((u) => /^[\w@.:-]+$/.test(u))) {
    const j = await runOnMachine(paths, machine, `journalctl -u ${unit} -b -n 12 --no-pager -o short-monotonic`, { allowFailure: true, timeoutMs: 30_000, ...(signal ? { signal } : {}) });
    failedUnitLogs[unit] = j.exitCode === 0 ? j.stdout.trimEnd() : `(journal unreadable: exit ${j.exitCode})`;
  }
  return {
    machine: machine.hostname,
    healthy: sshOk && systemState === "running" && failedUnits.length === 0 && consoleProblems.length === 0,
    systemState,
    failedUnits,
    failedUnitLogs,
    consoleProblems,
  };
}

/** One line per problem, for error messages and test failures. */
export function describeHealth(r: HealthReport): string {
  if (r.healthy) return `${r.machine}: healthy`;
  const parts = [`system ${r.systemState}`];
  if (r.failedUnits.length) parts.push(`failed units: ${r.failedUnits.join(", ")}`);
  for (const p of r.consoleProblems) parts.push(`console shows ${p.name}: "${p.line}"`);
  const logs = Object.entries(r.failedUnitLogs).map(([unit, text]) => `\n--- journal of ${unit} ---\n${text}`);
  return `${r.machine}: ${parts.join("; ")}${logs.join("")}`;
}
