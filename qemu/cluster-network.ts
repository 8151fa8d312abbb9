/**
 * The private network of one cluster: a network namespace created by the tool, a bridge with the
 * gateway address 10.77.0.1/24 and one tap device per machine inside it. The namespace has no route
 * out and no NAT, so guests can reach each other and the forwarders, nothing else.
 */
import { run } from "../lib/process/run";
import { withSignal } from "./with-signal";
import { BRIDGE_ADDRESS } from "./cluster-layout";

const BRIDGE = "br0";

/** Names of the network namespaces that exist now. */
export async function listNamespaces(signal?: AbortSignal): Promise<string[]> {
  const r = await run("ip", ["netns", "list"], { ...withSignal(signal), timeoutMs: 10_000 });
  return r.stdout
    .split("\n")
    .map((l) => l.split(/\s+/)[0] ?? "")
    .filter(Boolean);
}

/** Creates the namespace, the bridge and the taps. Fails if the namespace already exists. */
export async function createClusterNetwork(netns: string, taps: readonly string[], signal?: AbortSignal): Promise<void> {
  if ((await listNamespaces(signal)).includes(netns)) {
    throw new Error(`Cannot create network namespace "${netns}": it already exists; run "down" for that cluster first (or "ip netns del ${netns}")`);
  }
  const ip = (...args: string[]) => run("ip", ["-n", netns, ...args], { ...withSignal(signal), timeoutMs: 10_000 });
  await run("ip", ["netns", "add", netns], { ...withSignal(signal), timeoutMs: 10_000 });
  try {
    await ip("link", "set", "lo", "up");
    await ip("link", "add", BRIDGE, "type", "bridge");
    await ip("addr", "add", `${BRIDGE_ADDRESS}/24`, "dev", BRIDGE);
    await ip("link", "set", BRIDGE, "up");
    for (const tap of taps) await addTap(netns, tap, signal);
  } catch (err) {
    await removeClusterNetwork(netns);
    throw err;
  }
}

/** Adds one tap device to the cluster bridge. */
export async function addTap(netns: string, tap: string, signal?: AbortSignal): Promise<void> {
  const ip = (...args: string[]) => run("ip", ["-n", netns, ...args], { ...withSignal(signal), timeoutMs: 10_000 });
  await ip("tuntap", "add", "dev", tap, "mode", "tap");
  await ip("link", "set", tap, "master", BRIDGE);
  await ip("link", "set", tap, "up");
}

/** Deletes the namespace (and with it the bridge and taps). Idempotent. */
export async function removeClusterNetwork(netns: string): Promise<void> {
  if (!(await listNamespaces()).includes(netns)) return;
  await run("ip", ["netns", "del", netns], { timeoutMs: 10_000 });
}

/** Runs a command inside the namespace (`ip netns exec`): the argv to pass to `run`. */
export function inNamespace(netns: string, command: string, args: readonly string[]): [string, string[]] {
  return ["ip", ["netns", "exec", netns, command, ...args]];
}
