/**
 * The engine: campaigns for leadership; while leader, keeps an in-memory model (snapshot + watches
 * from its revision + 1), reconciles it incrementally in debounced batches, and writes placement +
 * schedule changes in guarded transactions. A full resync runs rarely as a safety net.
 *
 * No churn: an etcd leader change or a client reconnect only pauses watches (they resume from their
 * revision); a newly elected engine does not unschedule units from machines it has not seen yet until
 * the grace period (agent TTL) has passed since it took over.
 */
import { delay } from "../../lib/async/delay";
import { parseRequirements } from "../../lib/unit";
import { SchedulerModel } from "../scheduler/scheduler-model";
import type { Decision, ReconcileResult } from "../scheduler/types";
import { BodyCache } from "../registry/body-cache";
import { isRetriable } from "../registry/errors";
import type { EtcdStore, StoredKv, WatchHandle } from "../registry/etcd-store";
import { DEFAULT_MAX_TXN_OPS } from "../registry/machine-session";
import { Waker } from "../common/waker";
import { anySignal } from "../../lib/async/any-signal";
import { ClusterMirror, emptyTouched, mirroredPrefixes, type Touched } from "./cluster-mirror";
import { LeaderElection } from "./leader-election";
import { packBatches, planUnit, type OpGroup } from "./placement-plan";
import { UnscheduledReasons } from "./unscheduled-reasons";

/** Placement transactions in flight at once. */
const WRITE_CONCURRENCY = 4;

export interface EngineEvent {
  level: "debug" | "info" | "warn" | "error";
  message: string;
}

export interface EngineOptions {
  store: EtcdStore;
  machineId: string;
  /** Leader lease TTL (fleet: 5 × engine_reconcile_interval). */
  leaderTtlSeconds: number;
  /**
   * Grace before a machine counts as dead (agent TTL): a new leader does not unschedule from machines
   * it has not seen until this long after taking over, and units of a machine whose presence vanished
   * move only once it has stayed away this long (a host cut off from etcd that comes back in time
   * keeps its units; nothing stops, nothing runs twice).
   */
  graceMs: number;
  /**
   * Grace for machines that vanished (fleetd passes `machine_loss_grace`, default 10 s; here the default
   * is `graceMs`); the first kind of grace stays `graceMs`. A partition shorter than agent TTL + this
   * keeps its units in place; a longer one moves them.
   */
  lossGraceMs?: number;
  /** Full resync period (safety net). */
  resyncIntervalMs: number;
  /** Batch window after a change before a pass runs. Default 10 ms. */
  debounceMs?: number;
  /**
   * While changes keep arriving (a flood of submits), keep collecting them for up to this long before
   * a pass, so one pass places a big batch and each agent gets its units in fewer events. Default 200 ms.
   */
  maxBatchWaitMs?: number;
  maxTxnOps?: number;
  onEvent?: (e: EngineEvent) => void;
}

/** Counters for benches and diagnostics. */
export interface EngineStats {
  passes: number;
  transactions: number;
  failedTransactions: number;
  resyncs: number;
  /** Milliseconds spent feeding + reconciling the model, and writing placements. */
  decideMs: number;
  writeMs: number;
}

export class Engine {
  readonly election: LeaderElection;
  readonly stats: EngineStats = { passes: 0, transactions: 0, failedTransactions: 0, resyncs: 0, decideMs: 0, writeMs: 0 };
  private readonly emit: (e: EngineEvent) => void;
  private term: LeaderTerm | undefined;

  constructor(private readonly options: EngineOptions) {
    this.emit = options.onEvent ?? (() => undefined);
    this.election = new LeaderElection(options.store, {
      machineId: options.machineId,
      ttlSeconds: options.leaderTtlSeconds,
      onEvent: this.emit,
    });
  }

  get isLeader(): boolean {
    return this.election.isLeader;
  }

  /** The last pass's result while leader (unscheduled units with reasons), else undefined. */
  lastResult(): ReconcileResult | undefined {
    return this.term?.lastResult;
  }

