/**
 * `down`: removes everything `up` created for a cluster: QEMU processes (hard power-off: the disks
 * are thrown away anyway), the SSH forwarder, QMP sockets, the network namespace with its bridge and
 * taps, and the cluster folder (overlays, config drives, console logs, keys). Safe to repeat, and
 * works on half-created clusters.
 */
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { clusterPaths, validateClusterName } from "./cluster-layout";
import { removeClusterNetwork } from "./cluster-network";
import { loadCluster } from "./cluster-store";
import { stopProcess } from "./ssh-forwarder";
import { Vm } from "./vm";

/**
 * Removes cluster `name` under `root`. Throws, before touching anything, when `name` is not a plain
 * cluster name: an empty name or ".." would otherwise make the cluster folder `root` or its parent.
 */
export async function downCluster(root: string, name: string, log: (line: string) => void = () => undefined): Promise<boolean> {
  validateClusterName(name);
  const paths = clusterPaths(root, name);
  // Defence in depth: only ever remove a direct child folder of root.
  if (path.dirname(path.resolve(paths.dir)) !== path.resolve(root) || path.basename(paths.dir) !== name) {
    throw new Error(`Refusing to remove ${paths.dir}: it is not the folder of cluster "${name}" directly under ${root}`);
  }
  const spec = await loadCluster(root, name);
  const netns = spec?.netns ?? `corefleet-${name}`;
  for (const m of spec?.machines ?? []) {
    const vm = await Vm.find(paths.machine(m.index).dir);
    if (!vm) continue;
    await vm.kill();
    await rm(vm.record.qmpSocket, { force: true });
    log(`  ${m.hostname}: stopped`);
  }
  const fwdPid = Number((await readFile(paths.forwarderPid, "utf8").catch(() => "")).trim());
  if (fwdPid > 0) await stopProcess(fwdPid);
  await removeClusterNetwork(netns);
  const existed = spec !== undefined;
  await rm(paths.dir, { recursive: true, force: true });
  return existed;
}
