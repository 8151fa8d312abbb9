/**
 * The agent: makes this machine run what its schedule says, and reports what systemd says.
 *
 * - Watches only `P/schedule/<own id>/` (read once with a revision, then watched from revision + 1).
 * - Acts in batches: unloads, loads, one daemon-reload, stops, starts (fleet's task order).
 * - Publishes LoadState/ActiveState/SubState + the launched flag on its lease, driven by the unit
 *   manager's state-change events (no polling), batched into transactions.
 * - Never stops a unit because etcd is unreachable: only a schedule change seen from etcd stops one.
 *   Registration and publishing retry with backoff; after the lease is lost it registers again and
 *   republishes every state.
 * - After a restart it adopts the unit files on disk: still scheduled here → kept, otherwise unloaded.
 * - Batch units (`Type=oneshot`): when one it started ends with systemd's Result `success`, it records
 *   the completion on the unit (`completed`, permanent), so the engine never places it again. An
 *   adopted batch unit that already ran to success on this boot is not started again.
 */
import { systemClock, type Clock } from "../../lib/async/clock";
import { retry } from "../../lib/async/retry";
import { unitHashOfText } from "../../lib/unit";
import { isOneshotText } from "../../lib/unit/unit-file";
import { Waker } from "../common/waker";
import { DuplicateMachineError, LeaseLostError, isRetriable } from "../registry/errors";
import type { WatchHandle } from "../registry/etcd-store";
import type { ScheduleRecord, StateRecord } from "../registry/keys";
import type { MachineSession, ScheduleChange } from "../registry/machine-session";
import type { LeaseMemory } from "./lease-file";
import type { SystemdUnitState, UnitManager } from "./unit-manager";

/** Something worth a log line; only fleetd's entry point decides how to print it. */
export interface AgentEvent {
  level: "debug" | "info" | "warn" | "error";
  message: string;
}

/**
 * What the agent needs of its machine's registration: `MachineSession` over etcd, or an in-memory
 * one (`memory-agent-session.ts`) for fast deterministic tests of the agent's own logic.
 */
export type AgentSession = Pick<MachineSession, "machineId" | "registered" | "leaseId" | "onLost" | "register" | "readSchedule" | "watchSchedule" | "publishStates" | "recordCompletion" | "completionOf" | "leave">;

export interface AgentOptions {
  session: AgentSession;
  manager: UnitManager;
  onEvent?: (event: AgentEvent) => void;
  /** Batch window for state publishing when the agent is quiet. Default 20 ms. */
  publishDelayMs?: number;
  /**
   * Batch window while states change in bursts (the previous publish was less than a second ago):
   * many units starting at once go out in a few transactions instead of one per change. Default 250 ms.
   * Longer while etcd is slow: {@link PUBLISH_LATENCY_FACTOR} times the last publish's round trip, at
   * most `maxBackoffMs`.
   */
  burstPublishDelayMs?: number;
  /** Longest wait between retries while etcd is away. Default 5000 ms. */
  maxBackoffMs?: number;
  /** Keeps the lease ID across restarts so a crashed fleetd resumes its lease. Default: none. */
  leaseMemory?: LeaseMemory;
  /** Time for batch windows, retries and back-off (a `ManualClock` in tests). Default: real time. */
  clock?: Clock;
}

/** What the agent believes about one unit it manages. */
interface Managed {
  hash: string;
  /** We asked systemd to start it (and did not stop it since). */
  launched: boolean;
  state: SystemdUnitState | undefined;
  /** Set for batch units (`Type=oneshot`). */
  batch?: BatchRun;
}

/** A batch unit's run: when we started it, and whether its completion is settled. */
interface BatchRun {
  /** Clock time just before our StartUnit; undefined until we start it (or adopt a finished run). */
  startedAt: number | undefined;
  /** The run ended and its completion was recorded (or it failed): nothing more to do for this run. */
  settled: boolean;
  /** A check is in flight. */
  checking?: boolean;
  /** An ended state was reported while a check was in flight: check again once it is done. */
  recheck?: boolean;
}

/**
 * A burst's publish window is at least this many times the last publish's round trip. An agent
 * whose states keep changing then spends at most 1/(1 + factor) of its time with a publish in
 * flight, so when etcd is saturated (its answers slow down) thousands of agents batch more states
 * per transaction and send fewer transactions instead of queueing more of them: etcd's apply loop
 * keeps up, and lease renewals, which etcd 3.4 refuses while applying lags by over a second, keep
 * working.
 */
