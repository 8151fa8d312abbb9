/**
 * The agent's side of the registry: one machine's presence (create-only key on its own lease), its
 * schedule (`P/schedule/<id>/`, read with a revision then watched from revision + 1: the agent never
 * sees another machine's work), and its unit states (on the same lease, so they vanish with it).
 */
import { DuplicateMachineError, LeaseLostError, translateEtcdError } from "./errors";
import type { EtcdStore, WatchChange, WatchHandle } from "./etcd-store";
import { storeRecordIo, updateRecord } from "./record-update";
import { parseRecord, type MachineRecord, type ScheduleRecord, type StateRecord, type UnitRecord } from "./keys";
import { LeaseKeeper } from "./lease-keeper";
import { DEFAULT_MAX_TXN_OPS } from "./txn-limits";

/** A change of this machine's schedule: `record` undefined = the unit is no longer scheduled here. */
export interface ScheduleChange {
  name: string;
  record: ScheduleRecord | undefined;
}

export interface MachineSessionOptions {
  machine: MachineRecord;
  /** Presence/state lease TTL (fleet's `agent_ttl`). */
  ttlSeconds: number;
  /** Lease keepalive period; default min(TTL/3, 2 s) (see lease-keeper.ts). */
  keepaliveIntervalMs?: number;
  maxTxnOps?: number;
  /**
   * The lease this machine's presence is on in a session being replaced (a SIGHUP that changed the
   * connection or the TTL): the first registration moves the presence key from it to this session's
   * lease in one transaction (no gap, no leaving mark: the engine moves nothing), then calls `release`
   * so the old session can stop keeping its lease alive.
   */
  handover?: { leaseId: string; release: () => void };
}

export class MachineSession {
  private lease: LeaseKeeper | undefined;
  /** Leases of register attempts that failed without an answer (their create may have landed). */
  private unansweredLeaseIds: string[] = [];
  /**
   * Leases etcd declared gone while we held them. etcd revokes expired leases at a bounded rate
   * (1,000/s in 3.4), so after a mass expiry our presence key can outlive its lease for seconds: it is
   * ours, not a duplicate's, and the next registration takes it over instead of waiting.
   */
  private lostLeaseIds: string[] = [];
  private machine: MachineRecord;
  private readonly maxOps: number;
  private readonly lostListeners = new Set<(err: LeaseLostError) => void>();
  private handover: MachineSessionOptions["handover"] | undefined;
  private duplicate = false;

  constructor(
    private readonly store: EtcdStore,
    private readonly options: MachineSessionOptions,
  ) {
    this.machine = options.machine;
    this.handover = options.handover;
    this.maxOps = options.maxTxnOps ?? DEFAULT_MAX_TXN_OPS;
  }

  private leaseOptions(): { ttlSeconds: number; intervalMs?: number } {
    const { ttlSeconds, keepaliveIntervalMs } = this.options;
    return keepaliveIntervalMs === undefined ? { ttlSeconds } : { ttlSeconds, intervalMs: keepaliveIntervalMs };
  }

  get machineId(): string {
    return this.machine.id;
  }

  /** True while the presence key is held on a lease etcd has not declared gone. */
  get registered(): boolean {
    return this.lease !== undefined && !this.lease.isClosed;
  }

  /** When etcd last acknowledged our lease (epoch ms), or undefined while not registered. */
  get lastHeartbeatAt(): number | undefined {
    return this.registered && this.lease ? Date.now() - this.lease.sinceLastAckMs : undefined;
  }

  get leaseId(): string | undefined {
    return this.lease?.id;
  }

  /**
   * True while the last registration attempt failed because another live machine holds this machine
   * ID; false once one succeeds or fails for another reason (etcd away).
   */
  get duplicateId(): boolean {
    return this.duplicate;
  }

