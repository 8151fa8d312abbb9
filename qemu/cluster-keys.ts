/**
 * A cluster's SSH keys: the operator key (ed25519, generated for the cluster unless one is given) and
 * one host key shared by the cluster's machines, so `known_hosts` can be written before any machine
 * boots and host-key checking stays strict for ssh and fleetctl alike.
 */
import { randomBytes } from "node:crypto";
import { access, readFile, writeFile } from "node:fs/promises";
import { run } from "../lib/process/run";
import { withSignal } from "./with-signal";
import type { ClusterSecrets } from "./cloud-config";
import type { ClusterPaths, MachineSpec } from "./cluster-layout";

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

async function keygen(file: string, comment: string, signal?: AbortSignal): Promise<void> {
  if (await exists(file)) return;
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file], { ...withSignal(signal), timeoutMs: 30_000 });
}

/**
 * Creates the keys that do not exist yet and returns them. `operatorPublicKeyFile` replaces the
 * generated operator key (its private half then stays with the operator's agent).
 */
export async function ensureClusterKeys(paths: ClusterPaths, clusterName: string, options: { operatorPublicKeyFile?: string; signal?: AbortSignal } = {}): Promise<ClusterSecrets> {
  await keygen(paths.privateKey, `corefleet-${clusterName}-operator`, options.signal);
  await keygen(paths.hostKey, `corefleet-${clusterName}-host`, options.signal);
  const operatorPublicKey = await readFile(options.operatorPublicKeyFile ?? paths.publicKey, "utf8");
  if (!(await exists(paths.apiToken))) await writeFile(paths.apiToken, `${randomBytes(24).toString("hex")}\n`, { mode: 0o600 });
  return {
    apiToken: (await readFile(paths.apiToken, "utf8")).trim(),
    operatorPublicKey,
    hostPrivateKey: await readFile(paths.hostKey, "utf8"),
    hostPublicKey: await readFile(`${paths.hostKey}.pub`, "utf8"),
  };
}

/**
 * known_hosts for the cluster: each machine under its forwarded loopback port (for `ssh`/`--tunnel`)
 * and under its private address (fleetctl ssh hops to machines by their public_ip).
 */
export async function writeKnownHosts(paths: ClusterPaths, machines: readonly MachineSpec[], hostPublicKey: string): Promise<void> {
  const [type, key] = hostPublicKey.trim().split(/\s+/);
  if (!type || !key) throw new Error(`Cannot write ${paths.knownHosts}: the host public key in ${paths.hostKey}.pub is malformed`);
  const lines = machines.flatMap((m) => [`[127.0.0.1]:${m.sshPort} ${type} ${key}`, `${m.ip} ${type} ${key}`]);
  await writeFile(paths.knownHosts, `${lines.join("\n")}\n`, { mode: 0o644 });
}
