/** Where image-builder keeps what survives between builds (downloaded .debs, finished stages). */
import os from "node:os";
import path from "node:path";

/** `${XDG_CACHE_HOME:-~/.cache}/corefleet`. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const base = env["XDG_CACHE_HOME"] !== undefined && env["XDG_CACHE_HOME"] !== "" ? env["XDG_CACHE_HOME"] : path.join(os.homedir(), ".cache");
  return path.join(base, "corefleet");
}

/** The .deb download cache shared by every build (synced in and out of mmdebstrap's chroot). */
export function debCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheRoot(env), "debs");
}