  /** Why each machine cannot run `unit` (invariant 4), while leader. */
  explain(unit: string): ReturnType<SchedulerModel["explain"]> {
    return this.term?.model.explain(unit);
  }

  /** Runs until `signal` aborts, leading when elected. */
  async run(signal: AbortSignal): Promise<void> {
    let termController: AbortController | undefined;
    let termDone: Promise<void> = Promise.resolve();
    const off = this.election.onChange((leader) => {
      termController?.abort();
      if (!leader) return;
      const c = (termController = new AbortController());
      const term = (this.term = new LeaderTerm(this.options, this.election, this.stats, this.emit));
      const previous = termDone;
      termDone = previous.then(() => {
        const combined = anySignal([signal, c.signal]);
        return term
          .run(combined.signal)
          .catch((err: unknown) => {
            if (!c.signal.aborted && !signal.aborted) {
              this.emit({ level: "error", message: `Engine term ended: ${(err as Error).message}; resigning` });
              void this.election.resign();
            }
          })
          .finally(combined.dispose);
      });
    });
    try {
      await this.election.run(signal);
    } finally {
      off();
      termController?.abort();
      await termDone;
    }
  }

  /** Asks the leading engine for a full resync (re-read everything, rebuild the model, collect bodies). */
  requestResync(): void {
    this.term?.requestResync();
  }

  /** Gives up leadership at once (graceful shutdown). */
  async resign(): Promise<void> {
    await this.election.resign();
  }

  /** Stops keeping the leader lease alive without deleting it (simulates a crash in tests). */
  abandon(): void {
    this.election.abandon();
  }
}

/** One period of leadership: model, watches, passes. */
class LeaderTerm {
  readonly model = new SchedulerModel();
  lastResult: ReconcileResult | undefined;
  private mirror: ClusterMirror;
  private readonly bodies: BodyCache;
  /** `P/unscheduled/`: why units have no machine, for the API and fleetctl (invariant 4). */
  private readonly reasons: UnscheduledReasons;
  private touched: Touched = emptyTouched();
  private readonly waker = new Waker();
  private watches: WatchHandle[] = [];
  /** Machine → time until which units on it are held (machines not seen yet, or recently lost). */
  private readonly holdUntil = new Map<string, number>();
  private readonly inModel = new Set<string>();
  private readonly graceUntil: number;
  private readonly maxOps: number;
  private needResync = false;
  /** Count of watched changes, to notice whether more keep arriving while a batch is collected. */
  private changes = 0;

  constructor(
    private readonly options: EngineOptions,
    private readonly election: LeaderElection,
    private readonly stats: EngineStats,
    private readonly emit: (e: EngineEvent) => void,
  ) {
    this.mirror = new ClusterMirror(options.store.keys);
    this.bodies = new BodyCache(options.store);
    this.reasons = new UnscheduledReasons(options.store.keys);
    this.graceUntil = Date.now() + options.graceMs;
    this.maxOps = options.maxTxnOps ?? DEFAULT_MAX_TXN_OPS;
  }

  async run(signal: AbortSignal): Promise<void> {
    try {
      while (!signal.aborted) {
        try {
          await this.resync(signal);
          let nextResync = Date.now() + this.options.resyncIntervalMs;
          while (!signal.aborted && !this.needResync) {
            await this.pass(signal);
            const now = Date.now();
            if (now >= nextResync) break;
            // Wake when the next hold runs out, so its units move without waiting for another event.
            const nextHold = Math.min(...[this.graceUntil, ...this.holdUntil.values()].filter((t) => t > now));
            const untilGrace = Number.isFinite(nextHold) ? nextHold - now + 5 : Number.POSITIVE_INFINITY;
            await this.waker.wait(signal, Math.min(nextResync - now, untilGrace));
            await this.collect(signal);
            if (Date.now() >= nextResync) nextResync = 0;
          }
        } catch (err) {
          if (signal.aborted) return;
          if (!isRetriable(err)) throw err;
          this.emit({ level: "warn", message: `Engine: ${(err as Error).message}; resyncing` });
          await delay(500, signal);
        }
      }
    } finally {
      await this.closeWatches();
    }
  }

