/** fleetd's HTTP API v1: the server, its listeners and the backend interface it needs. */
export { createApiServer, DEFAULT_TOKEN_LIMIT, type ApiServer, type ApiServerOptions, type ListenerAuth } from "./server";
export { apiListenersFromConfig, socketActivationFds, type ApiListenConfig, type ApiListenerSpec, type BoundListener } from "./listeners";
export {
  BackendConflictError,
  BackendInvalidError,
  BackendNotFoundError,
  BackendUnavailableError,
  type ApiBackend,
  type MetadataChange,
  type NewUnit,
  type UnitStateFilter,
} from "./backend";
export { registryBackend } from "./registry-backend";
export { operationsBackend, type OperationsBackend } from "./operations-backend";
export { schedulerBackend, type SchedulerBackend } from "./scheduler-resource";
