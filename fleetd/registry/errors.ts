/**
 * The registry's error family. etcd/gRPC errors are translated once, here, at the boundary; code above
 * the registry only ever sees these classes (and checks `retriable`). The original error is the `cause`.
 */
import {
  ClientClosedError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  GRPCUnavailableError,
  GRPCDeadlineExceededError,
  GRPCCancelledError,
  GRPCInternalError,
  GRPCGenericError,
  GRPCResourceExhastedError,
  EtcdError,
} from "etcd3";
import { DUPLICATE_MACHINE_ID_CAUSE } from "../../lib/api/types";

/** Base of every registry error. `retriable`: whether the same call may succeed later. */
export class RegistryError extends Error {
  override name = "RegistryError";
  constructor(
    message: string,
    readonly retriable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** etcd cannot be reached or did not answer in time. Retriable. */
export class EtcdUnavailableError extends RegistryError {
  override name = "EtcdUnavailableError";
  constructor(operation: string, options?: { cause?: unknown }) {
    super(
      `Cannot ${operation}: etcd is unreachable or did not answer in time (${describeCause(options?.cause)}); check that etcd runs and etcd_servers points at it`,
      true,
      options,
    );
  }
}

/** etcd says our lease no longer exists (expired or revoked). Final for that lease: register again. */
export class LeaseLostError extends RegistryError {
  override name = "LeaseLostError";
  constructor(
    readonly leaseId: string,
    operation: string,
    options?: { cause?: unknown },
  ) {
    super(`Cannot ${operation}: lease ${leaseId} no longer exists in etcd (expired or revoked); register again`, false, options);
  }
}

/** Another live machine already holds this machine ID's presence key. Retriable (it may leave). */
export class DuplicateMachineError extends RegistryError {
  override name = "DuplicateMachineError";
  constructor(readonly machineId: string) {
    super(
      `Cannot register machine ${machineId}: ${DUPLICATE_MACHINE_ID_CAUSE}; give each host a unique /etc/machine-id (fleetd keeps retrying)`,
      true,
    );
  }
}

/** The named unit does not exist in the registry. */
export class UnitNotFoundError extends RegistryError {
  override name = "UnitNotFoundError";
  constructor(readonly unitName: string) {
    super(`Unit ${unitName} does not exist`, false);
  }
}

/** A template unit (`foo@.service`) was asked to leave the inactive state. */
export class TemplateActivationError extends RegistryError {
  override name = "TemplateActivationError";
  constructor(readonly unitName: string) {
    super(`Cannot activate ${unitName}: it is a template; activate instances such as ${unitName.replace("@.", "@1.")}`, false);
  }
}

/** A compare-and-swap lost against a concurrent writer; re-read and decide again. */
export class ConflictError extends RegistryError {
  override name = "ConflictError";
  constructor(what: string) {
    super(`Cannot ${what}: it was changed concurrently; re-read and retry`, true);
  }
}

/** This engine is no longer the leader; its writes are refused by the leader guard. */
export class NotLeaderError extends RegistryError {
  override name = "NotLeaderError";
  constructor(machineId: string) {
    super(`Cannot write placements as ${machineId}: this engine is no longer the leader`, false);
  }
}

/** Bad configuration or access to etcd (authentication, permissions). Not retriable. */
export class EtcdAccessError extends RegistryError {
  override name = "EtcdAccessError";
  constructor(operation: string, options?: { cause?: unknown }) {
    super(`Cannot ${operation}: etcd refused access (${describeCause(options?.cause)}); check etcd credentials and TLS files`, false, options);
  }
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) return cause.message.split("\n")[0] ?? cause.name;
  return String(cause);
}

/**
 * etcd's server-side "did not answer in time" messages (etcd's rpctypes: request timed out, leader
 * changed, no leader, too many requests; a request context that ran out reaches us as gRPC UNKNOWN
 * "context deadline exceeded").
 */
const ETCD_SERVER_BUSY = /context deadline exceeded|etcdserver: (?:request timed out|leader changed|no leader|too many requests)/;

/** True for errors of the cockatiel circuit breaker etcd3 uses (open circuit = etcd unreachable). */
function isBrokenCircuit(err: unknown): boolean {
  return err instanceof Error && (err.name === "BrokenCircuitError" || err.constructor.name === "BrokenCircuitError");
}

/**
 * Translates anything the etcd3 client throws into the registry family. Registry errors pass through.
 * `operation` reads like "list units" and becomes part of the message.
 */
export function translateEtcdError(err: unknown, operation: string, leaseId?: string): RegistryError {
  if (err instanceof RegistryError) return err;
  if (err instanceof EtcdLeaseInvalidError) return new LeaseLostError(leaseId ?? "(unknown)", operation, { cause: err });
  if (err instanceof EtcdPermissionDeniedError || err instanceof EtcdAuthenticationFailedError || err instanceof EtcdInvalidAuthTokenError) {
    return new EtcdAccessError(operation, { cause: err });
  }
  if (
    err instanceof GRPCUnavailableError ||
    err instanceof GRPCDeadlineExceededError ||
    err instanceof GRPCCancelledError ||
    err instanceof GRPCInternalError ||
    err instanceof GRPCResourceExhastedError ||
    err instanceof ClientClosedError ||
    isBrokenCircuit(err)
  ) {
    return new EtcdUnavailableError(operation, { cause: err });
  }
  if ((err instanceof GRPCGenericError || err instanceof EtcdError) && ETCD_SERVER_BUSY.test(err.message)) {
    // etcd's own deadline or a leader election, sent with gRPC code UNKNOWN (or no mapped code): it
    // did not answer in time, exactly as a client-side deadline. Retriable; the API answers 503.
    return new EtcdUnavailableError(operation, { cause: err });
  }
  if (err instanceof GRPCGenericError || err instanceof EtcdError) {
    // Other gRPC failures (protocol errors, "too many operations in txn") are bugs or misconfiguration.
    return new RegistryError(`Cannot ${operation}: etcd rejected the request (${describeCause(err)})`, false, { cause: err });
  }
  if (err instanceof Error && /ECONNREFUSED|ECONNRESET|No connection established|deadline/i.test(err.message)) {
    return new EtcdUnavailableError(operation, { cause: err });
  }
  return new RegistryError(`Cannot ${operation}: ${describeCause(err)}`, false, { cause: err });
}

/** Whether an error (translated or not) is worth retrying. */
export function isRetriable(err: unknown): boolean {
  return err instanceof RegistryError ? err.retriable : translateEtcdError(err, "call etcd").retriable;
}