  /** Waits the debounce, and keeps waiting while changes still pour in (up to maxBatchWaitMs). */
  private async collect(signal: AbortSignal): Promise<void> {
    const debounce = this.options.debounceMs ?? 10;
    if (debounce === 0) return;
    const until = Date.now() + (this.options.maxBatchWaitMs ?? 200);
    let seen = this.changes;
    await delay(debounce, signal);
    while (this.changes !== seen && Date.now() < until) {
      seen = this.changes;
      await delay(debounce, signal);
    }
  }

  requestResync(): void {
    this.needResync = true;
    this.waker.notify();
  }

  private async closeWatches(): Promise<void> {
    const w = this.watches;
    this.watches = [];
    await Promise.all(w.map((h) => h.close().catch(() => undefined)));
  }

  /** Reads everything in one snapshot, rebuilds model and mirror, watches from revision + 1. */
  private async resync(signal: AbortSignal): Promise<void> {
    this.needResync = false;
    this.stats.resyncs++;
    await this.closeWatches();
    const prefixes = mirroredPrefixes(this.options.store.keys);
    const { revision, results } = await this.options.store.rangeMany(
      "read the cluster for the engine",
      [...prefixes.map((prefix) => ({ prefix })), { prefix: this.options.store.keys.unscheduledAll }, { prefix: this.options.store.keys.bodies, keysOnly: true }],
      signal,
    );
    const bodyKeys = results.pop() ?? [];
    // Only the leader writes these: read once per resync, not watched.
    this.reasons.load(results.pop() ?? []);
    this.mirror = new ClusterMirror(this.options.store.keys);
    this.touched = emptyTouched();
    this.mirror.load(results, this.touched);
    await this.collectBodies(bodyKeys, signal);
    // Placements on machines absent from the snapshot are held until the grace after taking over
    // (for a resync mid-term the deadline may already be past).
    for (const m of new Set([...this.mirror.placements.values(), ...this.mirror.schedule.keys()])) {
      if (!this.mirror.machines.has(m) && !this.holdUntil.has(m)) this.holdUntil.set(m, this.graceUntil);
    }
    // Everything known must be fed to the (possibly fresh) model: touch all units and placements.
    for (const n of [...this.mirror.placements.keys(), ...this.mirror.scheduledOn.keys()]) this.touched.placements.add(n);
    this.model.markAllDirty();
    for (const prefix of prefixes) {
      this.watches.push(
        await this.options.store.watch(prefix, revision + 1, {
          onChanges: (changes) => {
            for (const c of changes) this.mirror.apply(c, this.touched);
            this.changes += changes.length;
            this.waker.notify();
          },
          onError: (err) => {
            this.emit({ level: "warn", message: `Engine watch of ${prefix} ended (${err.message}); resyncing` });
            this.needResync = true;
            this.waker.notify();
          },
        }),
      );
    }
  }

  /**
   * Deletes unit bodies no unit refers to (in this snapshot). Each delete compares the body's revision:
   * the API rewrites a body with every unit that uses it, so a body that gained a user since the
   * snapshot has a newer revision and survives.
   */
  private async collectBodies(bodyKeys: readonly StoredKv[], signal: AbortSignal): Promise<void> {
    const used = new Set([...this.mirror.units.values()].map((u) => this.options.store.keys.body(u.record.hash)));
    const unused = bodyKeys.filter((kv) => !used.has(kv.key));
    const guard = this.election.leaderGuard();
    for (let i = 0; i < unused.length; i += this.maxOps - 1) {
      const batch = unused.slice(i, i + this.maxOps - 1);
      // One transaction per body would be needed for per-body compares to be independent; a failed
      // batch simply leaves its bodies for the next resync.
      await this.options.store.txn(
        `delete ${batch.length} unused unit bodies`,
        {
          compare: [guard, ...batch.map((kv) => ({ key: Buffer.from(kv.key), target: "Mod" as const, result: "Equal" as const, mod_revision: kv.modRevision }))],
          success: batch.map((kv) => ({ request_delete_range: { key: Buffer.from(kv.key) } })),
        },
        signal,
      );
    }
    if (unused.length > 0) this.emit({ level: "debug", message: `Deleted up to ${unused.length} unused unit bodies` });
  }

