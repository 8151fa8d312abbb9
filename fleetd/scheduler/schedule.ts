/** One-shot scheduling of a snapshot: builds a model, runs one pass. Handy for tests and tools. */
import { SchedulerModel } from "./scheduler-model";
import type { ReconcileResult, SchedulerMachine, SchedulerUnit } from "./types";

/** A snapshot of the cluster. */
export interface ScheduleInput {
  machines: readonly SchedulerMachine[];
  units: readonly SchedulerUnit[];
  /** Non-global unit → machine ID it is currently on. */
  placements?: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
  /** Global unit → machines it is currently on. */
  globalPlacements?: ReadonlyMap<string, readonly string[]> | Readonly<Record<string, readonly string[]>>;
}

/** Result of {@link schedule}: the pass's result plus the model for follow-up queries (`explain`...). */
export interface ScheduleOutput extends ReconcileResult {
  model: SchedulerModel;
}

function entries<V>(source: ReadonlyMap<string, V> | Readonly<Record<string, V>> | undefined): Array<[string, V]> {
  if (source === undefined) return [];
  return source instanceof Map ? [...(source as ReadonlyMap<string, V>)] : Object.entries(source as Record<string, V>);
}

/** Runs one reconcile pass over a snapshot. Pure: the input is not modified. */
export function schedule(input: ScheduleInput): ScheduleOutput {
  const model = new SchedulerModel();
  for (const machine of input.machines) model.setMachine(machine);
  for (const unit of input.units) model.setUnit(unit);
  for (const [name, machineId] of entries(input.placements)) model.setPlacement(name, machineId);
  for (const [name, machineIds] of entries(input.globalPlacements)) model.setGlobalPlacements(name, machineIds);
  return { ...model.reconcile(), model };
}