export const PUBLISH_LATENCY_FACTOR = 4;

function newManaged(hash: string, text: string): Managed {
  return { hash, launched: false, state: undefined, ...(isOneshotText(text) ? { batch: { startedAt: undefined, settled: false } } : {}) };
}

export class Agent {
  private readonly session: AgentSession;
  private readonly clock: Clock;
  private readonly manager: UnitManager;
  private readonly emit: (e: AgentEvent) => void;
  /** Desired schedule as last seen from etcd. */
  private desired = new Map<string, ScheduleRecord>();
  /** Units loaded through us (adopted ones included). */
  private readonly managed = new Map<string, Managed>();
  private readonly dirty = new Set<string>();
  private readonly pendingStates = new Map<string, StateRecord | undefined>();
  private readonly waker = new Waker();
  /** Cancels the pending publish timer, if any. */
  private publishTimer: (() => void) | undefined;
  private publishing = false;
  private needFullRepublish = false;
  private watch: WatchHandle | undefined;
  private readonly publishDelayMs: number;
  private readonly burstPublishDelayMs: number;
  /** When the last publish ended (clock ms). */
  private lastPublishAt = 0;
  /** Round trip of the last publish that reached etcd, in ms. */
  private lastPublishLatencyMs = 0;
  private readonly maxBackoffMs: number;
  private readonly leaseMemory: LeaseMemory | undefined;
  private firstRegistration = true;

  constructor(options: AgentOptions) {
    this.session = options.session;
    this.manager = options.manager;
    this.emit = options.onEvent ?? (() => undefined);
    this.publishDelayMs = options.publishDelayMs ?? 20;
    this.burstPublishDelayMs = options.burstPublishDelayMs ?? 250;
    this.maxBackoffMs = options.maxBackoffMs ?? 5_000;
    this.leaseMemory = options.leaseMemory;
    this.clock = options.clock ?? systemClock;
  }

  /** Whether the machine is registered (the API answers 503 while not). */
  get registered(): boolean {
    return this.session.registered;
  }

  /** Units this agent currently manages, with what it believes (for diagnostics and tests). */
  snapshot(): Record<string, { hash: string; launched: boolean; activeState: string | undefined }> {
    return Object.fromEntries([...this.managed].map(([n, m]) => [n, { hash: m.hash, launched: m.launched, activeState: m.state?.activeState }]));
  }

