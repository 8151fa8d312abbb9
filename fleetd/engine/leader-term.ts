/**
 * One period of leadership: keeps an in-memory model (snapshot + watches from its revision + 1),
 * reconciles it incrementally in debounced batches, and writes placement + schedule changes through
 * the placement writer. A full resync runs rarely as a safety net.
 *
 * A newly elected engine does not unschedule units from machines it has not seen yet until the grace
 * period (agent TTL) has passed since it took over; units of a machine that vanished move only once it
 * has stayed away for the loss grace (./machine-holds).
 */
import { systemClock, type Clock } from "../../lib/async/clock";
import { parseRequirements } from "../../lib/unit";
import { SchedulerModel } from "../scheduler/scheduler-model";
import type { Decision, ReconcileResult } from "../scheduler/types";
import { BodyCache } from "../registry/body-cache";
import { isRetriable } from "../registry/errors";
import type { StoredKv, WatchHandle } from "../registry/etcd-store";
import { DEFAULT_MAX_TXN_OPS } from "../registry/txn-limits";
import { hashesOf, isCompleted } from "../registry/keys";
import { Waker } from "../common/waker";
import { ClusterMirror, emptyTouched, leaderWatchedPrefixes, mirroredPrefixes, validCapacity, type Touched } from "./cluster-mirror";
import type { EngineEvent, EngineSettings, EngineStats } from "./engine-options";
import { MachineHolds } from "./machine-holds";
import { packBatches, planUnit, type Batch, type OpGroup } from "./placement-plan";
import type { PlacementWriter } from "./placement-writer";
import type { ScheduleStore } from "./schedule-store";
import { UnscheduledReasons } from "./unscheduled-reasons";

/** Placement transactions in flight at once. */
const WRITE_CONCURRENCY = 4;

/** One period of leadership: model, watches, passes. */
export class LeaderTerm {
  readonly model = new SchedulerModel();
  lastResult: ReconcileResult | undefined;
  private mirror: ClusterMirror;
  private readonly bodies: BodyCache;
  /** `P/unscheduled/`: why units have no machine, for the API and fleetctl (invariant 4). */
  private readonly reasons: UnscheduledReasons;
  private touched: Touched = emptyTouched();
  private readonly waker: Waker;
  private watches: WatchHandle[] = [];
  /** Machines whose units are held (not seen yet by this leader, or recently lost). */
  private readonly holds: MachineHolds;
  private readonly inModel = new Set<string>();
  private readonly clock: Clock;
  private readonly maxOps: number;
  private needResync = false;
  /** Count of watched changes, to notice whether more keep arriving while a batch is collected. */
  private changes = 0;

  constructor(
    private readonly options: EngineSettings,
    private readonly store: ScheduleStore,
    private readonly writer: PlacementWriter,
    private readonly stats: EngineStats,
    private readonly emit: (e: EngineEvent) => void,
    /** A write found another engine leading: stop acting as leader. */
    private readonly onLostLeadership: () => void,
  ) {
    this.clock = options.clock ?? systemClock;
    this.waker = new Waker(this.clock);
    this.mirror = new ClusterMirror(store.keys);
    this.bodies = new BodyCache(store);
    this.reasons = new UnscheduledReasons(store.keys);
    this.holds = new MachineHolds(this.clock, options.graceMs);
    this.maxOps = options.maxTxnOps ?? DEFAULT_MAX_TXN_OPS;
  }

  async run(signal: AbortSignal): Promise<void> {
    try {
      while (!signal.aborted) {
        try {
          await this.resync(signal);
          let nextResync = this.clock.now() + this.options.resyncIntervalMs;
          while (!signal.aborted && !this.needResync) {
            await this.pass(signal);
            const now = this.clock.now();
            if (now >= nextResync) break;
            // Wake when the next hold runs out, so its units move without waiting for another event.
            const untilGrace = this.holds.msUntilNext(now) + 5;
            await this.waker.wait(signal, Math.min(nextResync - now, untilGrace));
            await this.collect(signal);
            if (this.clock.now() >= nextResync) nextResync = 0;
          }
        } catch (err) {
          if (signal.aborted) return;
          if (!isRetriable(err)) throw err;
          this.emit({ level: "warn", message: `Engine: ${(err as Error).message}; resyncing` });
          await this.clock.sleep(500, signal);
        }
      }
    } finally {
      await this.closeWatches();
    }
  }

