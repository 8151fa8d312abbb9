/** Reads and writes a cluster's `cluster.json` (atomically) and lists the clusters that exist. */
import { lstat, mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { clusterPaths, isClusterName, type ClusterSpec } from "./cluster-layout";

export async function saveCluster(root: string, spec: ClusterSpec): Promise<void> {
  const paths = clusterPaths(root, spec.name);
  await mkdir(paths.dir, { recursive: true });
  const tmp = `${paths.spec}.tmp`;
  await writeFile(tmp, `${JSON.stringify(spec, null, 2)}\n`);
  await rename(tmp, paths.spec);
}

/** The recorded cluster, or undefined when there is no such cluster. */
export async function loadCluster(root: string, name: string): Promise<ClusterSpec | undefined> {
  try {
    const spec = JSON.parse(await readFile(clusterPaths(root, name).spec, "utf8")) as Partial<ClusterSpec> | null;
    if (typeof spec !== "object" || spec === null || spec.name !== name || !Array.isArray(spec.machines)) {
      throw new Error(`not a record of cluster "${name}" (no "name": "${name}" and "machines" list)`);
    }
    return spec as ClusterSpec;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`Cannot read cluster "${name}": ${clusterPaths(root, name).spec} is unreadable (${(err as Error).message}); remove it with "down --name ${name}"`, { cause: err });
  }
}

/** Like {@link loadCluster} but fails with what to do when the cluster does not exist. */
export async function requireCluster(root: string, name: string): Promise<ClusterSpec> {
  const spec = await loadCluster(root, name);
  if (!spec) throw new Error(`No cluster named "${name}" in ${root}; start one with "up --name ${name} --size 3"`);
  return spec;
}

/**
 * Names of every cluster under `root`: folders with a cluster name that hold a `cluster.json`
 * (readable or not). An empty folder, or one without `cluster.json`, is not a cluster.
 */
export async function listClusters(root: string): Promise<string[]> {
  try {
    const dirs = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory() && isClusterName(d.name)).map((d) => d.name);
    const hasSpec = await Promise.all(
      dirs.map((n) =>
        lstat(clusterPaths(root, n).spec).then(
          () => true,
          (err: NodeJS.ErrnoException) => err.code !== "ENOENT" && err.code !== "ENOTDIR",
        ),
      ),
    );
    return dirs.filter((_, i) => hasSpec[i]).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

/** Machine lookup by 1-based index with the error an operator needs. */
export function machineAt(spec: ClusterSpec, index: number) {
  const m = spec.machines.find((x) => x.index === index);
  if (!m) throw new Error(`Cluster "${spec.name}" has no machine ${index}: it has ${spec.machines.length} (1..${spec.machines.length})`);
  return m;
}