  /** Called when etcd says our lease is gone (presence and states went with it): register again. */
  onLost(listener: (err: LeaseLostError) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /**
   * Grants a lease and creates the presence key only if absent. Throws `DuplicateMachineError` when a
   * live machine holds the ID (the lease we granted is revoked again), `EtcdUnavailableError` when etcd
   * is away. Callers retry with backoff.
   *
   * `resumeLeaseId`: the lease of a previous run of this fleetd (it crashed or was killed and came
   * back before the TTL ran out). If the presence key is still on that lease, the lease is adopted:
   * no duplicate-ID wait, no machine death, no rescheduling.
   */
  async register(signal?: AbortSignal, resumeLeaseId?: string): Promise<void> {
    try {
      await this.registerOnce(signal, resumeLeaseId);
      this.duplicate = false;
    } catch (err) {
      this.duplicate = err instanceof DuplicateMachineError;
      throw err;
    }
  }

  private async registerOnce(signal: AbortSignal | undefined, resumeLeaseId: string | undefined): Promise<void> {
    const key = Buffer.from(this.store.keys.machine(this.machine.id));
    const handover = this.handover;
    if (handover) {
      // etcd errors throw here and the retry tries the handover again; otherwise it is done either way.
      const moved = await this.takeOver(handover.leaseId, signal);
      this.handover = undefined;
      handover.release();
      if (moved) return;
    }
    // Ours too: leases of earlier attempts whose create timed out without an answer (on a slow etcd
    // the create may have landed; without this the retry took our own key for a duplicate's), and
    // leases we lost whose key etcd has not removed yet.
    const ours = [...(resumeLeaseId ? [resumeLeaseId] : []), ...this.unansweredLeaseIds, ...this.lostLeaseIds];
    if (ours.length > 0) {
      const { kvs } = await this.store.range(`read machine ${this.machine.id}`, this.store.keys.machine(this.machine.id), { exact: true, ...(signal ? { signal } : {}) });
      const held = kvs[0]?.lease;
      if (held !== undefined && ours.includes(held)) {
        const resumed = await LeaseKeeper.resume(this.store, held, this.leaseOptions(), signal);
        if (resumed) {
          await this.store.call(
            `register machine ${this.machine.id}`,
            (o) => this.store.client.kv.put({ key, value: Buffer.from(JSON.stringify(this.machine)), lease: resumed.id }, o),
            signal,
          );
          this.adopt(resumed);
          return;
        }
        // Its lease expired but etcd has not removed the key yet: move the key to a new lease.
        if (await this.takeOver(held, signal)) return;
      }
    }
    const lease = await LeaseKeeper.grant(this.store, this.leaseOptions(), signal);
    let created: boolean;
    try {
      const res = await this.store.txn(
        `register machine ${this.machine.id}`,
        {
          compare: [{ key, target: "Version", result: "Equal", version: 0 }],
          success: [{ request_put: { key, value: Buffer.from(JSON.stringify(this.machine)), lease: lease.id } }],
        },
        signal,
      );
      created = res.succeeded;
    } catch (err) {
      // The create may have landed: the next attempt looks for this lease on the key.
      this.unansweredLeaseIds = [...this.unansweredLeaseIds.slice(-3), lease.id];
      lease.close();
      throw err;
    }
    if (!created) {
      // Expected to be harmless: an unused lease that cannot be revoked expires after its TTL.
      await lease.revoke().catch(() => undefined);
      throw new DuplicateMachineError(this.machine.id);
    }
    this.adopt(lease);
  }

  /**
   * Moves the presence key from `fromLeaseId` (our previous session's, or a lease of ours etcd has
   * expired but not yet revoked) to a new lease with this session's TTL, if it is still on that lease. Returns false when it is not (another etcd, or the
   * old lease expired): the caller registers as usual.
   */
  private async takeOver(fromLeaseId: string, signal?: AbortSignal): Promise<boolean> {
    const key = Buffer.from(this.store.keys.machine(this.machine.id));
    const lease = await LeaseKeeper.grant(this.store, this.leaseOptions(), signal);
    let moved: boolean;
    try {
      const res = await this.store.txn(
        `move machine ${this.machine.id} to a new lease`,
        {
          compare: [{ key, target: "Lease", result: "Equal", lease: fromLeaseId }],
          success: [{ request_put: { key, value: Buffer.from(JSON.stringify(this.machine)), lease: lease.id } }],
        },
        signal,
      );
      moved = res.succeeded;
    } catch (err) {
      this.unansweredLeaseIds = [...this.unansweredLeaseIds.slice(-3), lease.id];
      lease.close();
      throw err;
    }
    if (!moved) {
      await lease.revoke(signal);
      return false;
    }
    this.adopt(lease);
    return true;
  }

  /** Holds the presence on `lease` from now on; earlier leases of ours are forgotten. */
  private adopt(lease: LeaseKeeper): void {
    this.unansweredLeaseIds = [];
    this.lostLeaseIds = [];
    lease.onLost((err) => {
      if (this.lease !== lease) return;
      this.lostLeaseIds = [...this.lostLeaseIds.slice(-3), lease.id];
      for (const l of [...this.lostListeners]) l(err);
    });
    this.lease = lease;
  }

  /** Rewrites the presence record (e.g. new metadata after SIGHUP), on the same lease. */
  async updateMachine(machine: MachineRecord, signal?: AbortSignal): Promise<void> {
    this.machine = machine;
    const lease = this.requireLease("update machine record");
    await this.onLease(lease, "update machine record", () =>
      this.store.call(
        `update machine ${machine.id}`,
        (o) => this.store.client.kv.put({ key: Buffer.from(this.store.keys.machine(machine.id)), value: Buffer.from(JSON.stringify(machine)), lease: lease.id }, o),
        signal,
      ),
    );
  }

  private requireLease(operation: string): LeaseKeeper {
    if (!this.lease || this.lease.isClosed) throw new LeaseLostError(this.lease?.id ?? "(none)", operation);
    return this.lease;
  }

  /** This machine's whole schedule and the revision it was read at. */
  async readSchedule(signal?: AbortSignal): Promise<{ revision: number; entries: Map<string, ScheduleRecord> }> {
    const prefix = this.store.keys.schedule(this.machine.id);
    const snap = await this.store.range(`read the schedule of machine ${this.machine.id}`, prefix, signal ? { signal } : {});
    const entries = new Map<string, ScheduleRecord>();
    for (const kv of snap.kvs) entries.set(kv.key.slice(prefix.length), parseRecord<ScheduleRecord>(kv.key, kv.value));
    return { revision: snap.revision, entries };
  }

  /** Watches this machine's schedule from `fromRevision` (snapshot revision + 1). */
  async watchSchedule(fromRevision: number, handlers: { onChanges: (changes: ScheduleChange[]) => void; onError: (err: Error) => void }): Promise<WatchHandle> {
    const prefix = this.store.keys.schedule(this.machine.id);
    return this.store.watch(prefix, fromRevision, {
      onChanges: (changes: WatchChange[]) =>
        handlers.onChanges(
          changes.map((c) => ({
            name: c.key.slice(prefix.length),
            record: c.type === "put" ? parseRecord<ScheduleRecord>(c.key, c.value) : undefined,
          })),
        ),
      onError: handlers.onError,
    });
  }

  /**
   * Publishes unit states on our lease (`undefined` deletes), in as few transactions as the txn op
   * limit allows. Throws `LeaseLostError` if the lease is gone (states would outlive us otherwise).
   */
  async publishStates(updates: ReadonlyMap<string, StateRecord | undefined>, signal?: AbortSignal): Promise<void> {
    const lease = this.requireLease("publish unit states");
    const ops = [...updates].map(([name, state]) => {
      const key = Buffer.from(this.store.keys.state(name, this.machine.id));
      return state ? { request_put: { key, value: Buffer.from(JSON.stringify(state)), lease: lease.id } } : { request_delete_range: { key } };
    });
    for (let i = 0; i < ops.length; i += this.maxOps) {
      await this.onLease(lease, "publish unit states", () =>
        this.store.write(`publish ${ops.length} unit states of machine ${this.machine.id}`, ops.slice(i, i + this.maxOps), signal),
      );
    }
  }

  /**
   * Runs a write on our lease. A put on an expired lease answers "lease not found" (a LeaseLostError
   * from the store): the lease is gone for good even if its keepalives have not said so yet (a stream
   * stuck on a saturated connection), so it is declared lost and the agent registers again.
   */
  private async onLease<T>(lease: LeaseKeeper, operation: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      const e = translateEtcdError(err, operation, lease.id);
      if (!(e instanceof LeaseLostError)) throw e;
      const lost = new LeaseLostError(lease.id, operation, { cause: err });
      lease.lost(lost);
      throw lost;
    }
  }

