/** Turns API client failures into the operator-facing messages fleet printed. */
import { ApiError, ApiUnreachableError, EndpointError } from "../lib/api/client";
import { DUPLICATE_MACHINE_ID_CAUSE } from "../lib/api/types";
import { CliError } from "./cli-error";
import { envName } from "./global-options";

const POSSIBLE_ISSUES = [
  "Possible issues:",
  "  fleetd is not running or cannot be reached at the endpoint (check --endpoint / FLEETCTL_ENDPOINT, --tunnel)",
  "  etcd is unhealthy and/or lost quorum",
  "  connection cannot be established to any etcd servers",
];

/**
 * `what` reads like "Error retrieving list of units from fleet API". Unreachable API and 503 (fleetd
 * up, etcd not) get fleet's "Possible issues" hint, except a 503 for a duplicate machine ID; 401 how
 * to pass the token; other API errors are quoted as the server said.
 */
export function apiFailure(what: string, err: unknown): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof EndpointError) return new CliError(`Unable to initialize client: ${err.message}`, 1, { cause: err });
  // fleetd is up and etcd is fine, but this machine's ID is taken: the message says what to do.
  if (err instanceof ApiError && err.status === 503 && err.message.includes(DUPLICATE_MACHINE_ID_CAUSE)) return new CliError(`${what}: ${err.message}`, 1, { cause: err });
  if (err instanceof ApiUnreachableError || (err instanceof ApiError && err.status === 503)) {
    return new CliError([`${what}: ${err.message}`, ...POSSIBLE_ISSUES].join("\n"), 1, { cause: err });
  }
  if (err instanceof ApiError && err.status === 401) {
    // fleetd's 401 names its own option; say how fleetctl sends the token.
    const hint = `fleetctl sends the token given with --api-token or ${envName("api-token")}: set either to the api_token in fleetd's configuration`;
    return new CliError(`${what}: ${err.message} (HTTP 401)\n${hint}`, 1, { cause: err });
  }
  if (err instanceof ApiError) return new CliError(`${what}: ${err.message} (HTTP ${err.status})`, 1, { cause: err });
  return new CliError(`${what}: ${err instanceof Error ? err.message : String(err)}`, 1, { cause: err });
}

/**
 * 500 messages that mean etcd did not answer in time or could not be reached (fleetd's wording, etcd's).
 * fleetd answers 503 for these since 2026-12; fleetds from before answered some with 500, as may fleet.
 */
const ETCD_TROUBLE = /etcd is unreachable|did not answer in time|unable to communicate with etcd|deadline exceeded|request timed out|timed out|unavailable|no leader|leader changed|ECONNRESET|ECONNREFUSED|ETIMEDOUT/i;

/**
 * Why a failed API call may work when tried again, or undefined when it is final (any 4xx, a 500 that
 * is not about etcd). Transient: the connection failed or dropped before a whole answer (including the
 * request timeout), a 502/503/504, or a 500 saying etcd timed out or is unavailable. For a write, a
 * transient failure is *ambiguous*: the server may have carried it out and only the answer was lost.
 */
export function transientFailure(err: unknown): string | undefined {
  if (err instanceof ApiUnreachableError) return err.message;
  if (err instanceof ApiError && (err.status === 502 || err.status === 503 || err.status === 504)) return `HTTP ${err.status}: ${err.message}`;
  if (err instanceof ApiError && err.status === 500 && ETCD_TROUBLE.test(err.message)) return `HTTP 500: ${err.message}`;
  return undefined;
}

/**
 * The request never left: the endpoint's unix socket file does not exist (connect ENOENT), so no
 * fleetd listens there and nothing can have been carried out. Not a lost answer: commands that repeat
 * a request after a lost answer (scale, deploy, rollback) fail at once with the usual "Possible issues",
 * as every other command does, instead of retrying for seconds.
 */
export function missingSocket(err: unknown): boolean {
  if (!(err instanceof ApiUnreachableError)) return false;
  for (let e: unknown = err.cause; e instanceof Error; e = e.cause) {
    const { code, syscall } = e as NodeJS.ErrnoException;
    if (code === "ENOENT" && (syscall === undefined || syscall === "connect")) return true;
  }
  return false;
}
