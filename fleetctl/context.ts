/**
 * What every command gets: its streams, environment, resolved global options and a lazily created API
 * client (injected in tests). Commands never touch `process` directly.
 */
import type { Readable, Writable } from "node:stream";
import type { ApiClient } from "../lib/api/client";
import type { ApiMachine } from "../lib/api/types";
import type { GlobalOptions } from "./global-options";

/** The API calls fleetctl makes (implemented by `ApiClient`). */
export type FleetApi = Pick<
  ApiClient,
  "listMachines" | "patchMachines" | "listUnits" | "getUnit" | "createUnit" | "putUnits" | "setUnitTargetState" | "destroyUnit" | "listUnitStates" | "scale" | "deploy" | "getDeployment" | "getDeploymentSummary" | "why" | "rebalance"
>;

/** Streams and environment of one fleetctl run. */
export interface CliIO {
  stdout: Writable;
  stderr: Writable;
  stdin: Readable & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  /** Directory relative paths of unit files are resolved against; default `process.cwd()`. */
  cwd?: string;
  /** Where this host's machine ID is read (status/journal run locally on it); default `/etc/machine-id`. */
  machineIdFile?: string;
}

export interface CommandContext {
  io: CliIO;
  globals(): GlobalOptions;
  /** The API client (created on first use: commands like `version` need none). */
  api(): Promise<FleetApi>;
  /** Live machines, fetched once per run (for machine legends). */
  machines(): Promise<Map<string, ApiMachine>>;
  /** Writes a line to stdout. */
  out(line: string): void;
  /** Writes a line to stderr. */
  err(line: string): void;
  /** Debug line to stderr when `--debug` is set. */
  debug(line: string): void;
  /** Aborted when the run should stop (Ctrl-C). */
  signal: AbortSignal;
  /** fleetctl's version. */
  version: string;
}