  /**
   * Waits the debounce, and keeps waiting while changes still pour in (up to maxBatchWaitMs), unless
   * the units touched so far already fill every write slot: waiting longer would add latency and no
   * batching (at 1k units per-PUT it held every unit ~200 ms in a flood).
   */
  private async collect(signal: AbortSignal): Promise<void> {
    const debounce = this.options.debounceMs ?? 10;
    if (debounce === 0) return;
    const until = this.clock.now() + (this.options.maxBatchWaitMs ?? 200);
    const enough = WRITE_CONCURRENCY * Math.floor(this.maxOps / 2);
    let seen = this.changes;
    await this.clock.sleep(debounce, signal);
    while (this.changes !== seen && this.clock.now() < until && this.touched.units.size < enough) {
      seen = this.changes;
      await this.clock.sleep(debounce, signal);
    }
  }

  requestResync(): void {
    this.needResync = true;
    this.waker.notify();
  }

  private async closeWatches(): Promise<void> {
    const w = this.watches;
    this.watches = [];
    // Expected: closing fails only while etcd is away (the handle already ignores that); any other
    // failure leaves a watch whose changes this closed term ignores.
    await Promise.all(w.map((h) => h.close().catch(() => undefined)));
  }

  /** Reads everything in one snapshot, rebuilds model and mirror, watches from revision + 1. */
  private async resync(signal: AbortSignal): Promise<void> {
    this.needResync = false;
    this.stats.resyncs++;
    await this.closeWatches();
    const prefixes = mirroredPrefixes(this.store.keys);
    const { revision, results } = await this.store.rangeMany(
      "read the cluster for the engine",
      [...prefixes.map((prefix) => ({ prefix })), { prefix: this.store.keys.unscheduledAll }, { prefix: this.store.keys.bodies, keysOnly: true }],
      signal,
    );
    const bodyKeys = results.pop() ?? [];
    // Only the leader writes these: read once per resync, not watched.
    this.reasons.load(results.pop() ?? []);
    this.mirror = new ClusterMirror(this.store.keys);
    this.touched = emptyTouched();
    this.mirror.load(results, this.touched);
    await this.collectBodies(bodyKeys, signal);
    // Placements on machines absent from the snapshot are held until the grace after taking over
    // (for a resync mid-term the deadline may already be past).
    for (const m of new Set([...this.mirror.placements.values(), ...this.mirror.schedule.keys()])) {
      if (!this.mirror.machines.has(m)) this.holds.holdUnseen(m);
    }
    // Everything known must be fed to the (possibly fresh) model: touch all units and placements.
    for (const n of [...this.mirror.placements.keys(), ...this.mirror.scheduledOn.keys()]) this.touched.placements.add(n);
    this.model.markAllDirty();
    for (const prefix of leaderWatchedPrefixes(this.store.keys)) {
      this.watches.push(
        await this.store.watch(prefix, revision + 1, {
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
    const used = new Set([...this.mirror.units.values()].flatMap((u) => hashesOf(u.record).map((h) => this.store.keys.body(h))));
    const unused = bodyKeys.filter((kv) => !used.has(kv.key));
    for (let i = 0; i < unused.length; i += this.maxOps - 1) {
      await this.writer.deleteBodies(unused.slice(i, i + this.maxOps - 1), signal);
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
    for (const m of this.holds.takeExpired()) {
      if (this.mirror.machines.has(m)) continue;
      for (const n of this.mirror.schedule.get(m)?.keys() ?? []) names.add(n);
      for (const [n, pm] of this.mirror.placements) if (pm === m) names.add(n);
    }
    await this.bodies.load(
      [...t.units].flatMap((n) => {
        const u = this.mirror.units.get(n);
        return u ? hashesOf(u.record) : [];
      }),
      signal,
    );
    for (const id of [...t.machines].sort()) {
      const m = this.mirror.machines.get(id);
      if (m) {
        this.holds.seen(id);
        this.inModel.add(id);
        this.model.setMachine({ id, publicIP: m.publicIP, metadata: this.mirror.metadataOf(id), ...(validCapacity(m.capacity) ? { capacity: m.capacity } : {}) });
      } else if (this.inModel.delete(id)) {
        if (this.mirror.departed.delete(id)) {
          this.emit({ level: "info", message: `Machine ${id} left the cluster; moving its units` });
        } else {
          const grace = this.options.lossGraceMs ?? this.options.graceMs;
          this.holds.lose(id, grace);
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
      this.model.setUnit({ name, requirements, desiredState: u.record.desiredState, completed: isCompleted(u.record) });
    }
    for (const name of t.placements) this.feedPlacement(name);

    // Units of held machines are left alone by the model itself (no unschedule-then-hold churn on
    // every pass: at 100,000 units that was most of the engine's CPU while machines were away).
    const now = this.clock.now();
    const result = this.model.reconcile({ holding: (m) => !this.mirror.machines.has(m) && this.holds.held(m, now) });
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

  /**
   * Units on held machines stay where they are: their agents may simply not have re-registered yet
   * (a new leader, an etcd hiccup, a host briefly cut off from etcd).
   */
  private holdDuringGrace(decisions: Decision[]): Decision[] {
    const now = this.clock.now();
    const held = new Set<string>();
    for (const d of decisions) if (d.kind === "unschedule" && !d.global && !this.mirror.machines.has(d.machineId) && this.holds.held(d.machineId, now)) held.add(d.unit);
    if (held.size === 0) return decisions;
    for (const name of held) this.model.setPlacement(name, this.mirror.placements.get(name));
    this.emit({ level: "debug", message: `Holding ${held.size} unit(s) on machines that may come back within the grace period` });
    return decisions.filter((d) => !held.has(d.unit));
  }

  /** Machines a global unit should be on: the model's, plus held machines that still have its entry. */
  private globalTargets(name: string): string[] {
    const out = new Set(this.model.globalMachines(name));
    for (const m of this.mirror.scheduledOn.get(name) ?? []) if (!this.mirror.machines.has(m) && this.holds.held(m)) out.add(m);
    return [...out];
  }

  /**
   * Puts into the mirror what etcd has for the units of a batch that failed on a compare: the keys
   * the batch would have written, each unit's placement, then the schedule entry on the machine
   * etcd places it on (only placement changes carry compares, so only non-global units get here).
   */
  private async readBack(batch: Batch, signal: AbortSignal): Promise<void> {
    const k = this.store.keys;
    const read = new Set<string>();
    const readKeys = async (keys: string[]): Promise<void> => {
      keys = [...new Set(keys)].filter((key) => key !== "" && !read.has(key));
      for (let i = 0; i < keys.length; i += this.maxOps) {
        const chunk = keys.slice(i, i + this.maxOps);
        for (const key of chunk) read.add(key);
        const { results } = await this.store.rangeMany(`read back ${chunk.length} keys of a placement transaction that found a change`, chunk.map((prefix) => ({ prefix, exact: true })), signal);
        chunk.forEach((key, j) => {
          const kv = results[j]?.[0];
          this.mirror.apply(kv ? { type: "put", key, value: kv.value, modRevision: kv.modRevision } : { type: "delete", key, value: Buffer.alloc(0), modRevision: 0 }, this.touched);
        });
      }
    };
    await readKeys([...batch.ops.map((op) => String(op.request_put?.key ?? op.request_delete_range?.key ?? "")), ...batch.groups.map((g) => k.placement(g.unit))]);
    await readKeys(batch.groups.flatMap((g) => {
      const m = this.mirror.placements.get(g.unit);
      return m === undefined ? [] : [k.schedule(m, g.unit)];
    }));
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
    // Groups sorted by machine: one transaction then carries whole machines' work, so each agent
    // receives its units in one watch event and answers with one state transaction.
    groups.sort((a, b) => (a.machine < b.machine ? -1 : a.machine > b.machine ? 1 : 0));
    const batches = packBatches(groups, this.maxOps);
    let next = 0;
    let lostLeadership = false;
    const worker = async (): Promise<void> => {
      while (next < batches.length && !signal.aborted && !lostLeadership) {
        const batch = batches[next++]!;
        const outcome = await this.writer.write(batch, signal);
        this.stats.transactions++;
        if (outcome === "written") {
          for (const g of batch.groups) g.apply();
          continue;
        }
        this.stats.failedTransactions++;
        if (outcome === "not-leader") {
          lostLeadership = true;
          return;
        }
        // Something we decided from changed concurrently (a unit record: its watch brings the change),
        // or etcd's placements differ from the mirror's (they are not watched): read the batch's keys
        // back, tell the model the truth and decide again.
        await this.readBack(batch, signal);
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
      this.onLostLeadership();
    }
  }
}
