/**
 * The start-up snapshot and V8 code caches that image-builder/launcher.ts uses in the guest. Both are
 * made at build time with the image's own node, in a chroot of the tree: a snapshot or code cache is
 * tied to the exact node binary and V8 flags, and /usr ships them together, read-only.
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import { run } from "../lib/process/run";
import { CODE_CACHE_ENV } from "./launch-env";

/** Where the launcher, its snapshot and the bundles live in the image. */
export const BUNDLE_DIR = "/usr/lib/corefleet";
export const LAUNCHER = `${BUNDLE_DIR}/launch.cjs`;
export const SNAPSHOT = `${BUNDLE_DIR}/launch.blob`;
/** The bundles started through the launcher, each with a code cache (all accept `--version`). */
export const CODE_CACHED_BUNDLES = ["fleetd.cjs", "fleetctl.cjs", "provision.cjs"];

/** The script the image's commands and services start their bundle with (overlay/usr/lib/corefleet/node-launch). */
export const NODE_LAUNCH = `${BUNDLE_DIR}/node-launch`;
/** Marker node-launch leaves in /run once it knows whether this CPU can load the snapshot (`.ok` or `.unusable`). */
export const SNAPSHOT_MARK = "/run/corefleet/launch-snapshot";

/**
 * The command line that runs bundle NAME (e.g. "fleetd.cjs") in the image: from the start-up
 * snapshot when this CPU can load it, else from source (node-launch decides once per boot).
 */
export function launchCommand(name: string): string[] {
  return [NODE_LAUNCH, `${BUNDLE_DIR}/${name}`];
}

/** The command line that runs bundle NAME from the start-up snapshot (the build, on the CPU that made it). */
export function snapshotCommand(name: string): string[] {
  return ["/usr/bin/node", "--snapshot-blob", SNAPSHOT, `${BUNDLE_DIR}/${name}`];
}

export interface StartupFiles {
  snapshotBytes: number;
  /** bundle name → code cache bytes. */
  caches: Record<string, number>;
}

/**
 * In the tree at ROOT (bundles and launch.cjs installed): builds launch.blob, then writes
 * BUNDLE.cache for each bundle by running `BUNDLE --version` from that snapshot, as the image will
 * run it (the launcher compiles the whole bundle eagerly when writing). Each cache is checked by a
 * second run that fails unless V8 accepts it.
 */
export async function writeStartupFiles(root: string, names: readonly string[], signal?: AbortSignal): Promise<StartupFiles> {
  const sig = signal ? { signal } : {};
  // A clean environment: the host's NODE_OPTIONS or NODE_EXTRA_CA_CERTS must not reach the image's node.
  const env = (mode?: string): NodeJS.ProcessEnv => ({ PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...(mode ? { [CODE_CACHE_ENV]: mode } : {}) });
  await run("chroot", [root, "/usr/bin/node", "--snapshot-blob", SNAPSHOT, "--build-snapshot", LAUNCHER], { env: env(), timeoutMs: 120_000, ...sig });
  const caches: Record<string, number> = {};
  for (const name of names) {
    const argv = [root, ...snapshotCommand(name), "--version"];
    await run("chroot", argv, { env: env("write"), timeoutMs: 60_000, ...sig });
    const check = await run("chroot", argv, { env: env("require"), timeoutMs: 60_000, allowFailure: true, ...sig });
    if (check.exitCode !== 0) {
      throw new Error(`the V8 code cache made for ${name} is not accepted by the image's node (exit ${check.exitCode}: ${check.stderr.trim()})`);
    }
    caches[name] = (await stat(path.join(root, BUNDLE_DIR, `${name}.cache`))).size;
  }
  return { snapshotBytes: (await stat(path.join(root, SNAPSHOT))).size, caches };
}
