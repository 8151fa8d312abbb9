/**
 * `GET /why/<unit>` and `POST /rebalance`, answered by whichever fleetd fleetctl talks to (engine or
 * not): each builds a scheduler model from one consistent etcd read (./snapshot-model.ts), the keys
 * the leading engine schedules from, so no call to the leader's process is needed and the answer is
 * the cluster as of that revision.
 *
 * A rebalance move is written like the engine writes a move (placement, old and new schedule entry in
 * one transaction), guarded by what the plan was made from: the unit's placement (compare on value)
 * and record revision, the new machine's presence, and nothing added or changed in the new machine's
 * schedule since the read, so a concurrent engine decision fails one side and is decided again,
 * never doubled. Moves run one at a time: each is re-planned from a fresh read, written, and waited
 * for (the unit active on its new machine) before the next, so at most one unit is down at a time
 * and a move that does not come up stops the rebalance.
 */
import type { ICompare } from "etcd3";
import type { ApiRebalanceMove, ApiRebalancePlan, ApiRebalanceRequest, ApiWhy } from "../../lib/api/scheduler-types";
import { isTemplate } from "../../lib/unit";
import type { Clock } from "../../lib/async/clock";
import { systemClock } from "../../lib/async/clock";
import type { EtcdStore } from "../registry/etcd-store";
import { parseRecord, prefixEnd, type StateRecord } from "../registry/keys";
import { planUnit } from "./placement-plan";
import { readSnapshotModel, type SnapshotModel } from "./snapshot-model";

/** Most moves one request may ask for. */
export const MAX_MOVES = 1000;
/** Default wait for a moved unit to be active on its new machine. */
export const DEFAULT_MOVE_DEADLINE_MS = 60_000;

/** The unit is not in the cluster (answered 404). */
export class SchedulerNotFoundError extends Error {
  override readonly name = "SchedulerNotFoundError";
}

/** The request cannot be answered as asked (answered 400). */
export class SchedulerInputError extends Error {
  override readonly name = "SchedulerInputError";
}

export class SchedulerOperations {
  constructor(
    private readonly store: EtcdStore,
    private readonly clock: Clock = systemClock,
  ) {}

  async why(name: string, signal?: AbortSignal): Promise<ApiWhy> {
    if (isTemplate(name)) throw new SchedulerInputError(`cannot explain ${name}: it is a template, and templates are never scheduled; ask about an instance, e.g. fleetctl why ${name.replace("@.", "@1.")}`);
    const snap = await readSnapshotModel(this.store, signal);
    const u = snap.mirror.units.get(name);
    if (u === undefined) throw new SchedulerNotFoundError(`unit ${name} does not exist in the cluster (fleetctl list-unit-files lists the units)`);
    if (snap.missingBodies.includes(name)) throw new SchedulerInputError(`cannot explain ${name}: its body ${u.record.hash} is missing from etcd, so nothing can be scheduled from it; submit it again (fleetctl submit --replace)`);
    const verdicts = snap.model.why(name) ?? [];
    const global = u.record.global;
    const on = global ? new Set(snap.model.globalMachines(name)) : new Set<string>();
    const placement = global ? undefined : snap.mirror.placements.get(name);
    const out: ApiWhy = {
      unit: name,
      desiredState: u.record.desiredState,
      global,
      machines: verdicts.map((v) => ({ machineID: v.machineId, verdict: on.has(v.machineId) ? "current" : v.verdict, ...(v.rule !== undefined ? { rule: v.rule } : {}), detail: v.detail })),
      revision: snap.revision,
    };
    if (placement !== undefined) {
      out.machineID = placement;
      if (!snap.mirror.machines.has(placement)) out.machineGone = true;
    }
    if (global) out.globalMachines = [...on].sort();
    const reason = snap.unscheduled.get(name);
    if (reason !== undefined && placement === undefined && !global) out.unscheduledReason = reason;
    return out;
  }

