/**
 * Runs the real fleetctl bundle (dist/fleetctl.cjs) against a cluster like an operator would: over an
 * SSH tunnel to a machine's forwarded port, with the cluster's key and known_hosts.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { readFileSync } from "node:fs";
import { run, type RunOptions, type RunResult } from "../lib/process/run";
import { FLEET_API_PORT } from "./cloud-config";
import { clusterPaths, type ClusterSpec, type MachineSpec } from "./cluster-layout";

/** The repository root (fleetctl resolves unit paths like `units/web@1.service` from here). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const fleetctlBundle = path.join(repoRoot, "dist", "fleetctl.cjs");

/** fleetctl's global flags for this cluster, tunnelling through `via`. */
export function fleetctlFlags(root: string, spec: ClusterSpec, via: MachineSpec): string[] {
  const paths = clusterPaths(root, spec.name);
  return [
    `--tunnel=127.0.0.1:${via.sshPort}`,
    `--endpoint=http://127.0.0.1:${FLEET_API_PORT}`,
    `--api-token=${readFileSync(paths.apiToken, "utf8").trim()}`,
    `--known-hosts-file=${paths.knownHosts}`,
    `--identity-file=${paths.privateKey}`,
  ];
}

export function runFleetctl(root: string, spec: ClusterSpec, via: MachineSpec, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [fleetctlBundle, ...fleetctlFlags(root, spec, via), ...args], {
    cwd: repoRoot,
    timeoutMs: 180_000,
    // The cluster key only: an operator's ssh-agent may hold keys the machines refuse.
    env: { ...process.env, SSH_AUTH_SOCK: "" },
    ...options,
  });
}
