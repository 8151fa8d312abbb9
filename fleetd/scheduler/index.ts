/** Public API of the pure scheduler (no I/O): fleet's placement rules over plain data. */
export { SchedulerModel } from "./scheduler-model";
export { schedule, type ScheduleInput, type ScheduleOutput } from "./schedule";
export { currentState, type CurrentStateInput, type ReportedState } from "./current-state";
export type {
  Decision, ExclusionRule, MachineExclusion, MachineVerdict, ReconcileResult, ScheduleDecision, SchedulerMachine, SchedulerUnit,
  UnscheduleDecision, UnscheduledUnit,
} from "./types";
