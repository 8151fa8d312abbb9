/**
 * The incremental scheduler: an in-memory model the engine keeps in step with etcd (machines, units,
 * placements), and `reconcile()`, which returns the decisions that bring placements in line with
 * fleet's rules (fleet-reference §2.3/§2.6) and applies them to the model at once, so the next
 * decision in the same pass already sees them (a batch spreads across machines).
 *
 * Work per pass is proportional to what changed: units and machines touched since the last pass are
 * re-checked, and units still waiting for a machine are retried; settled placements elsewhere are
 * not revisited. Call `markAllDirty()` for a full re-check (the engine's rare safety-net resync).
 *
 * If the engine fails to persist a decision, it must tell the model the truth again
 * (`setPlacement`/`setGlobalPlacements`), and the next pass decides anew.
 */
import { ClusterState } from "./cluster-state";
import { Pass } from "./reconcile-pass";
import { countMovable, nextMove, type RebalancePlan } from "./rebalance";
import { sameSchedulingInputs, toUnitRecord } from "./records";
import { RetryTracker } from "./retry-tracker";
import type { MachineExclusion, MachineVerdict, ReconcileResult, SchedulerMachine, SchedulerUnit } from "./types";

/** The scheduler's in-memory model and its incremental `reconcile()` (see the file comment). */
export class SchedulerModel {
  private readonly state = new ClusterState();
  private readonly globals = new Set<string>();
  /** Non-global units that want a machine and have none. */
  private readonly pending = new Set<string>();
  private readonly dirtyUnits = new Set<string>();
  private readonly dirtyMachines = new Set<string>();
  private readonly refusals = new RetryTracker();

  // ---- Feeding the model ----

  /** Adds a machine or updates its metadata (static + dynamic, already merged) and capacity. */
  setMachine(machine: SchedulerMachine): void {
    const existing = this.state.machines.get(machine.id);
    if (existing === undefined) {
      this.state.addMachine(machine);
    } else {
      const sameCapacity = existing.capacity?.cpus === machine.capacity?.cpus && existing.capacity?.memory === machine.capacity?.memory;
      if (sameRecord(existing.metadata, machine.metadata) && sameCapacity) return;
      if (!sameRecord(existing.metadata, machine.metadata)) this.state.updateMetadata(existing, machine.metadata);
      if (!sameCapacity) this.state.updateCapacity(existing, machine.capacity);
    }
    this.dirtyMachines.add(machine.id);
    this.refusals.machinesChanged();
  }

  /** The machine is gone (lease expired): its units are unscheduled, and rescheduled, by the next pass. */
  removeMachine(id: string): void {
    this.state.removeMachine(id);
    this.dirtyMachines.delete(id);
    // Cannot help a refused unit, but their reports count machines: let them be re-evaluated.
    this.refusals.machinesChanged();
  }

  /** Adds or updates a unit (new body, new desired state). */
  setUnit(unit: SchedulerUnit): void {
    const old = this.state.units.get(unit.name);
    if (old !== undefined && sameSchedulingInputs(old, unit)) return;
    const record = toUnitRecord(unit);
    if (old !== undefined) {
      this.state.unlinkFollower(old);
      this.state.unregisterUnit(old);
      // Its old patterns may have kept refused units away; they no longer do.
      if (this.state.isPlaced(unit.name)) this.refusals.unitLeft(unit.name, old);
    }
    this.state.units.set(unit.name, record);
    this.state.registerUnit(record);
    this.state.linkFollower(record);
    this.state.refreshHolders(unit.name);
    if (record.global) this.globals.add(unit.name);
    else this.globals.delete(unit.name);
    this.dirtyUnits.add(unit.name);
    this.refusals.forget(unit.name);
  }

  /** The unit was destroyed: the next pass unschedules it wherever it is. */
  removeUnit(name: string): void {
    const old = this.state.units.get(name);
    if (old === undefined) return;
    this.state.unlinkFollower(old);
    this.state.unregisterUnit(old);
    if (this.state.isPlaced(name)) this.refusals.unitLeft(name, old);
    this.state.units.delete(name);
    this.globals.delete(name);
    this.dirtyUnits.add(name);
    this.refusals.forget(name);
  }

  /** Tells the model where a non-global unit is (from etcd), or that it is nowhere (`undefined`). */
  setPlacement(name: string, machineId: string | undefined): void {
    if (this.state.placements.get(name) === machineId) return;
    if (this.state.unplaceUnit(name) !== undefined) this.refusals.unitLeft(name);
    if (machineId !== undefined) this.state.placeUnit(name, machineId);
    this.dirtyUnits.add(name);
  }

