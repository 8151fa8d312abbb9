/**
 * Plain-data inputs and outputs of the scheduler. No I/O: the engine feeds these from its etcd model.
 */
import type { EXCLUSION_RULES, UnitTargetState } from "../../lib/api/types";
import type { Requirements, ResourceAmounts } from "../../lib/unit/index";

/** A live machine. `metadata` = static (config) merged with dynamic (API) metadata. */
export interface SchedulerMachine {
  readonly id: string;
  readonly publicIP?: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** What the machine offers (milli-CPUs, bytes). Absent: it publishes none (older fleetd, fleet's
   * Go agent) and takes no unit that needs resources. */
  readonly capacity?: Readonly<ResourceAmounts>;
}

/** A unit as the scheduler sees it. A `Unit` from lib/unit plus `desiredState` fits. */
export interface SchedulerUnit {
  readonly name: string;
  readonly requirements: Requirements;
  readonly desiredState: UnitTargetState;
  /**
   * A batch unit (`Type=oneshot`) that ran to success with its current body: it stays where it is
   * while that machine lives, and is never placed again (not on a machine's loss either).
   */
  readonly completed?: boolean;
}

/** Why a machine cannot take a unit. */
export type ExclusionRule = (typeof EXCLUSION_RULES)[number];

/** One machine ruled out for one unit, and why. */
export interface MachineExclusion {
  readonly machineId: string;
  readonly rule: ExclusionRule;
  /** Human-readable, e.g. `conflicts with "web@2.service" (pattern "web@*.service")`. */
  readonly detail: string;
}

/** What `fleetctl why` shows for one machine. */
export interface MachineVerdict {
  readonly machineId: string;
  /** current: the unit is there; best: where it would go now; fits: could run there; excluded: a rule forbids it. */
  readonly verdict: "current" | "best" | "fits" | "excluded";
  /** Rule that excludes it (also set for `current` when the unit could no longer stay). */
  readonly rule?: ExclusionRule;
  readonly detail: string;
}

/** Place a unit on a machine (for global units: one of the machines it runs on). */
export interface ScheduleDecision {
  readonly kind: "schedule";
  readonly unit: string;
  readonly machineId: string;
  readonly global: boolean;
  readonly reason: string;
}

/** Remove a unit from a machine. */
export interface UnscheduleDecision {
  readonly kind: "unschedule";
  readonly unit: string;
  readonly machineId: string;
  readonly global: boolean;
  readonly reason: string;
}

/** A change of placement, in the order the engine should apply them (unschedules of a move first). */
export type Decision = ScheduleDecision | UnscheduleDecision;

/** A unit that wants to run (desired ≠ inactive) but has no machine after this pass. */
export interface UnscheduledUnit {
  readonly unit: string;
  /** Summary, e.g. "no machine can run it: 3 excluded by MachineMetadata, 1 by Conflicts". */
  readonly reason: string;
  /** How many machines each rule excluded (all machines are accounted for). */
  readonly excludedBy: Readonly<Partial<Record<ExclusionRule, number>>>;
}

/** Output of one reconcile pass. */
export interface ReconcileResult {
  readonly decisions: Decision[];
  /** Units left without a machine, with the reason. Per-machine detail: `SchedulerModel.explain(name)`. */
  readonly unscheduled: UnscheduledUnit[];
}
