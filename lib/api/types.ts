/**
 * Wire types of the fleet HTTP API v1 (`/fleet/v1/...`), shared by fleetd (server) and fleetctl (client).
 * Field names and JSON shapes follow coreos/fleet's `schema/v1.json` so existing clients keep working.
 */

/** A unit's desired state, and the derived current state. */
export type UnitTargetState = "inactive" | "loaded" | "launched";

export const UNIT_TARGET_STATES: readonly UnitTargetState[] = ["inactive", "loaded", "launched"];

/** One `Name=Value` line of a unit file, with the section it belongs to. */
export interface UnitOption {
  section: string;
  name: string;
  value: string;
}

/** `GET /units`, `GET|PUT /units/<name>`. */
export interface ApiUnit {
  name: string;
  options: UnitOption[];
  desiredState?: UnitTargetState;
  /** Derived: inactive (not placed / no state from target), loaded, launched. Absent for global units. */
  currentState?: UnitTargetState;
  /** Target machine; absent when unscheduled and for global units. */
  machineID?: string;
  /**
   * Extension over fleet (its clients ignore unknown fields): why the engine could not place the unit.
   * Present only while the unit wants a machine (desired state loaded/launched) and has none.
   */
  unscheduledReason?: ApiUnscheduledReason;
  /**
   * Extension: a batch unit (`Type=oneshot`) whose current body ran to success, where and when. It is
   * not placed again (not even when that machine goes away) until its body or desired state changes.
   */
  completed?: { machineID: string; at: string };
}

/**
 * The scheduler's rules, in the order it checks them (and the order summaries and remedies name them).
 * Spread is a preference, not a limit: it never leaves a unit without a machine, so it appears in
 * `fleetctl why` and never in an unscheduled reason's counts.
 */
export const EXCLUSION_RULES = ["MachineID", "MachineOf", "MachineMetadata", "Conflicts", "Replaces", "Resources", "Spread"] as const;

/** One machine ruled out for a unit, and the rule that excluded it. */
export interface ApiMachineExclusion {
  machineID: string;
  /** One of {@link EXCLUSION_RULES}: MachineID, MachineOf, MachineMetadata, Conflicts, Replaces, Resources. */
  rule: string;
  /** e.g. `unit requires role=db, machine has role=web`. */
  detail: string;
}

/**
 * Why a unit is not scheduled (architecture invariant 4), as the leading engine recorded it at
 * `P/unscheduled/<name>`. Bounded: the first {@link UNSCHEDULED_MACHINES_SHOWN} excluded machines by ID,
 * the rest counted in `moreMachines`; `excludedBy` counts every machine.
 */
export interface ApiUnscheduledReason {
  /** e.g. "no machine can run it (3 machines): 2 excluded by MachineMetadata, 1 by Conflicts". */
  summary: string;
  /** Machines excluded per rule (all machines accounted for). */
  excludedBy: Record<string, number>;
  /** Excluded machines, sorted by ID, at most {@link UNSCHEDULED_MACHINES_SHOWN}. */
  machines: ApiMachineExclusion[];
  /** Excluded machines left out of `machines`. */
  moreMachines: number;
  /** When the engine first recorded this reason (ISO 8601). */
  since: string;
}

/** Most excluded machines listed in an {@link ApiUnscheduledReason}. */
export const UNSCHEDULED_MACHINES_SHOWN = 50;

/** `GET /machines`. */
export interface ApiMachine {
  id: string;
  primaryIP?: string;
  metadata?: Record<string, string>;
  /** corefleet addition (fleet's clients ignore it): what the machine offers, milli-CPUs and bytes. */
  capacity?: { cpus: number; memory: number };
}

/** `GET /state`. */
export interface ApiUnitState {
  name: string;
  hash: string;
  machineID: string;
  systemdLoadState: string;
  systemdActiveState: string;
  systemdSubState: string;
}

export interface ApiUnitPage {
  units: ApiUnit[];
  nextPageToken?: string;
}

export interface ApiMachinePage {
  machines: ApiMachine[];
  nextPageToken?: string;
}

export interface ApiUnitStatePage {
  states: ApiUnitState[];
  nextPageToken?: string;
}

/** One operation of `PATCH /machines` (values wrapped in an object, as fleet's server expects). */
export interface ApiMachineMetadataOp {
  op: "add" | "remove" | "replace";
  /** `/<machineID>/metadata/<key>` */
  path: string;
  value?: { value: string };
}

/** Body of every error response. */
export interface ApiErrorBody {
  error: { code: number; message: string };
}

/** Message of the 503 answered while fleetd is not registered with etcd (fleet's exact text). */
export const API_UNAVAILABLE_MESSAGE = "fleet server unable to communicate with etcd";

/**
 * Part of the 503's message while fleetd is not registered because another live machine holds its
 * machine ID (fleet answered {@link API_UNAVAILABLE_MESSAGE} then too): etcd is fine, so fleetctl gives
 * no etcd hints for it.
 */
export const DUPLICATE_MACHINE_ID_CAUSE = "another live machine is registered with the same machine ID";

/** Default API socket. */
export const DEFAULT_API_SOCKET = "/var/run/fleet.sock";

/** Path prefix of the API. fleet also mounted `/v1-alpha/`. */
export const API_BASE_PATH = "/fleet/v1/";
