/**
 * SSH to a cluster machine through its forwarded loopback port with OpenSSH's client: the cluster's
 * key, the cluster's known_hosts and strict host-key checking (the host key was provisioned by us).
 */
import { run, type RunOptions, type RunResult } from "../lib/process/run";
import type { ClusterPaths, MachineSpec } from "./cluster-layout";

/** OpenSSH client arguments for one machine (without the remote command). */
export function sshArgs(paths: ClusterPaths, machine: MachineSpec, options: { tty?: boolean; connectTimeoutS?: number } = {}): string[] {
  return [
    "-i", paths.privateKey,
    "-p", String(machine.sshPort),
    "-o", `UserKnownHostsFile=${paths.knownHosts}`,
    "-o", "StrictHostKeyChecking=yes",
    "-o", "IdentitiesOnly=yes",
    "-o", `ConnectTimeout=${options.connectTimeoutS ?? 10}`,
    "-o", "ServerAliveInterval=5",
    "-o", "ServerAliveCountMax=6",
    "-o", "LogLevel=ERROR",
    ...(options.tty ? ["-t"] : ["-T", "-o", "BatchMode=yes"]),
    "core@127.0.0.1",
  ];
}

/** Runs `command` (one shell string for the remote side, as ssh always does) on the machine. */
export function runOnMachine(paths: ClusterPaths, machine: MachineSpec, command: string, options: RunOptions = {}): Promise<RunResult> {
  return run("ssh", [...sshArgs(paths, machine), command], { timeoutMs: 120_000, ...options });
}