  /** Feeds what changed into the model (loading bodies first), reconciles, writes. */
  private async pass(signal: AbortSignal): Promise<void> {
    this.stats.passes++;
    const started = performance.now();
    const t = this.touched;
    this.touched = emptyTouched();
    const names = new Set<string>([...t.units, ...t.placements]);
    // Holds that ran out: the machine did not come back; re-plan everything it still has entries for.
    const now = Date.now();
    for (const [m, until] of [...this.holdUntil]) {
      if (now < until) continue;
      this.holdUntil.delete(m);
      if (this.mirror.machines.has(m)) continue;
      for (const n of this.mirror.schedule.get(m)?.keys() ?? []) names.add(n);
      for (const [n, pm] of this.mirror.placements) if (pm === m) names.add(n);
    }
    await this.bodies.load(
      [...t.units].flatMap((n) => {
        const u = this.mirror.units.get(n);
        return u ? [u.record.hash] : [];
      }),
      signal,
    );
    for (const id of [...t.machines].sort()) {
      const m = this.mirror.machines.get(id);
      if (m) {
        this.holdUntil.delete(id);
        this.inModel.add(id);
        this.model.setMachine({ id, publicIP: m.publicIP, metadata: this.mirror.metadataOf(id) });
      } else if (this.inModel.delete(id)) {
        if (this.mirror.departed.delete(id)) {
          this.emit({ level: "info", message: `Machine ${id} left the cluster; moving its units` });
        } else {
          const grace = this.options.lossGraceMs ?? this.options.graceMs;
          this.holdUntil.set(id, Date.now() + grace);
          this.emit({ level: "info", message: `Machine ${id} is gone; its units move if it is not back within ${grace} ms` });
        }
        this.model.removeMachine(id);
        for (const n of this.mirror.schedule.get(id)?.keys() ?? []) names.add(n);
      }
    }
    for (const name of t.units) {
      const u = this.mirror.units.get(name);
      const body = u && this.bodies.get(u.record.hash);
      if (!u || !body) {
        // Destroyed, or a unit whose body is missing: nothing can be scheduled from it.
        this.model.removeUnit(name);
        if (u) this.emit({ level: "error", message: `Cannot schedule ${name}: its body ${u.record.hash} is missing from etcd` });
        continue;
      }
      const { requirements } = parseRequirements(name, body.options);
      this.model.setUnit({ name, requirements, desiredState: u.record.desiredState });
    }
    for (const name of t.placements) this.feedPlacement(name);

    const result = this.model.reconcile();
    const decisions = this.holdDuringGrace(result.decisions);
    for (const d of decisions) names.add(d.unit);
    this.lastResult = result;
    for (const d of decisions) this.emit({ level: "debug", message: `${d.kind === "schedule" ? "Scheduled" : "Unscheduled"} ${d.unit} ${d.kind === "schedule" ? "to" : "from"} ${d.machineId}: ${d.reason}` });
    const reasons = this.reasons.plan(result.unscheduled, (n) => this.model.explain(n), this.inModel.size);
    const decided = performance.now();
    this.stats.decideMs += decided - started;
    await this.write([...names].sort(), signal, reasons.groups);
    // Explanations left over (budget per pass): another pass soon writes them.
    if (reasons.more) this.waker.notify();
    this.stats.writeMs += performance.now() - decided;
  }

  private feedPlacement(name: string): void {
    const u = this.mirror.units.get(name);
    if (u?.record.global) this.model.setGlobalPlacements(name, this.mirror.scheduledOn.get(name) ?? []);
    else this.model.setPlacement(name, this.mirror.placements.get(name));
  }

