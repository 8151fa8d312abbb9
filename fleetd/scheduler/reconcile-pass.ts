/**
 * One reconcile pass over the model: the phases and their bookkeeping (decisions, units refused,
 * machines vacated). `SchedulerModel.reconcile` drives it.
 */
import type { ClusterState } from "./cluster-state";
import type { UnitRecord } from "./records";
import { summarizeRefusal } from "./refusal";
import type { RetryTracker } from "./retry-tracker";
import { checkMachine, displacedBy, type CheckOptions } from "./rules";
import type { Decision, ReconcileResult } from "./types";

/** The mutable bookkeeping of one reconcile pass. */
export class Pass {
  private readonly decisions: Decision[] = [];
  private readonly vacated = new Set<string>();
  private placedGlobals = 0;

  constructor(
    private readonly state: ClusterState,
    private readonly pending: Set<string>,
    private readonly refusals: RetryTracker,
  ) {}

  result(): ReconcileResult {
    return { decisions: this.decisions, unscheduled: this.refusals.reports() };
  }

  /** Machines units left since the last call (still present), sorted. */
  takeVacated(): string[] {
    const ids = [...this.vacated].filter((id) => this.state.machines.has(id)).sort();
    this.vacated.clear();
    return ids;
  }

  private wantsMachine(unit: UnitRecord | undefined): unit is UnitRecord {
    return unit !== undefined && !unit.global && unit.desiredState !== "inactive" && !unit.completed;
  }

  /**
   * Units whose machine went away: unschedule, and queue the non-global ones for a new machine.
   * Machines `holding` names are skipped whole: their units are not touched (nor re-examined) while
   * held, so a pass costs nothing per unit of a held machine.
   */
  unscheduleOrphans(holding?: (machineId: string) => boolean): void {
    for (const [machineId, names] of [...this.state.orphans]) {
      if (holding?.(machineId)) continue;
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
      this.refusals.forget(name);
      if (placedOn !== undefined) this.unschedule(name, placedOn, false, unit === undefined ? "unit destroyed" : "unit is now global");
      if (unit === undefined) for (const id of [...(this.state.globalPlacements.get(name) ?? [])]) this.unschedule(name, id, true, "unit destroyed");
      else recheckGlobals.add(name);
      return;
    }
    for (const id of [...(this.state.globalPlacements.get(name) ?? [])]) this.unschedule(name, id, true, "unit is no longer global");
    if (placedOn !== undefined || !this.wantsMachine(unit)) {
      this.pending.delete(name);
      this.refusals.forget(name);
    }
    // A changed unit may now form a circular Replaces pair with placed units: only one may stay.
    if (placedOn !== undefined) for (const partner of [name, ...this.state.placedCircularPartners(unit)]) worklist.add(partner);
    else if (this.wantsMachine(unit)) this.pending.add(name);
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
      for (const follower of this.state.followers.get(unit.name) ?? []) this.refusals.wake(follower);
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
        if (this.wantsMachine(unit)) this.pending.add(name);
        continue;
      }
      for (const displaced of displacedBy(this.state, record, unit)) {
        this.unschedule(displaced, machineId, false, `replaced by "${name}"`, queue);
        if (this.wantsMachine(this.state.units.get(displaced))) this.pending.add(displaced);
      }
    }
  }

  /**
   * Least-loaded placement of every waiting unit, targets before their MachineOf followers. Units
   * refused before are skipped while nothing that could help them has changed (RetryTracker).
   */
  schedulePending(): void {
    this.refusals.absorbVacated(this.state);
    const queue = [...this.pending].sort();
    const waiting = new Map<string, Set<string>>(); // unplaced target → followers waiting for it
    for (let i = 0; i < queue.length; i++) {
      const name = queue[i] as string;
      const unit = this.state.units.get(name);
      if (!this.wantsMachine(unit)) {
        this.pending.delete(name);
        this.refusals.forget(name);
        continue;
      }
      if (this.state.placements.has(name) || this.refusals.canSkip(name)) continue;
      const missing = unit.requirements.machineOf.find((peer) => !this.state.isPlaced(peer));
      if (missing !== undefined) {
        let set = waiting.get(missing);
        if (set === undefined) waiting.set(missing, (set = new Set()));
        set.add(name);
        continue;
      }
      const choice = this.state.choose(unit);
      if (!("machineId" in choice)) {
        this.refusals.refuse({ unit: name, reason: summarizeRefusal(choice), excludedBy: choice.excludedBy });
        continue;
      }
      this.state.placeUnit(name, choice.machineId);
      this.placed(name);
      this.decisions.push({ kind: "schedule", unit: name, machineId: choice.machineId, global: false, reason: choice.reason });
      const record = this.state.machines.get(choice.machineId);
      if (record !== undefined) {
        for (const displaced of displacedBy(this.state, record, unit)) {
          this.unschedule(displaced, choice.machineId, false, `replaced by "${name}"`);
          this.pending.add(displaced);
          queue.push(displaced);
        }
      }
      // Followers come next: those that waited in this pass, and refused ones woken by placed().
      const followers = new Set(waiting.get(name) ?? []);
      waiting.delete(name);
      for (const follower of this.state.followers.get(name) ?? []) if (this.pending.has(follower)) followers.add(follower);
      queue.push(...[...followers].sort());
    }
    for (const [target, followers] of waiting) {
      for (const name of followers) {
        if (this.state.placements.has(name)) continue;
        const cycle = waiting.get(name)?.has(target) === true;
        const state = cycle ? "needs this unit too (MachineOf must not be bidirectional)" : this.state.units.has(target) ? "is not scheduled" : "does not exist";
        this.refusals.refuse({ unit: name, reason: `MachineOf target "${target}" ${state}`, excludedBy: { MachineOf: this.state.machines.size } });
      }
    }
  }

  /** A unit got a machine: it is no longer refused, and units following it may now fit. */
  private placed(name: string): void {
    this.pending.delete(name);
    this.refusals.forget(name);
    for (const follower of this.state.followers.get(name) ?? []) this.refusals.wake(follower);
  }

  /**
   * Removes a placement and records the decision. Followers on that machine can no longer stay:
   * they are queued for `checkPlaced` (and then move with their target).
   */
  private unschedule(name: string, machineId: string, global: boolean, reason: string, queue?: string[]): void {
    if (global) this.state.unplaceGlobal(name, machineId);
    else this.state.unplaceUnit(name);
    this.vacated.add(machineId);
    this.refusals.unitLeft(name);
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