  async rebalance(req: ApiRebalanceRequest, signal?: AbortSignal): Promise<ApiRebalancePlan> {
    const maxMoves = req.maxMoves ?? 1;
    if (!Number.isInteger(maxMoves) || maxMoves < 1 || maxMoves > MAX_MOVES) throw new SchedulerInputError(`invalid max-moves ${JSON.stringify(maxMoves)}: use a whole number from 1 to ${MAX_MOVES}`);
    const deadlineMs = req.deadlineMs ?? DEFAULT_MOVE_DEADLINE_MS;
    if (!Number.isFinite(deadlineMs) || deadlineMs < 1_000 || deadlineMs > 3_600_000) throw new SchedulerInputError(`invalid deadline ${deadlineMs} ms per move: use from 1 s to 1 h`);
    const dryRun = req.dryRun === true;
    if (dryRun) {
      const snap = await readSnapshotModel(this.store, signal);
      const plan = snap.model.rebalance(maxMoves);
      return { dryRun, maxMoves, considered: plan.considered, moves: plan.moves.map((m) => ({ ...m })) };
    }
    const moves: ApiRebalanceMove[] = [];
    let considered: number | undefined;
    let conflicts = 0;
    while (moves.filter((m) => m.outcome === "moved").length < maxMoves && !signal?.aborted) {
      const snap = await readSnapshotModel(this.store, signal);
      const plan = snap.model.rebalance(1);
      considered ??= plan.considered;
      const next = plan.moves[0];
      if (next === undefined) break;
      const move: ApiRebalanceMove = { ...next };
      moves.push(move);
      if (!(await this.write(snap, move, signal))) {
        move.outcome = "conflict";
        // The cluster changed under the plan: plan again from a fresh read, a few times at most.
        if (++conflicts >= 3) break;
        continue;
      }
      move.outcome = (await this.waitActive(move, snap, deadlineMs, signal)) ? "moved" : "timeout";
      if (move.outcome === "timeout") break;
    }
    return { dryRun, maxMoves, considered: considered ?? 0, moves };
  }

  /** Writes one move as the engine writes one (`planUnit`), guarded as well by what it was planned from. */
  private async write(snap: SnapshotModel, move: ApiRebalanceMove, signal?: AbortSignal): Promise<boolean> {
    const k = this.store.keys;
    if (snap.mirror.placements.get(move.unit) !== move.from) return false;
    const group = planUnit(snap.mirror, move.unit, { placement: move.to, machines: [move.to] }, (hash) => snap.texts.get(hash));
    // No group, or no schedule entry for the new machine (its body is missing): nothing to write.
    if (group === undefined || !group.ops.some((op) => op.request_put?.key?.toString() === k.schedule(move.to, move.unit))) return false;
    const compare: ICompare[] = [
      ...group.compares,
      { key: Buffer.from(k.machine(move.to)), target: "Version", result: "Greater", version: 0 },
      // Nothing placed on (or changed in) the new machine since the plan was made.
      { key: Buffer.from(k.schedule(move.to)), range_end: prefixEnd(k.schedule(move.to)), target: "Mod", result: "Less", mod_revision: snap.revision + 1 },
    ];
    const res = await this.store.txn(`move ${move.unit} from ${move.from} to ${move.to}`, { compare, success: group.ops }, signal);
    return res.succeeded;
  }

  /** Waits until the moved unit reports its desired state on the new machine. */
  private async waitActive(move: ApiRebalanceMove, snap: SnapshotModel, deadlineMs: number, signal?: AbortSignal): Promise<boolean> {
    const unit = snap.mirror.units.get(move.unit);
    if (unit === undefined) return false;
    const key = this.store.keys.state(move.unit, move.to);
    const until = this.clock.now() + deadlineMs;
    for (;;) {
      const { kvs } = await this.store.range(`read the state of ${move.unit} on ${move.to}`, key, { exact: true, ...(signal ? { signal } : {}) });
      const kv = kvs[0];
      if (kv !== undefined) {
        const s = parseRecord<StateRecord>(kv.key, kv.value);
        if (s.hash === unit.record.hash && (unit.record.desiredState === "launched" ? s.activeState === "active" : s.loadState === "loaded")) return true;
      }
      if (this.clock.now() >= until || signal?.aborted) return false;
      await this.clock.sleep(100, signal);
    }
  }
}
