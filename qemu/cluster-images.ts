/**
 * The build → push half of the image workflow against a qemu cluster, as `npm start` and the e2e
 * suite use it: build an image directory with `image-builder container` (Debian packages from the
 * host's archive, no registry), then push the archive to the cluster registry (registry.cluster:5000,
 * units/registry.service) through an SSH port forward via a machine, retrying while the registry
 * is still starting.
 */
import path from "node:path";
import { delay } from "../lib/async/delay";
import { run } from "../lib/process/run";
import { pushImage, type PushResult } from "../image-builder/push";
import { repoRoot } from "./cluster-fleetctl";
import { clusterPaths, type ClusterSpec, type MachineSpec } from "./cluster-layout";
import { REGISTRY_NAME, REGISTRY_PORT } from "./cluster-registry";

/** Builds `dir` (an image directory) into `out`; returns the manifest digest `image-builder container` printed. */
export async function buildImageDir(dir: string, out: string, options: { name?: string; signal?: AbortSignal; log?: (l: string) => void } = {}): Promise<string> {
  const r = await run(process.execPath, [path.join(repoRoot, "node_modules/.bin/tsx"), path.join(repoRoot, "image-builder/main.ts"), "container", dir, "--out", out,
    ...(options.name ? ["--name", options.name] : [])],
  { cwd: repoRoot, timeoutMs: 10 * 60_000, ...(options.signal ? { signal: options.signal } : {}), onStderr: (c) => options.log?.(c.trimEnd()) });
  return r.stdout.trim();
}

/** Pushes `archive` as registry.cluster:5000/`nameTag` through `via`; retries for up to `waitMs` (default 3 min) while the registry does not answer. */
export async function pushToCluster(root: string, spec: ClusterSpec, via: MachineSpec, archive: string, nameTag: string,
  options: { waitMs?: number; signal?: AbortSignal; log?: (l: string) => void } = {}): Promise<PushResult> {
  const paths = clusterPaths(root, spec.name);
  const [name, tag] = nameTag.split(":");
  const deadline = Date.now() + (options.waitMs ?? 180_000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await pushImage({
        archive,
        to: { host: REGISTRY_NAME, port: REGISTRY_PORT, ...(name ? { name } : {}), ...(tag ? { tag } : {}) },
        tunnel: { via: `core@127.0.0.1:${via.sshPort}`, identityFile: paths.privateKey, knownHostsFile: paths.knownHosts },
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      if (Date.now() > deadline || options.signal?.aborted) throw err;
      options.log?.(`push attempt ${attempt} failed (${(err as Error).message.split("\n")[0] ?? ""}); retrying in 5 s`);
      await delay(5_000, options.signal);
    }
  }
}
