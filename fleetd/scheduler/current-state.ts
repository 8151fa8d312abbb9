/** fleet's derived current state of a unit (fleet-reference §2.5), from placement and agent reports. */
import type { UnitTargetState } from "../../lib/api/types";

/** A unit state reported by an agent. */
export interface ReportedState {
  machineId: string;
  /** The agent asked systemd to start the unit (fleet's job heartbeat naming this machine). */
  launched: boolean;
}

/** What {@link currentState} needs. */
export interface CurrentStateInput {
  /** Machine the unit is scheduled on; undefined when unscheduled. */
  machineId: string | undefined;
  /** States reported for the unit (possibly by several machines during a move). */
  states: readonly ReportedState[];
}

/**
 * `inactive` when not scheduled or no state from the target machine; `launched` when the target's
 * agent reports it launched; `loaded` otherwise. Global units have no current state (do not call).
 */
export function currentState(input: CurrentStateInput): UnitTargetState {
  if (input.machineId === undefined) return "inactive";
  const own = input.states.find((s) => s.machineId === input.machineId);
  if (own === undefined) return "inactive";
  return own.launched ? "launched" : "loaded";
}
