/**
 * `fleetctl rebalance`: which placed units to move so that new or recovered machines take their share.
 * The scheduler itself never moves a unit that may stay where it is (fleet's rule); this planner is
 * asked for moves explicitly, within a budget, and every move it proposes passes every rule on the
 * new machine (`ClusterState.evaluate`: MachineID, MachineOf, MachineMetadata, Conflicts, Replaces,
 * Resources) and never makes Spread worse.
 *
 * A move is proposed when one of these improves, in this order:
 * - Spread: the unit's group (its `Spread=` key's value) holds more instances of its template than the
 *   group of the scheduler's best machine (the move lowers the skew by one);
 * - load: after the move the new machine is no more loaded than the old one is without the unit
 *   (unit count for units without needs, dominant share of CPU/memory for units with needs), so a
 *   move never just swaps which machine is the busier and moves never ping-pong.
 * The planner applies each move to the model before choosing the next (a plan of N moves is
 * consistent), largest gain first. Not moved: global units, units bound by MachineID or MachineOf,
 * units others follow (MachineOf), units with Replaces (a move could displace others), units whose
 * machine is gone, inactive units, and completed batch units (a move would run them again).
 *
 * Cost per move: up to {@link CANDIDATE_LIMIT} units on the busiest machines are evaluated against
 * every machine (one rule check each).
 */
import type { ClusterState } from "./cluster-state";
import type { MachineRecord, UnitRecord } from "./records";
import { needsNothing, shareAfter } from "./resource-fit";

/** Units evaluated per move (those on the busiest machines first). */
export const CANDIDATE_LIMIT = 500;

/** One unit to move, and why. */
export interface RebalanceMove {
  readonly unit: string;
  readonly from: string;
  readonly to: string;
  readonly reason: string;
}

export interface RebalancePlan {
  readonly moves: RebalanceMove[];
  /** Movable units at the start. */
  readonly considered: number;
}

interface Candidate {
  move: RebalanceMove;
  /** Spread moves first, then the largest load gain. */
  gain: [number, number];
}

/** Whether the planner may move the unit at all. */
export function movable(state: ClusterState, unit: UnitRecord): boolean {
  const req = unit.requirements;
  if (unit.global || unit.desiredState === "inactive" || unit.completed) return false;
  if (req.machineId !== undefined || req.machineOf.length > 0 || unit.replaces.length > 0) return false;
  if ((state.followers.get(unit.name)?.size ?? 0) > 0) return false;
  const on = state.placements.get(unit.name);
  return on !== undefined && state.machines.has(on);
}

function dominantShare(machine: MachineRecord, minus?: UnitRecord): number {
  const cap = machine.capacity;
  if (cap === undefined) return 0;
  const own = minus === undefined ? undefined : machine.counted.get(minus.name);
  const cpus = machine.used.cpus - (own?.cpus ?? 0);
  const memory = machine.used.memory - (own?.memory ?? 0);
  const share = (used: number, c: number): number => (used <= 0 ? 0 : c <= 0 ? Number.POSITIVE_INFINITY : used / c);
  return Math.max(share(cpus, cap.cpus), share(memory, cap.memory));
}

const pct = (x: number): string => `${Math.round(x * 100)}%`;

/** The best move for one unit, if any improves the cluster. */
function candidateFor(state: ClusterState, unit: UnitRecord): Candidate | undefined {
  const from = state.placements.get(unit.name);
  const fromRecord = from === undefined ? undefined : state.machines.get(from);
  if (from === undefined || fromRecord === undefined) return undefined;
  const verdicts = state.evaluate(unit);
  const current = verdicts.find((v) => v.machineId === from);
  const best = verdicts.find((v) => v.verdict === "best");
  const toRecord = best === undefined ? undefined : state.machines.get(best.machineId);
  if (current === undefined || best === undefined || toRecord === undefined) return undefined;
  if (current.rule === "Spread") {
    return { move: { unit: unit.name, from, to: toRecord.id, reason: `Spread: ${current.detail}` }, gain: [1, 0] };
  }
  // Excluded where it is by another rule: the engine's own re-check moves it, not the rebalancer.
  if (current.rule !== undefined) return undefined;
  if (needsNothing(unit)) {
    const before = fromRecord.units.size;
    const after = toRecord.units.size + 1;
    if (after > before - 1) return undefined;
    return { move: { unit: unit.name, from, to: toRecord.id, reason: `load: ${before} units on ${from}, ${toRecord.units.size} on ${toRecord.id}` }, gain: [0, before - after] };
  }
  const before = dominantShare(fromRecord);
  const left = dominantShare(fromRecord, unit);
  const after = shareAfter(toRecord, unit);
  if (after > left) return undefined;
  return { move: { unit: unit.name, from, to: toRecord.id, reason: `load: ${from} at ${pct(before)} of its capacity (${pct(left)} without the unit), ${toRecord.id} at ${pct(after)} with it` }, gain: [0, before - after] };
}

/** Machines by how busy they are (unit count and dominant share, busiest first, by ID on ties). */
function busiest(state: ClusterState): MachineRecord[] {
  const machines = [...state.machines.values()];
  const byCount = [...machines].sort((a, b) => b.units.size - a.units.size || (a.id < b.id ? -1 : 1));
  const byShare = [...machines].sort((a, b) => dominantShare(b) - dominantShare(a) || (a.id < b.id ? -1 : 1));
  const out: MachineRecord[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < machines.length; i++) {
    for (const m of [byCount[i], byShare[i]]) {
      if (m !== undefined && !seen.has(m.id)) {
        seen.add(m.id);
        out.push(m);
      }
    }
  }
  return out;
}

/** Chooses the next move (largest gain among the busiest machines' units), or undefined. */
export function nextMove(state: ClusterState): RebalanceMove | undefined {
  let best: Candidate | undefined;
  let evaluated = 0;
  for (const machine of busiest(state)) {
    if (evaluated >= CANDIDATE_LIMIT) break;
    for (const name of [...machine.units].sort()) {
      const unit = state.units.get(name);
      if (unit === undefined || state.placements.get(name) !== machine.id || !movable(state, unit)) continue;
      if (evaluated++ >= CANDIDATE_LIMIT) break;
      const c = candidateFor(state, unit);
      if (c === undefined) continue;
      if (best === undefined || c.gain[0] > best.gain[0] || (c.gain[0] === best.gain[0] && c.gain[1] > best.gain[1])) best = c;
    }
  }
  return best?.move;
}

/** Counts the units the planner may move. */
export function countMovable(state: ClusterState): number {
  let n = 0;
  for (const unit of state.units.values()) if (movable(state, unit)) n++;
  return n;
}
