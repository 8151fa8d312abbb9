/**
 * Adapts fleetd's etcd `Registry` to the API's `ApiBackend`, translating the registry's typed errors
 * into the API's (404/400/409/503) once, here.
 */
import type { Registry } from "../registry/registry";
import { ConflictError, EtcdUnavailableError, TemplateActivationError, UnitNotFoundError } from "../registry/errors";
import { BackendConflictError, BackendInvalidError, BackendNotFoundError, BackendUnavailableError, type ApiBackend } from "./backend";

async function translated<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof UnitNotFoundError) throw new BackendNotFoundError("unit does not exist", { cause: err });
    if (err instanceof TemplateActivationError) {
      throw new BackendInvalidError(`cannot activate template ${JSON.stringify(err.unitName)}`, { cause: err });
    }
    if (err instanceof EtcdUnavailableError) throw new BackendUnavailableError(err.message, { cause: err });
    if (err instanceof ConflictError) throw new BackendConflictError(err.message, { cause: err });
    throw err;
  }
}

/** The API backend over a registry. */
export function registryBackend(registry: Registry): ApiBackend {
  return {
    isRegistered: () => registry.isRegistered(),
    unregisteredReason: () => registry.unregisteredReason?.(),
    listMachines: (signal) => translated(() => registry.listMachines(signal)),
    // All or nothing, in one transaction.
    setMachineMetadata: (changes, signal) => translated(() => registry.patchMachineMetadata(changes, signal)),
    listUnits: (signal) => translated(() => registry.listUnits(signal)),
    getUnit: (name, signal) => translated(() => registry.getUnit(name, signal)),
    createUnit: (unit, signal) => translated(() => registry.createUnit({ name: unit.name, options: unit.options, desiredState: unit.desiredState }, signal)),
    setUnitDesiredState: (name, state, signal) => translated(() => registry.setDesiredState(name, state, signal)),
    destroyUnit: (name, signal) =>
      translated(async () => {
        try {
          await registry.destroyUnit(name, signal);
          return true;
        } catch (err) {
          if (err instanceof UnitNotFoundError) return false;
          throw err;
        }
      }),
    listUnitStates: (filter, signal) => translated(() => registry.listStates(filter, signal)),
  };
}