  /** Whether units on `machine` are held (not seen yet by a new leader, or lost less than the grace ago). */
  private held(machine: string, now = Date.now()): boolean {
    const until = this.holdUntil.get(machine);
    return until !== undefined && now < until;
  }

  /**
   * Units on held machines stay where they are: their agents may simply not have re-registered yet
   * (a new leader, an etcd hiccup, a host briefly cut off from etcd).
   */
  private holdDuringGrace(decisions: Decision[]): Decision[] {
    const now = Date.now();
    const held = new Set<string>();
    for (const d of decisions) if (d.kind === "unschedule" && !d.global && !this.mirror.machines.has(d.machineId) && this.held(d.machineId, now)) held.add(d.unit);
    if (held.size === 0) return decisions;
    for (const name of held) this.model.setPlacement(name, this.mirror.placements.get(name));
    this.emit({ level: "debug", message: `Holding ${held.size} unit(s) on machines that may come back within the grace period` });
    return decisions.filter((d) => !held.has(d.unit));
  }

  /** Machines a global unit should be on: the model's, plus held machines that still have its entry. */
  private globalTargets(name: string): string[] {
    const out = new Set(this.model.globalMachines(name));
    for (const m of this.mirror.scheduledOn.get(name) ?? []) if (!this.mirror.machines.has(m) && this.held(m)) out.add(m);
    return [...out];
  }

  /** Plans one op group per unit and writes them, with `extra` groups, in guarded, packed transactions. */
  private async write(names: readonly string[], signal: AbortSignal, extra: readonly OpGroup[] = []): Promise<void> {
    const groups: OpGroup[] = [...extra];
    for (const name of names) {
      const u = this.mirror.units.get(name);
      const global = u?.record.global ?? false;
      const placement = global ? undefined : this.model.placementOf(name);
      // A non-global unit's schedule entry mirrors its placement, even while its machine is away
      // (held during the grace period): only unscheduling removes it.
      const machines = global ? this.globalTargets(name) : placement !== undefined ? [placement] : [];
      const g = planUnit(this.mirror, name, { placement: u ? placement : undefined, machines }, (h) => this.bodies.get(h)?.text);
      if (g) groups.push(g);
    }
    const guard = this.election.leaderGuard();
    const leaderKey = Buffer.from(this.options.store.keys.leader);
    // Groups sorted by machine: one transaction then carries whole machines' work, so each agent
    // receives its units in one watch event and answers with one state transaction.
    groups.sort((a, b) => (a.machine < b.machine ? -1 : a.machine > b.machine ? 1 : 0));
    const batches = packBatches(groups, this.maxOps);
    let next = 0;
    let lostLeadership = false;
    const worker = async (): Promise<void> => {
      while (next < batches.length && !signal.aborted && !lostLeadership) {
        const batch = batches[next++]!;
        const res = await this.options.store.txn(
          `write ${batch.groups.length} placements`,
          { compare: [guard, ...batch.compares], success: batch.ops, failure: [{ request_range: { key: leaderKey } }] },
          signal,
        );
        this.stats.transactions++;
        if (res.succeeded) {
          for (const g of batch.groups) g.apply();
          continue;
        }
        this.stats.failedTransactions++;
        const holder = res.responses[0]?.response_range.kvs[0];
        if (holder?.lease !== guard.lease) {
          lostLeadership = true;
          return;
        }
        // Something we decided from changed concurrently: tell the model the truth and decide again.
        for (const g of batch.groups) {
          this.touched.units.add(g.unit);
          this.touched.placements.add(g.unit);
          this.feedPlacement(g.unit);
        }
        this.waker.notify();
      }
    };
    // Batches are independent (one unit's keys never span two), so a few may be in flight at once.
    await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, batches.length) }, worker));
    if (lostLeadership) {
      this.emit({ level: "warn", message: `Engine ${this.options.machineId} lost leadership while writing placements` });
      this.election.abandon();
    }
  }
}