  /**
   * Records that this machine ran the unit's body `hash` to success (a batch unit): sets `completed`
   * on `P/units/<name>` (permanent, so it outlives this machine), only if the record still has that
   * body and is launched, with compare on its revision. Returns false when it no longer applies.
   */
  async recordCompletion(name: string, hash: string, signal?: AbortSignal): Promise<boolean> {
    const applies = (r: UnitRecord): boolean => r.hash === hash && r.desiredState === "launched" && !r.global;
    const res = await updateRecord<UnitRecord>(
      storeRecordIo(this.store),
      this.store.keys.unit(name),
      `record the completion of ${name} on machine ${this.machine.id}`,
      (record) => (applies(record) && record.completed?.hash !== hash ? { ...record, completed: { hash, machineId: this.machine.id, at: new Date().toISOString() } } : undefined),
      { attempts: 3, ...(signal ? { signal } : {}) },
    );
    return res.found && applies(res.record) && res.record.completed?.hash === hash;
  }

  /**
   * The completion recorded on `P/units/<name>` (by any machine), if any: an adopting agent's proof
   * that a batch unit already ran when systemd has forgotten the run (it unloads an ended unit).
   */
  async completionOf(name: string, signal?: AbortSignal): Promise<{ hash: string; machineId: string } | undefined> {
    const key = this.store.keys.unit(name);
    const { kvs } = await this.store.range(`read unit ${name}`, key, { exact: true, ...(signal ? { signal } : {}) });
    const kv = kvs[0];
    const completed = kv ? parseRecord<UnitRecord>(kv.key, kv.value).completed : undefined;
    return completed ? { hash: completed.hash, machineId: completed.machineId } : undefined;
  }

  /** Graceful leave: revoking the lease removes presence and every state of ours at once. */
  async leave(signal?: AbortSignal): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    if (!lease) return;
    // Say we are leaving on purpose, so the engine moves our units at once instead of waiting for us
    // to come back; then revoke (presence and states go in one step).
    let markFailed: Error | undefined;
    await this.store
      .call(
        `mark machine ${this.machine.id} as leaving`,
        (o) => this.store.client.kv.put({ key: Buffer.from(this.store.keys.machine(this.machine.id)), value: Buffer.from(JSON.stringify({ ...this.machine, leaving: true })), lease: lease.id }, o),
        signal,
      )
      .catch((err: unknown) => {
        markFailed = err as Error;
      });
    await lease.revoke(signal);
    // Revoked, but without the mark the engine waits machine_loss_grace before moving our units.
    if (markFailed) throw new Error(`${markFailed.message}; the lease is revoked, but its units move only after machine_loss_grace`, { cause: markFailed });
  }

  /** Stops keepalives without revoking (the lease expires after its TTL, as after a crash). */
  abandon(): void {
    this.lease?.close();
    this.lease = undefined;
  }
}