  /** Tells the model on which machines a global unit is (from etcd). */
  setGlobalPlacements(name: string, machineIds: Iterable<string>): void {
    const wanted = new Set(machineIds);
    for (const id of [...(this.state.globalPlacements.get(name) ?? [])]) {
      if (wanted.has(id)) continue;
      this.state.unplaceGlobal(name, id);
      this.refusals.unitLeft(name);
    }
    for (const id of wanted) this.state.placeGlobal(name, id);
    this.dirtyUnits.add(name);
  }

  /** Re-check everything on the next pass. */
  markAllDirty(): void {
    for (const name of this.state.units.keys()) this.dirtyUnits.add(name);
    for (const name of this.state.placements.keys()) this.dirtyUnits.add(name);
    for (const name of this.state.globalPlacements.keys()) this.dirtyUnits.add(name);
    for (const id of this.state.machines.keys()) this.dirtyMachines.add(id);
    this.refusals.machinesChanged();
  }

  // ---- Reading the model ----

  /** Machine of a non-global unit. */
  placementOf(name: string): string | undefined {
    return this.state.placements.get(name);
  }

  /** Machines a global unit is on (after the last pass: the machines it should be on), sorted. */
  globalMachines(name: string): string[] {
    return [...(this.state.globalPlacements.get(name) ?? [])].sort();
  }

  /** Units on a machine (its "agent state": non-global placements plus global units), sorted. */
  unitsOn(machineId: string): string[] {
    return [...(this.state.machines.get(machineId)?.units ?? [])].sort();
  }

  /** Names of non-global units waiting for a machine. */
  pendingUnits(): string[] {
    return [...this.pending].sort();
  }

  /**
   * Invariant 4: for each machine that cannot run the unit, the rule that excludes it (machines
   * that could run it are left out). `undefined` for unknown units.
   */
  explain(name: string): MachineExclusion[] | undefined {
    const unit = this.state.units.get(name);
    return unit === undefined ? undefined : this.state.explain(unit);
  }

  /** Per machine, what the scheduler makes of the unit now (`fleetctl why`); `undefined` for unknown units. */
  why(name: string): MachineVerdict[] | undefined {
    const unit = this.state.units.get(name);
    return unit === undefined ? undefined : this.state.evaluate(unit);
  }

  /**
   * `fleetctl rebalance`: up to `maxMoves` moves of placed units onto less loaded (or better spread)
   * machines, each applied to the model before the next is chosen (see ./rebalance.ts). The engine
   * never calls this on its own.
   */
  rebalance(maxMoves: number): RebalancePlan {
    const considered = countMovable(this.state);
    const moves: RebalancePlan["moves"] = [];
    while (moves.length < maxMoves) {
      const move = nextMove(this.state);
      if (move === undefined) break;
      moves.push(move);
      this.setPlacement(move.unit, move.to);
    }
    return { moves, considered };
  }

  // ---- Deciding ----

  /**
   * One pass: decisions (already applied to the model) and the units left without a machine.
   * `holding(id)`: the units of that absent machine stay where they are for now (the engine's grace
   * for a machine that may come back); they are unscheduled by the first pass that no longer holds it.
   */
  reconcile(options: { holding?: (machineId: string) => boolean } = {}): ReconcileResult {
    const pass = new Pass(this.state, this.pending, this.refusals);
    pass.unscheduleOrphans(options.holding);

    const recheckGlobals = new Set<string>();
    const worklist = new Set<string>();
    for (const name of [...this.dirtyUnits].sort()) pass.classify(name, recheckGlobals, worklist);
    const dirtyMachines = [...this.dirtyMachines].filter((id) => this.state.machines.has(id)).sort();
    for (const id of dirtyMachines) {
      for (const name of this.state.machines.get(id)?.units ?? []) if (this.state.placements.get(name) === id) worklist.add(name);
    }
    this.dirtyUnits.clear();
    this.dirtyMachines.clear();

    const allGlobals = [...this.globals].sort();
    const others = allGlobals.filter((g) => !recheckGlobals.has(g));
    pass.globals([...recheckGlobals].sort(), others, [...new Set([...dirtyMachines, ...pass.takeVacated()])].sort());
    pass.checkPlaced([...worklist].sort());
    // A machine that units left (moved, displaced by Replaces) may now take global units and units
    // refused earlier in the pass, and followers may wait on those: a few rounds settle it; each
    // round after the first runs only when the previous one vacated a machine.
    for (let round = 0; round < 4; round++) {
      const vacated = pass.takeVacated();
      const placedGlobals = pass.globals([], allGlobals, vacated);
      if (round > 0 && vacated.length === 0 && placedGlobals === 0) break;
      pass.schedulePending();
    }
    return pass.result();
  }
}

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ak = Object.keys(a);
  return ak.length === Object.keys(b).length && ak.every((k) => Object.prototype.hasOwnProperty.call(b, k) && a[k] === b[k]);
}

