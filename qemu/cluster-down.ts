/**
 * `down`: removes everything `up` created for a cluster: QEMU processes (hard power-off: the disks
 * are thrown away anyway), the SSH forwarder, QMP sockets, the network namespace with its bridge and
 * taps, and the cluster folder (overlays, config drives, console logs, keys). Safe to repeat, and
 * works on half-created clusters.
 */
import { readFile, rm } from "node:fs/promises";
import { clusterPaths } from "./cluster-layout";
import { removeClusterNetwork } from "./cluster-network";
import { loadCluster } from "./cluster-store";
import { stopProcess } from "./ssh-forwarder";
import { Vm } from "./vm";

/**
 * Removes cluster `name` under `root`. Throws, before touching anything, when `name` is not a plain
 * cluster name (`clusterPaths` checks it): an empty name or ".." would otherwise make the cluster
 * folder `root` or its parent.
 */
export async function downCluster(root: string, name: string, log: (line: string) => void = () => undefined): Promise<boolean> {
  const paths = clusterPaths(root, name);
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
