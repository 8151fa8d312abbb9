/**
 * Makes the installed tree an image: records package names and versions (for the manifest) while
 * dpkg's database still exists, deletes the files of packages the image does not need, the trimmed
 * paths and kernel modules a VM or EC2 host never loads, then rebuilds modules.dep.
 */
import { readFile, readdir, rm, lstat, stat } from "node:fs/promises";
import path from "node:path";
import { undefinedIfMissing } from "../lib/fs/missing";
import { run } from "../lib/process/run";

/** Name and version of each installed package (from /var/lib/dpkg/status), sorted by name. */
export function parseDpkgStatus(text: string): { name: string; version: string }[] {
  const out: { name: string; version: string }[] = [];
  for (const para of text.split(/\n\n+/)) {
    const name = /^Package: (.+)$/m.exec(para)?.[1];
    const version = /^Version: (.+)$/m.exec(para)?.[1];
    const status = /^Status: (.+)$/m.exec(para)?.[1];
    if (name !== undefined && version !== undefined && status?.endsWith(" installed")) out.push({ name, version });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Reads the package list of a rootfs. */
export async function installedPackages(root: string): Promise<{ name: string; version: string }[]> {
  return parseDpkgStatus(await readFile(path.join(root, "var/lib/dpkg/status"), "utf8"));
}

/** Deletes the regular files and symlinks that dpkg lists for each package (directories stay). */
export async function dropPackages(root: string, packages: readonly string[]): Promise<string[]> {
  const dropped: string[] = [];
  const info = path.join(root, "var/lib/dpkg/info");
  const lists = await readdir(info);
  for (const pkg of packages) {
    const list = lists.find((f) => f === `${pkg}.list` || f === `${pkg}:amd64.list`);
    if (list === undefined) continue;
    dropped.push(pkg);
    for (const file of (await readFile(path.join(info, list), "utf8")).split("\n")) {
      if (file === "" || file === "/." ) continue;
      const p = path.join(root, file);
      // stat follows links: the merged-/usr links (/bin -> usr/bin) are listed by some packages and must stay.
      const st = await stat(p).catch(undefinedIfMissing);
      const lst = await lstat(p).catch(undefinedIfMissing);
      if (lst !== undefined && !(st?.isDirectory() ?? false)) await rm(p, { force: true });
    }
  }
  return dropped;
}

/** Keeps only the module paths listed (prefix match) under kernel/, then runs depmod. */
export async function trimModules(root: string, keep: readonly string[], signal?: AbortSignal): Promise<{ kernelVersion: string; removed: number }> {
  const modRoot = path.join(root, "usr/lib/modules");
  const versions = await readdir(modRoot);
  const kernelVersion = versions[0];
  if (kernelVersion === undefined || versions.length !== 1) {
    throw new Error(`Cannot trim kernel modules: expected exactly one kernel in ${modRoot}, found ${versions.length}; install one linux-image package`);
  }
  let removed = 0;
  if (keep.length > 0) {
    const base = path.join(modRoot, kernelVersion);
    // Keep the dependencies of kept modules too (sd_mod needs scsi_mod, wherever that lives).
    const deps = parseDeps(await readFile(path.join(base, "modules.dep"), "utf8"));
    const keepFiles = new Set<string>();
    const add = (p: string): void => {
      if (keepFiles.has(p)) return;
      keepFiles.add(p);
      for (const d of deps.get(p) ?? []) add(d);
    };
    for (const p of deps.keys()) if (keep.some((k) => p === k || p.startsWith(`${k}/`))) add(p);
    const walk = async (rel: string): Promise<void> => {
      for (const e of await readdir(path.join(base, rel), { withFileTypes: true })) {
        const p = `${rel}/${e.name}`;
        if (e.isDirectory()) {
          await walk(p);
          if ((await readdir(path.join(base, p))).length === 0) await rm(path.join(base, p), { recursive: true });
        } else if (!keepFiles.has(p)) {
          await rm(path.join(base, p), { force: true });
          removed++;
        }
      }
    };
    await walk("kernel");
  }
  // depmod runs inside the tree: the build host need not have kmod.
  await run("chroot", [root, "depmod", kernelVersion], signal ? { signal } : {});
  return { kernelVersion, removed };
}

/** modules.dep as module path → dependency paths. */
function parseDeps(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1).trim().split(/\s+/).filter(Boolean));
  }
  return m;
}

/** Deletes paths (relative to root); missing ones are fine. */
export async function trimPaths(root: string, paths: readonly string[]): Promise<void> {
  for (const p of paths) await rm(path.join(root, p), { recursive: true, force: true });
}
