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
import { sameSchedulingInputs, toUnitRecord, type UnitRecord } from "./records";
import { checkMachine, displacedBy, type CheckOptions } from "./rules";
import type { Decision, MachineExclusion, ReconcileResult, SchedulerMachine, SchedulerUnit, UnscheduledUnit } from "./types";
import { summarizeRefusal } from "./refusal";

export class SchedulerModel {
  private readonly state = new ClusterState();
  private readonly globals = new Set<string>();
  /** Non-global units that want a machine and have none. */
  private readonly pending = new Set<string>();
  private readonly dirtyUnits = new Set<string>();
  private readonly dirtyMachines = new Set<string>();

  // ---- Feeding the model ----

  /** Adds a machine or updates its metadata (static + dynamic, already merged). */
  setMachine(machine: SchedulerMachine): void {
    const existing = this.state.machines.get(machine.id);
    if (existing === undefined) {
      this.state.addMachine(machine);
    } else {
      if (sameRecord(existing.metadata, machine.metadata)) return;
      this.state.updateMetadata(existing, machine.metadata);
    }
    this.dirtyMachines.add(machine.id);
  }

  /** The machine is gone (lease expired): its units are unscheduled, and rescheduled, by the next pass. */
  removeMachine(id: string): void {
    this.state.removeMachine(id);
    this.dirtyMachines.delete(id);
  }

  /** Adds or updates a unit (new body, new desired state). */
  setUnit(unit: SchedulerUnit): void {
    const old = this.state.units.get(unit.name);
    if (old !== undefined && sameSchedulingInputs(old, unit)) return;
    const record = toUnitRecord(unit);
    if (old !== undefined) this.state.unlinkFollower(old);
    this.state.units.set(unit.name, record);
    this.state.linkFollower(record);
    this.state.refreshHolders(unit.name);
    if (record.global) this.globals.add(unit.name);
    else this.globals.delete(unit.name);
    this.dirtyUnits.add(unit.name);
  }

  /** The unit was destroyed: the next pass unschedules it wherever it is. */
  removeUnit(name: string): void {
    const old = this.state.units.get(name);
    if (old === undefined) return;
    this.state.unlinkFollower(old);
    this.state.units.delete(name);
    this.dirtyUnits.add(name);
  }

  /** Tells the model where a non-global unit is (from etcd), or that it is nowhere (`undefined`). */
  setPlacement(name: string, machineId: string | undefined): void {
    if (this.state.placements.get(name) === machineId) return;
    if (machineId === undefined) this.state.unplaceUnit(name);
    else this.state.placeUnit(name, machineId);
    this.dirtyUnits.add(name);
  }

  /** Tells the model on which machines a global unit is (from etcd). */
  setGlobalPlacements(name: string, machineIds: Iterable<string>): void {
    const wanted = new Set(machineIds);
    for (const id of [...(this.state.globalPlacements.get(name) ?? [])]) if (!wanted.has(id)) this.state.unplaceGlobal(name, id);
    for (const id of wanted) this.state.placeGlobal(name, id);
    this.dirtyUnits.add(name);
  }

