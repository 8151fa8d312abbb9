/** Turns API client failures into the operator-facing messages fleet printed. */
import { ApiError, ApiUnreachableError, EndpointError } from "../lib/api/client";
import { CliError } from "./cli-error";

const POSSIBLE_ISSUES = [
  "Possible issues:",
  "  fleetd is not running or cannot be reached at the endpoint (check --endpoint / FLEETCTL_ENDPOINT, --tunnel)",
  "  etcd is unhealthy and/or lost quorum",
  "  connection cannot be established to any etcd servers",
];

/**
 * `what` reads like "Error retrieving list of units from fleet API". Unreachable API and 503 (fleetd
 * up, etcd not) get fleet's "Possible issues" hint; other API errors are quoted as the server said.
 */
export function apiFailure(what: string, err: unknown): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof EndpointError) return new CliError(`Unable to initialize client: ${err.message}`, 1, { cause: err });
  if (err instanceof ApiUnreachableError || (err instanceof ApiError && err.status === 503)) {
    return new CliError([`${what}: ${err.message}`, ...POSSIBLE_ISSUES].join("\n"), 1, { cause: err });
  }
  if (err instanceof ApiError) return new CliError(`${what}: ${err.message} (HTTP ${err.status})`, 1, { cause: err });
  return new CliError(`${what}: ${err instanceof Error ? err.message : String(err)}`, 1, { cause: err });
}
