/**
 * `UnitManager` in memory, for tests and benches: writes nothing to systemd or disk, simulates
 * systemd's load/start/stop state transitions, and emits state changes like PropertiesChanged signals.
 * It records every operation so tests can assert, e.g., that an etcd outage stopped nothing.
 *
 * Failing bodies (for rollback tests): a unit whose `ExecStart=` runs `/bin/false` or `/usr/bin/false`
 * starts and then fails, as systemd reports a service whose main process exits 1: `failed/failed`.
 * Batch units (`Type=oneshot`) run and end: `activating/start`, then `inactive/dead` with a
 * successful last run (or `failed/failed` for a failing body).
 */
import { abortReason } from "../../lib/async/delay";
import { isOneshotText } from "../../lib/unit/unit-file";
import type { ServiceRun, SystemdUnitState, UnitManager, UnitStateChange } from "./unit-manager";

/** The "disk" of a simulated host: unit files that survive a fleetd restart (share it between managers). */
export type MemoryDisk = Map<string, string>;

/** One recorded operation. */
export interface MemoryOperation {
  op: "load" | "unload" | "reload" | "start" | "stop";
  name?: string;
  at: number;
}

export interface MemoryUnitManagerOptions {
  /** Unit files already "on disk" (adoption after restart). Default: a new empty disk. */
  disk?: MemoryDisk;
  /** Delay before a start/stop takes effect (systemd jobs are asynchronous). Default 0 (next tick). */
  transitionDelayMs?: number;
  /** Delay before a start takes effect (a service's start-up time); default `transitionDelayMs`. */
  startDelayMs?: number;
  /** Clock for operation timestamps. */
  now?: () => number;
}

/** `ExecStart=/bin/false` (or /usr/bin/false, with systemd's `-`/`@` prefixes): the start fails. */
const FAILING_EXEC = /^ExecStart=[-@+!:]*(?:\/usr)?\/bin\/false(?:\s|$)/m;

const NOT_FOUND: SystemdUnitState = { loadState: "not-found", activeState: "inactive", subState: "dead" };

export class MemoryUnitManager implements UnitManager {
  readonly disk: MemoryDisk;
  /** Every operation in order. */
  readonly operations: MemoryOperation[] = [];
  private readonly current = new Map<string, SystemdUnitState>();
  private readonly runs = new Map<string, ServiceRun>();
  private readonly listeners = new Set<(change: UnitStateChange) => void>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly delayMs: number;
  private readonly startDelayMs: number;
  private readonly now: () => number;
  private closed = false;

  constructor(options: MemoryUnitManagerOptions = {}) {
    this.disk = options.disk ?? new Map<string, string>();
    this.delayMs = options.transitionDelayMs ?? 0;
    this.startDelayMs = options.startDelayMs ?? this.delayMs;
    this.now = options.now ?? Date.now;
    // Units on disk from a previous run are loaded but not running, as after a reboot or a
    // `systemctl daemon-reload`; a previous fleetd's running units are modelled by passing `running`.
    for (const name of this.disk.keys()) this.current.set(name, { loadState: "loaded", activeState: "inactive", subState: "dead" });
  }

  /** Marks units as already running (a fleetd restart while systemd kept them up). */
  markRunning(names: Iterable<string>): void {
    for (const name of names) this.current.set(name, { loadState: "loaded", activeState: "active", subState: "running" });
  }

  /** Names of units currently active. */
  running(): string[] {
    return [...this.current].filter(([, s]) => s.activeState === "active").map(([n]) => n).sort();
  }

  /** Recorded operations of one kind (e.g. every "stop"). */
  count(op: MemoryOperation["op"], name?: string): number {
    return this.operations.filter((o) => o.op === op && (name === undefined || o.name === name)).length;
  }

  onStateChange(listener: (change: UnitStateChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private record(op: MemoryOperation["op"], name?: string): void {
    this.operations.push(name === undefined ? { op, at: this.now() } : { op, name, at: this.now() });
  }

  private check(signal: AbortSignal | undefined): void {
    if (signal?.aborted) throw abortReason(signal);
    if (this.closed) throw new Error("Cannot use the memory unit manager: it is closed");
  }

  private set(name: string, state: SystemdUnitState, later: boolean, delayMs = this.delayMs): void {
    const apply = (): void => {
      if (this.closed) return;
      const before = this.current.get(name);
      if (before && before.loadState === state.loadState && before.activeState === state.activeState && before.subState === state.subState) return;
      this.current.set(name, state);
      for (const l of [...this.listeners]) l({ name, state: { ...state } });
    };
    if (!later) {
      apply();
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      apply();
    }, delayMs);
    this.timers.add(t);
  }

  async load(name: string, text: string, signal?: AbortSignal): Promise<void> {
    this.check(signal);
    this.record("load", name);
    // A file that was not on disk (new, or unloaded just before: unload stops the unit) loads inactive.
    const cur = this.disk.has(name) ? this.current.get(name) : undefined;
    this.disk.set(name, text);
    this.set(name, { loadState: "loaded", activeState: cur?.activeState ?? "inactive", subState: cur?.subState ?? "dead" }, true);
  }

  async unload(name: string, signal?: AbortSignal): Promise<void> {
    this.check(signal);
    this.record("unload", name);
    this.disk.delete(name);
    this.set(name, NOT_FOUND, true);
  }

  async reload(signal?: AbortSignal): Promise<void> {
    this.check(signal);
    this.record("reload");
  }

  async start(name: string, signal?: AbortSignal): Promise<void> {
    this.check(signal);
    this.record("start", name);
    const text = this.disk.get(name);
    if (text === undefined) throw new Error(`Cannot start ${name}: unit not loaded (no such file in the units directory)`);
    const failing = FAILING_EXEC.test(text);
    if (isOneshotText(text)) {
      this.set(name, { loadState: "loaded", activeState: "activating", subState: "start" }, true);
      const t = setTimeout(() => {
        this.timers.delete(t);
        if (this.closed) return;
        this.runs.set(name, { result: failing ? "exit-code" : "success", exitedAt: this.now() });
        this.set(name, failing ? { loadState: "loaded", activeState: "failed", subState: "failed" } : { loadState: "loaded", activeState: "inactive", subState: "dead" }, false);
      }, Math.max(1, this.startDelayMs));
      this.timers.add(t);
      return;
    }
    this.set(name, failing ? { loadState: "loaded", activeState: "failed", subState: "failed" } : { loadState: "loaded", activeState: "active", subState: "running" }, true, this.startDelayMs);
  }

  async stop(name: string, signal?: AbortSignal): Promise<void> {
    this.check(signal);
    this.record("stop", name);
    const loaded = this.disk.has(name);
    this.set(name, loaded ? { loadState: "loaded", activeState: "inactive", subState: "dead" } : NOT_FOUND, true);
  }

  async states(names: readonly string[], signal?: AbortSignal): Promise<Map<string, SystemdUnitState>> {
    this.check(signal);
    return new Map(names.map((n) => [n, { ...(this.current.get(n) ?? NOT_FOUND) }]));
  }

  async lastRun(name: string, signal?: AbortSignal): Promise<ServiceRun | undefined> {
    this.check(signal);
    if (!name.endsWith(".service") || !this.current.has(name)) return undefined;
    return { ...(this.runs.get(name) ?? { result: "success", exitedAt: undefined }) };
  }

  async listLoaded(): Promise<Map<string, string>> {
    return new Map(this.disk);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.listeners.clear();
  }
}