  /** Re-check everything on the next pass. */
  markAllDirty(): void {
    for (const name of this.state.units.keys()) this.dirtyUnits.add(name);
    for (const name of this.state.placements.keys()) this.dirtyUnits.add(name);
    for (const name of this.state.globalPlacements.keys()) this.dirtyUnits.add(name);
    for (const id of this.state.machines.keys()) this.dirtyMachines.add(id);
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

  // ---- Deciding ----

  /** One pass: decisions (already applied to the model) and the units left without a machine. */
  reconcile(): ReconcileResult {
    const pass = new Pass(this.state, this.pending);
    pass.unscheduleOrphans();

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

/** The mutable bookkeeping of one reconcile pass. */
class Pass {
  private readonly decisions: Decision[] = [];
  private readonly unscheduled = new Map<string, UnscheduledUnit>();
  private readonly vacated = new Set<string>();
  private placedGlobals = 0;

  constructor(
    private readonly state: ClusterState,
    private readonly pending: Set<string>,
  ) {}

  result(): ReconcileResult {
    return { decisions: this.decisions, unscheduled: [...this.unscheduled.values()].sort((a, b) => (a.unit < b.unit ? -1 : 1)) };
  }

  /** Machines units left since the last call (still present), sorted. */
  takeVacated(): string[] {
    const ids = [...this.vacated].filter((id) => this.state.machines.has(id)).sort();
    this.vacated.clear();
    return ids;
  }

  private wantsMachine(unit: UnitRecord | undefined): unit is UnitRecord {
    return unit !== undefined && !unit.global && unit.desiredState !== "inactive";
  }

  /** Units whose machine went away: unschedule, and queue the non-global ones for a new machine. */
  unscheduleOrphans(): void {
    for (const [machineId, names] of [...this.state.orphans]) {
      for (const name of [...names].sort()) {
        const reason = `target Machine(${machineId}) went away`;
        if (this.state.placements.get(name) === machineId) {
          this.unschedule(name, machineId, false, reason);
          if (this.wantsMachine(this.state.units.get(name))) this.pending.add(name);
        }
        if (this.state.globalOn(name, machineId)) this.unschedule(name, machineId, true, reason);
      }
    }
  }

  /** Sorts a changed unit into the work of this pass. */
  classify(name: string, recheckGlobals: Set<string>, worklist: Set<string>): void {
    const unit = this.state.units.get(name);
    const placedOn = this.state.placements.get(name);
    if (unit === undefined || unit.global) {
      this.pending.delete(name);
      if (placedOn !== undefined) this.unschedule(name, placedOn, false, unit === undefined ? "unit destroyed" : "unit is now global");
      if (unit === undefined) for (const id of [...(this.state.globalPlacements.get(name) ?? [])]) this.unschedule(name, id, true, "unit destroyed");
      else recheckGlobals.add(name);
      return;
    }
    for (const id of [...(this.state.globalPlacements.get(name) ?? [])]) this.unschedule(name, id, true, "unit is no longer global");
    if (placedOn !== undefined) worklist.add(name);
    else if (unit.desiredState !== "inactive") this.pending.add(name);
    else this.pending.delete(name);
  }

  /** Global units: fully for `full`, and only on `machines` for the others. Returns how many were placed. */
  globals(full: readonly string[], others: readonly string[], machines: readonly string[]): number {
    const before = this.placedGlobals;
    for (const name of full) {
      const unit = this.state.units.get(name);
      if (unit === undefined) continue;
      const ids = new Set<string>(this.state.globalPlacements.get(name) ?? []);
      if (unit.desiredState !== "inactive") for (const id of this.state.metadataCandidates(unit)) ids.add(id);
      for (const id of [...ids].sort()) this.checkGlobalOn(unit, id);
    }
    if (machines.length > 0) {
      for (const name of others) {
        const unit = this.state.units.get(name);
        if (unit === undefined) continue;
        for (const id of machines) this.checkGlobalOn(unit, id);
      }
    }
    return this.placedGlobals - before;
  }

  private checkGlobalOn(unit: UnitRecord, machineId: string): void {
    const record = this.state.machines.get(machineId);
    if (record === undefined) return;
    const present = this.state.globalOn(unit.name, machineId);
    let refusal: string | undefined;
    if (unit.desiredState === "inactive") {
      refusal = "target state inactive";
    } else {
      // A global unit already there yields only to global units that sort before it; non-global
      // units conflicting with it are the ones moved (by checkPlaced).
      const options: CheckOptions = present
        ? { ignoreConflictsWith: (other: string) => !(this.state.units.get(other)?.global === true && other < unit.name) }
        : {};
      const exclusion = checkMachine(this.state, record, unit, options);
      // Replaces does not apply to global units (fleet ignored it for them too).
      if (exclusion !== undefined && exclusion.rule !== "Replaces") refusal = `${exclusion.rule}: ${exclusion.detail}`;
    }
    if (refusal === undefined && !present) {
      this.state.placeGlobal(unit.name, machineId);
      this.placedGlobals++;
      this.decisions.push({ kind: "schedule", unit: unit.name, machineId, global: true, reason: "global unit: machine matches and has no conflict" });
    } else if (refusal !== undefined && present) {
      this.unschedule(unit.name, machineId, true, refusal);
    }
  }

  /** Placed non-global units that changed or whose machine changed: can they stay? */
  checkPlaced(initial: readonly string[]): void {
    const queue = [...initial];
    for (let i = 0; i < queue.length; i++) {
      const name = queue[i] as string;
      const machineId = this.state.placements.get(name);
      if (machineId === undefined) continue;
      const unit = this.state.units.get(name);
      const record = this.state.machines.get(machineId);
      if (unit === undefined || record === undefined) continue; // handled by classify / orphans
      if (unit.desiredState === "inactive") {
        this.unschedule(name, machineId, false, "target state inactive", queue);
        this.pending.delete(name);
        continue;
      }
      const exclusion = checkMachine(this.state, record, unit);
      if (exclusion !== undefined) {
        this.unschedule(name, machineId, false, `${exclusion.rule}: ${exclusion.detail}`, queue);
        this.pending.add(name);
        continue;
      }
      for (const displaced of displacedBy(this.state, record, unit)) {
        this.unschedule(displaced, machineId, false, `replaced by "${name}"`, queue);
        this.pending.add(displaced);
      }
    }
  }

  /** Least-loaded placement of every waiting unit, targets before their MachineOf followers. */
  schedulePending(): void {
    const queue = [...this.pending].sort();
    const waiting = new Map<string, Set<string>>(); // unplaced target → followers waiting for it
    for (let i = 0; i < queue.length; i++) {
      const name = queue[i] as string;
      const unit = this.state.units.get(name);
      if (!this.wantsMachine(unit) || this.state.placements.has(name)) {
        if (!this.wantsMachine(unit)) this.pending.delete(name);
        continue;
      }
      const missing = unit.requirements.machineOf.find((peer) => !this.state.isPlaced(peer));
      if (missing !== undefined) {
        let set = waiting.get(missing);
        if (set === undefined) waiting.set(missing, (set = new Set()));
        set.add(name);
        continue;
      }
      const choice = this.state.choose(unit);
      if (!("machineId" in choice)) {
        this.unscheduled.set(name, { unit: name, reason: summarizeRefusal(choice), excludedBy: choice.excludedBy });
        continue;
      }
      this.state.placeUnit(name, choice.machineId);
      this.pending.delete(name);
      this.unscheduled.delete(name);
      this.decisions.push({ kind: "schedule", unit: name, machineId: choice.machineId, global: false, reason: choice.reason });
      const record = this.state.machines.get(choice.machineId);
      if (record !== undefined) {
        for (const displaced of displacedBy(this.state, record, unit)) {
          this.unschedule(displaced, choice.machineId, false, `replaced by "${name}"`);
          this.pending.add(displaced);
          queue.push(displaced);
        }
      }
      const followers = waiting.get(name);
      if (followers !== undefined) {
        waiting.delete(name);
        queue.push(...[...followers].sort());
      }
    }
    for (const [target, followers] of waiting) {
      for (const name of followers) {
        if (this.state.placements.has(name)) continue;
        const cycle = waiting.get(name)?.has(target) === true;
        const state = cycle ? "needs this unit too (MachineOf must not be bidirectional)" : this.state.units.has(target) ? "is not scheduled" : "does not exist";
        this.unscheduled.set(name, { unit: name, reason: `MachineOf target "${target}" ${state}`, excludedBy: { MachineOf: this.state.machines.size } });
      }
    }
  }

  /**
   * Removes a placement and records the decision. Followers on that machine can no longer stay:
   * they are queued for `checkPlaced` (and then move with their target).
   */
  private unschedule(name: string, machineId: string, global: boolean, reason: string, queue?: string[]): void {
    if (global) this.state.unplaceGlobal(name, machineId);
    else this.state.unplaceUnit(name);
    this.vacated.add(machineId);
    this.decisions.push({ kind: "unschedule", unit: name, machineId, global, reason });
    for (const follower of this.state.followers.get(name) ?? []) {
      if (this.state.placements.get(follower) !== machineId) continue;
      if (queue !== undefined) queue.push(follower);
      else {
        this.unschedule(follower, machineId, false, `MachineOf target "${name}" left the machine`);
        this.pending.add(follower);
      }
    }
  }
}
