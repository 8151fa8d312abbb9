/**
 * An in-memory {@link AgentSession} for fast, deterministic tests of the agent's own logic (batch
 * windows, re-registration, republishing, retries), with the etcd-backed `MachineSession`'s
 * semantics: states live on the lease (a lost lease takes them), a publish without a lease fails
 * with `LeaseLostError`, and the schedule is watched from a revision. Tests drive it with
 * {@link setEntry}, {@link loseLease}, {@link failPublishes} and {@link publishGate}.
 */
import { LeaseLostError } from "../registry/errors";
import type { WatchHandle } from "../registry/etcd-store";
import type { ScheduleRecord, StateRecord } from "../registry/keys";
import type { ScheduleChange } from "../registry/machine-session";
import type { AgentSession } from "./agent";

type ScheduleHandlers = { onChanges: (changes: ScheduleChange[]) => void; onError: (err: Error) => void };

export class MemoryAgentSession implements AgentSession {
  /** States as published now (what `P/state/<name>/<machine>` would hold). */
  readonly states = new Map<string, StateRecord>();
  /** Every successful `publishStates` batch, in order. */
  readonly publishes: Map<string, StateRecord | undefined>[] = [];
  /** Completions recorded by the agent: unit name → body hash. */
  readonly completions = new Map<string, string>();
  /** Successful registrations so far. */
  registrations = 0;
  /** The next N publishes fail with an etcd-like error (not a lease loss). */
  failPublishes = 0;
  /** While set, publishes wait for it (a slow etcd: the test moves the clock meanwhile). */
  publishGate: Promise<void> | undefined;
  private lease: string | undefined;
  private leaseSeq = 0;
  private revision = 1;
  private readonly schedule = new Map<string, ScheduleRecord>();
  private readonly watchers = new Set<ScheduleHandlers>();
  private readonly lostListeners = new Set<(err: LeaseLostError) => void>();

  constructor(readonly machineId: string) {}

  get registered(): boolean {
    return this.lease !== undefined;
  }

  get leaseId(): string | undefined {
    return this.lease;
  }

  onLost(listener: (err: LeaseLostError) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  async register(_signal?: AbortSignal, resumeLeaseId?: string): Promise<void> {
    this.lease = resumeLeaseId ?? `lease-${++this.leaseSeq}`;
    this.registrations++;
  }

  async recordCompletion(name: string, hash: string): Promise<boolean> {
    const entry = this.schedule.get(name);
    if (entry === undefined || entry.hash !== hash || entry.desiredState !== "launched") return false;
    this.completions.set(name, hash);
    return true;
  }

  async completionOf(name: string): Promise<{ hash: string; machineId: string } | undefined> {
    const hash = this.completions.get(name);
    return hash === undefined ? undefined : { hash, machineId: this.machineId };
  }

  async readSchedule(): Promise<{ revision: number; entries: Map<string, ScheduleRecord> }> {
    return { revision: this.revision, entries: new Map(this.schedule) };
  }

  async watchSchedule(_fromRevision: number, handlers: ScheduleHandlers): Promise<WatchHandle> {
    this.watchers.add(handlers);
    return { close: async () => void this.watchers.delete(handlers) };
  }

  async publishStates(updates: ReadonlyMap<string, StateRecord | undefined>): Promise<void> {
    if (this.lease === undefined) throw new LeaseLostError("none", "publish unit states");
    await this.publishGate;
    if (this.failPublishes > 0) {
      this.failPublishes--;
      throw new Error("etcd did not answer in time");
    }
    for (const [name, state] of updates) {
      if (state) this.states.set(name, state);
      else this.states.delete(name);
    }
    this.publishes.push(new Map(updates));
  }

  async leave(): Promise<void> {
    this.lease = undefined;
    this.states.clear();
  }

  /** The engine writes (or, with undefined, deletes) this machine's schedule entry for `name`. */
  setEntry(name: string, record: ScheduleRecord | undefined): void {
    this.revision++;
    if (record) this.schedule.set(name, record);
    else this.schedule.delete(name);
    for (const w of this.watchers) w.onChanges([{ name, record }]);
  }

  /** The lease expires (etcd unreachable too long): its states vanish and the agent is told. */
  loseLease(): void {
    const id = this.lease ?? "none";
    this.lease = undefined;
    this.states.clear();
    for (const l of [...this.lostListeners]) l(new LeaseLostError(id, "keep the lease alive"));
  }
}
