/**
 * The `Registry`: what fleetd's HTTP API (and tests, bench) need from the cluster state. Implemented on
 * etcd v3 by `EtcdRegistry` (`etcd-registry.ts`); the layout is documented in `fleetd/REGISTRY.md`.
 *
 * Shapes returned here are the API wire types of `lib/api/types.ts`, so the API layer maps HTTP to calls
 * without re-modelling. Errors are the typed family of `./errors` (`UnitNotFoundError`,
 * `TemplateActivationError`, `EtcdUnavailableError`, ...).
 */
import type { ApiMachine, ApiUnit, ApiUnitState, UnitOption, UnitTargetState } from "../../lib/api/types";

/** Input of {@link Registry.createUnit}. The name and options must already be validated by the caller. */
export interface CreateUnitInput {
  name: string;
  options: readonly UnitOption[];
  /** Desired state of a new or replaced unit. Default `inactive`. */
  desiredState?: UnitTargetState;
}

/** What {@link Registry.createUnit} did. */
export type CreateUnitOutcome =
  /** No unit of that name existed; it was created. */
  | "created"
  /** A unit of that name existed with a different hash; it was replaced (desired state as given, default inactive). */
  | "replaced"
  /** A unit of that name existed with the same hash; nothing was written. */
  | "unchanged";

/**
 * One metadata change of a patch; `value: null` removes the key: stored as "" (not deleted) so that it
 * also hides a static value of that key, as fleet did.
 */
export interface MetadataChangeInput {
  machineID: string;
  key: string;
  value: string | null;
}

/** Filters of {@link Registry.listStates}; both optional, combined with AND. */
export interface StateFilter {
  machineID?: string;
  unitName?: string;
}

/** The cluster state as fleetd's API sees it. */
export interface Registry {
  /**
   * Whether this fleetd is registered (presence key held on a live lease). While false the API answers
   * every request with 503 {@link import("../../lib/api/types").API_UNAVAILABLE_MESSAGE}.
   */
  isRegistered(): boolean;
  /**
   * While not registered for a known reason other than etcd (another live machine holds this machine
   * ID): the API's 503 message, saying what to do. Undefined otherwise (fleet's message is answered).
   */
  unregisteredReason?(): string | undefined;

  /** All units sorted by name, with desired state, derived current state and target machine. */
  listUnits(signal?: AbortSignal): Promise<ApiUnit[]>;
  /** One unit (reads only that unit's keys: cheap with 10,000 units), or undefined. */
  getUnit(name: string, signal?: AbortSignal): Promise<ApiUnit | undefined>;
  /**
   * Creates a unit (create-only). Same name + same hash → "unchanged"; same name + different hash →
   * replaced atomically (compare on the old record's revision), desired state reset to
   * `input.desiredState ?? "inactive"`.
   */
  createUnit(input: CreateUnitInput, signal?: AbortSignal): Promise<CreateUnitOutcome>;
  /**
   * Sets a unit's desired state. Throws `UnitNotFoundError`, or `TemplateActivationError` when a template
   * is asked for anything but inactive.
   */
  setDesiredState(name: string, state: UnitTargetState, signal?: AbortSignal): Promise<void>;
  /** Deletes a unit (its placement and schedule entries go with it). Throws `UnitNotFoundError`. */
  destroyUnit(name: string, signal?: AbortSignal): Promise<void>;

  /** Live machines sorted by ID, static metadata merged with dynamic metadata (dynamic wins; "" hides). */
  listMachines(signal?: AbortSignal): Promise<ApiMachine[]>;
  /**
   * Sets and removes dynamic metadata (persists, even for machines not registered right now), all
   * changes or none, in one etcd transaction.
   */
  patchMachineMetadata(changes: readonly MetadataChangeInput[], signal?: AbortSignal): Promise<void>;

  /** Unit states published by agents, sorted by unit name then machine ID. */
  listStates(filter?: StateFilter, signal?: AbortSignal): Promise<ApiUnitState[]>;
}
