/**
 * The narrow interface the HTTP API needs from fleetd's runtime. `registryBackend()` adapts the etcd
 * `Registry` to it; tests may use the same adapter over a real etcd. Keeping it narrow lets the API's
 * routing, paging and validation be tested without knowing the registry's key layout.
 */
import type { ApiMachine, ApiUnit, ApiUnitState, UnitOption, UnitTargetState } from "../../lib/api/types";

/** A change of dynamic machine metadata; `value: null` removes the key. */
export interface MetadataChange {
  machineID: string;
  key: string;
  value: string | null;
}

/** Filters of `GET /state`. */
export interface UnitStateFilter {
  machineID?: string;
  unitName?: string;
}

/** A unit to create (or replace, when a unit with another hash exists under the name). */
export interface NewUnit {
  name: string;
  options: UnitOption[];
  desiredState: UnitTargetState;
}

export interface ApiBackend {
  /** False until fleetd is registered with etcd (and while it re-registers): the API answers 503. */
  isRegistered(): boolean;
  /** While not registered: the 503's message when the cause is known and is not etcd (a duplicate machine ID); undefined = fleet's message. */
  unregisteredReason?(): string | undefined;
  /** Live machines with static and dynamic metadata merged. */
  listMachines(signal?: AbortSignal): Promise<ApiMachine[]>;
  setMachineMetadata(changes: readonly MetadataChange[], signal?: AbortSignal): Promise<void>;
  /** Every unit with its desired state, derived current state and target machine. */
  listUnits(signal?: AbortSignal): Promise<ApiUnit[]>;
  /** One unit, without listing the others; `undefined` when it does not exist. */
  getUnit(name: string, signal?: AbortSignal): Promise<ApiUnit | undefined>;
  /**
   * Creates the unit; an existing unit with a different body is replaced (desired state reset); one
   * with the same body is left as it is. Says which of the three happened.
   */
  createUnit(unit: NewUnit, signal?: AbortSignal): Promise<"created" | "replaced" | "unchanged">;
  /** Throws `BackendNotFoundError` when the unit does not exist. */
  setUnitDesiredState(name: string, state: UnitTargetState, signal?: AbortSignal): Promise<void>;
  /** Deletes the unit; false when it did not exist. */
  destroyUnit(name: string, signal?: AbortSignal): Promise<boolean>;
  /** Published systemd states, optionally only of one machine and/or one unit. */
  listUnitStates(filter: UnitStateFilter, signal?: AbortSignal): Promise<ApiUnitState[]>;
}

/** The object of a request does not exist (answered 404). */
export class BackendNotFoundError extends Error {
  override readonly name = "BackendNotFoundError";
}

/** The request is invalid for the current state of the object (answered 400). */
export class BackendInvalidError extends Error {
  override readonly name = "BackendInvalidError";
}

/** A concurrent writer changed the object first; the client may re-read and retry (answered 409). */
export class BackendConflictError extends Error {
  override readonly name = "BackendConflictError";
}

/** etcd cannot be reached right now; a retry may help (answered 503). */
export class BackendUnavailableError extends Error {
  override readonly name = "BackendUnavailableError";
}