  /**
   * Runs until `signal` aborts. Adopts units on disk, registers (retrying, also on duplicate machine
   * IDs), follows the schedule. Returns without touching units: graceful leave is {@link leave}.
   */
  async run(signal: AbortSignal): Promise<void> {
    const unsubscribe = this.manager.onStateChange((c) => this.onUnitState(c.name, c.state));
    const unLost = this.session.onLost((err) => {
      this.emit({ level: "warn", message: `${err.message}; registering machine ${this.session.machineId} again` });
      this.nudge();
    });
    try {
      for (const [name, text] of await this.manager.listLoaded()) {
        this.managed.set(name, newManaged(hashOfText(text), text));
        this.dirty.add(name);
      }
      await this.followSchedule(signal);
      while (!signal.aborted) {
        try {
          if (!this.session.registered) await this.register(signal);
          await this.reconcile(signal);
          await this.sleepUntilNudged(signal);
        } catch (err) {
          // Whatever failed (systemd, a corrupt record), the agent keeps running and keeps every unit.
          if (signal.aborted) break;
          this.emit({ level: "error", message: `Agent pass failed: ${(err as Error).message}; retrying in 1 s` });
          await this.clock.sleep(1_000, signal);
        }
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      unsubscribe();
      unLost();
      this.publishTimer?.();
      this.publishTimer = undefined;
      // Expected: closing a watch fails only while etcd is away, and the stream goes with the client.
      await this.watch?.close().catch(() => undefined);
      this.watch = undefined;
    }
  }

  private nudge(): void {
    this.waker.notify();
  }

  private async sleepUntilNudged(signal: AbortSignal): Promise<void> {
    if (this.dirty.size > 0 || !this.session.registered) return;
    await this.waker.wait(signal);
  }

  private backoff<T>(what: string, fn: () => Promise<T>, signal: AbortSignal): Promise<T> {
    return retry(fn, {
      attempts: Number.POSITIVE_INFINITY,
      initialDelayMs: 100,
      maxDelayMs: this.maxBackoffMs,
      signal,
      sleep: (ms, s) => this.clock.sleep(ms, s),
      retriable: (err) => isRetriable(err) || err instanceof LeaseLostError,
      onRetry: (err, attempt) => {
        if (attempt === 1 || attempt % 10 === 0) this.emit({ level: "warn", message: `${what} failed (attempt ${attempt}), retrying: ${(err as Error).message}` });
      },
    });
  }

  private async register(signal: AbortSignal): Promise<void> {
    // Only the first registration of a run may resume the previous run's lease; a lease lost later
    // is gone for good.
    const resume = this.firstRegistration
      ? await this.leaseMemory?.load().catch((err: unknown) => {
          this.emit({ level: "warn", message: `Cannot read the remembered lease: ${(err as Error).message}; registering on a new lease (a duplicate-ID wait is possible until the old one expires)` });
          return undefined;
        })
      : undefined;
    this.firstRegistration = false;
    await this.backoff(
      `Registering machine ${this.session.machineId}`,
      async () => {
        try {
          await this.session.register(signal, resume);
        } catch (err) {
          if (err instanceof DuplicateMachineError) this.emit({ level: "error", message: err.message });
          throw err;
        }
      },
      signal,
    );
    this.emit({ level: "info", message: `Registered machine ${this.session.machineId} (lease ${this.session.leaseId}${resume === this.session.leaseId ? ", resumed" : ""})` });
    const leaseId = this.session.leaseId;
    if (leaseId) await this.leaseMemory?.save(leaseId).catch((err: unknown) => this.emit({ level: "warn", message: `Cannot remember lease ${leaseId}: ${(err as Error).message}` }));
    this.needFullRepublish = true;
    this.schedulePublish();
  }

  /** Reads the schedule with its revision, reconciles everything, and watches from revision + 1. */
  private async followSchedule(signal: AbortSignal): Promise<void> {
    const { revision, entries } = await this.backoff(`Reading the schedule of ${this.session.machineId}`, () => this.session.readSchedule(signal), signal);
    this.desired = entries;
    for (const n of new Set([...entries.keys(), ...this.managed.keys()])) this.dirty.add(n);
    this.watch = await this.backoff(
      `Watching the schedule of ${this.session.machineId}`,
      () =>
        this.session.watchSchedule(revision + 1, {
          onChanges: (changes) => this.onSchedule(changes),
          onError: (err) => {
            // The watch cannot resume (e.g. compaction): read everything again, keep units running.
            this.emit({ level: "warn", message: `Schedule watch ended (${err.message}); re-reading the schedule` });
            // Expected: this watch already ended with an error; cancelling it may fail too.
            void this.watch?.close().catch(() => undefined);
            this.followSchedule(signal).then(
              () => this.nudge(),
              (e: unknown) => {
                if (!signal.aborted) this.emit({ level: "error", message: `Cannot follow the schedule: ${(e as Error).message}` });
              },
            );
          },
        }),
      signal,
    );
    this.nudge();
  }

  private onSchedule(changes: readonly ScheduleChange[]): void {
    for (const c of changes) {
      if (c.record) this.desired.set(c.name, c.record);
      else this.desired.delete(c.name);
      this.dirty.add(c.name);
    }
    this.nudge();
  }

  /** Brings the dirty units to their desired state in fleet's task order; failures stay dirty. */
  private async reconcile(signal: AbortSignal): Promise<void> {
    if (this.dirty.size === 0) return;
    const names = [...this.dirty].sort();
    this.dirty.clear();
    const unloads: string[] = [];
    const loads: [string, ScheduleRecord][] = [];
    const stops: string[] = [];
    const starts: string[] = [];
    for (const name of names) {
      const want = this.desired.get(name);
      const have = this.managed.get(name);
      if (!want || want.desiredState === "inactive") {
        if (have) unloads.push(name);
        continue;
      }
      if (!have || have.hash !== want.hash) {
        if (have) unloads.push(name);
        loads.push([name, want]);
        if (want.desiredState === "launched") starts.push(name);
        continue;
      }
      if (want.desiredState === "launched" && !have.launched) starts.push(name);
      if (want.desiredState === "loaded" && have.launched) stops.push(name);
    }
    const failed = new Set<string>();
    const attempt = async (name: string, what: string, fn: () => Promise<void>): Promise<void> => {
      if (failed.has(name)) return;
      try {
        await fn();
      } catch (err) {
        if (signal.aborted) throw err;
        failed.add(name);
        this.emit({ level: "error", message: `Cannot ${what} ${name}: ${(err as Error).message}; will retry` });
      }
    };
    for (const name of unloads) {
      await attempt(name, "unload", async () => {
        await this.manager.unload(name, signal);
        this.managed.delete(name);
        this.pendingStates.set(name, undefined);
      });
    }
    for (const [name, rec] of loads) {
      await attempt(name, "load", async () => {
        await this.manager.load(name, rec.text, signal);
        this.managed.set(name, newManaged(rec.hash, rec.text));
      });
    }
    if (unloads.length + loads.length > 0) await attempt("(daemon-reload)", "reload systemd for", () => this.manager.reload(signal));
    for (const name of stops) {
      await attempt(name, "stop", async () => {
        await this.manager.stop(name, signal);
        const m = this.managed.get(name);
        if (m) m.launched = false;
      });
    }
    for (const name of starts) {
      await attempt(name, "start", async () => {
        const m = this.managed.get(name);
        if (m?.batch && (await this.ranOnThisBoot(name, m, m.batch, signal))) {
          m.launched = true;
          return;
        }
        const startedAt = this.clock.now();
        await this.manager.start(name, signal);
        if (m) {
          m.launched = true;
          if (m.batch) m.batch = { startedAt, settled: false };
        }
      });
    }
    // Publish what systemd says now for everything we touched (adopted units emit no change event).
    const touched = names.filter((n) => this.managed.has(n));
    if (touched.length > 0) {
      try {
        const states = await this.manager.states(touched, signal);
        for (const [name, state] of states) this.onUnitState(name, state);
      } catch (err) {
        if (signal.aborted) throw err;
        this.emit({ level: "warn", message: `Cannot read systemd states of ${touched.length} units: ${(err as Error).message}` });
      }
    }
    this.schedulePublish();
    if (failed.size > 0) {
      for (const n of failed) if (n !== "(daemon-reload)") this.dirty.add(n);
      await this.clock.sleep(Math.min(this.maxBackoffMs, 1_000), signal);
    }
  }

  private onUnitState(name: string, state: SystemdUnitState): void {
    const m = this.managed.get(name);
    if (!m) return;
    m.state = state;
    this.pendingStates.set(name, stateRecord(m));
    this.schedulePublish();
    const ended = (state.activeState === "inactive" && state.subState === "dead") || (state.activeState === "active" && state.subState === "exited");
    if (m.batch && m.launched && ended && m.batch.startedAt !== undefined && !m.batch.settled) void this.settleBatch(name, m, m.batch);
  }

  /**
   * An adopted batch unit (fleetd restarted) that already ran to success is not run again: systemd
   * still knows the run from this boot (its run counts from when it exited), or, once systemd has
   * unloaded the ended unit and forgotten it, the completion this machine recorded for this body says so.
   * A run that ended after the old fleetd stopped listening and before it recorded anything runs again
   * (at least once, never lost).
   */
  private async ranOnThisBoot(name: string, m: Managed, batch: BatchRun, signal: AbortSignal): Promise<boolean> {
    if (batch.startedAt !== undefined) return false;
    const run = await this.manager.lastRun(name, signal);
    if (run?.result === "success" && run.exitedAt !== undefined) {
      batch.startedAt = run.exitedAt;
      this.emit({ level: "info", message: `Batch unit ${name} already ran to success on this boot; not starting it again` });
      return true;
    }
    const done = await this.session.completionOf(name, signal);
    if (done?.hash !== m.hash || done.machineId !== this.session.machineId) return false;
    m.batch = { startedAt: this.clock.now(), settled: true };
    this.emit({ level: "info", message: `Batch unit ${name} completed here before fleetd restarted; not starting it again` });
    return true;
  }

  /**
   * A batch unit we started reports an ended state: if systemd says its main process exited since our
   * start (the state read right after StartUnit can still be the old inactive/dead) with Result
   * success, record its completion.
   */
  private async settleBatch(name: string, m: Managed, batch: BatchRun): Promise<void> {
    if (batch.checking) {
      // The report that the run ended can arrive while an earlier check (of a state read before the
      // run began) is still asking systemd: that check may miss the exit, so look again after it.
      batch.recheck = true;
      return;
    }
    batch.checking = true;
    batch.recheck = false;
    try {
      const run = await this.manager.lastRun(name);
      if (run?.exitedAt === undefined || run.exitedAt < batch.startedAt!) return; // not run yet: wait for the next report
      batch.settled = true;
      if (run.result !== "success") return;
      const hash = m.hash;
      const recorded = await retry(() => this.session.recordCompletion(name, hash), {
        attempts: 5,
        initialDelayMs: 200,
        maxDelayMs: this.maxBackoffMs,
        sleep: (ms, s) => this.clock.sleep(ms, s),
        retriable: isRetriable,
      });
      this.emit({ level: "info", message: recorded ? `Batch unit ${name} completed (systemd Result=success); it will not be placed again` : `Batch unit ${name} completed, but its unit changed meanwhile; nothing recorded` });
    } catch (err) {
      if (this.managed.get(name)?.batch !== batch) return; // unloaded or restarted meanwhile
      batch.settled = false;
      this.emit({ level: "warn", message: `Cannot record the completion of batch unit ${name}: ${(err as Error).message}; retrying in ${this.maxBackoffMs} ms` });
      this.clock.setTimer(this.maxBackoffMs, () => {
        if (!batch.settled && this.managed.get(name)?.batch === batch) void this.settleBatch(name, m, batch);
      });
    } finally {
      batch.checking = false;
      if (batch.recheck && !batch.settled && this.managed.get(name)?.batch === batch) void this.settleBatch(name, m, batch);
    }
  }

  private schedulePublish(): void {
    if (this.publishTimer || this.publishing) return;
    const burst = this.clock.now() - this.lastPublishAt < 1_000;
    // The last round trip counts only for a burst: after a quiet second it is stale, and the first
    // state of an idle agent goes out at once.
    const delay = burst ? Math.max(this.burstPublishDelayMs, Math.min(this.maxBackoffMs, PUBLISH_LATENCY_FACTOR * this.lastPublishLatencyMs)) : this.publishDelayMs;
    this.publishTimer = this.clock.setTimer(delay, () => {
      this.publishTimer = undefined;
      void this.publish();
    });
  }

  /** Sends pending states in one batch; on failure they stay pending (newer values win) and retry. */
  private async publish(): Promise<void> {
    if (!this.session.registered) return; // republished in full after registering
    if (this.needFullRepublish) {
      this.needFullRepublish = false;
      for (const [name, m] of this.managed) if (m.state) this.pendingStates.set(name, stateRecord(m));
    }
    if (this.pendingStates.size === 0) return;
    const batch = new Map(this.pendingStates);
    this.pendingStates.clear();
    this.publishing = true;
    const began = this.clock.now();
    try {
      await this.session.publishStates(batch);
      this.lastPublishLatencyMs = this.clock.now() - began;
    } catch (err) {
      for (const [k, v] of batch) if (!this.pendingStates.has(k)) this.pendingStates.set(k, v);
      if (err instanceof LeaseLostError) {
        this.nudge();
      } else {
        this.emit({ level: "warn", message: `Cannot publish ${batch.size} unit states: ${(err as Error).message}; retrying` });
        await this.clock.sleep(Math.min(this.maxBackoffMs, 500));
      }
    } finally {
      this.publishing = false;
      this.lastPublishAt = this.clock.now();
    }
    if (this.pendingStates.size > 0 || this.needFullRepublish) this.schedulePublish();
  }

  /**
   * Graceful leave (SIGTERM): stop and remove every unit we manage, then revoke the lease so presence
   * and states disappear at once and the engine reschedules without waiting for the TTL.
   */
  async leave(signal?: AbortSignal): Promise<void> {
    const names = [...this.managed.keys()].sort();
    for (const name of names) {
      try {
        await this.manager.unload(name, signal);
        this.managed.delete(name);
      } catch (err) {
        this.emit({ level: "error", message: `Cannot unload ${name} while leaving: ${(err as Error).message}` });
      }
    }
    if (names.length > 0) await this.manager.reload(signal).catch((err: unknown) => this.emit({ level: "error", message: `Cannot reload systemd while leaving: ${(err as Error).message}` }));
    this.publishTimer?.();
    this.publishTimer = undefined;
    await this.leaseMemory?.clear().catch((err: unknown) => this.emit({ level: "warn", message: `Cannot forget the remembered lease: ${(err as Error).message}` }));
    await this.session.leave(signal).catch((err: unknown) => this.emit({ level: "warn", message: `Cannot revoke the lease while leaving: ${(err as Error).message}` }));
  }
}

function stateRecord(m: Managed): StateRecord {
  const s = m.state ?? { loadState: "loaded", activeState: "inactive", subState: "dead" };
  return { hash: m.hash, loadState: s.loadState, activeState: s.activeState, subState: s.subState, launched: m.launched };
}

/** Hash of a unit file found on disk; adopted files are compared with the schedule's hash. */
function hashOfText(text: string): string {
  return unitHashOfText(text);
}
