/**
 * Our own small initramfs: a static busybox, the few kernel modules needed to see the disk (with
 * their dependencies resolved from modules.dep, in load order) and an /init shell script. It is
 * written as a sorted newc cpio with fixed timestamps, then compressed with zstd.
 */
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { run } from "../lib/process/run";

export interface InitramfsOptions {
  /** Path of a statically linked busybox. */
  busybox: string;
  /** The /init script (run by busybox sh). */
  init: string;
  /** `/lib/modules/<version>` of the kernel, to take modules from; omit for no modules. */
  modulesDir?: string;
  /** Module names (e.g. "virtio_blk"); dependencies are added. Listed in load order in /etc/modules.order. */
  modules?: readonly string[];
  out: string;
  /** Timestamp for every file (SOURCE_DATE_EPOCH). */
  epoch: number;
  signal?: AbortSignal;
}

/** Parses modules.dep into name → { path, deps } (names use "_" for "-" as the kernel does). */
export function parseModulesDep(text: string): Map<string, { path: string; deps: string[] }> {
  const out = new Map<string, { path: string; deps: string[] }>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const p = line.slice(0, colon).trim();
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter((d) => d !== "");
    out.set(moduleName(p), { path: p, deps });
  }
  return out;
}

/** "kernel/fs/fat/vfat.ko" → "vfat"; "nvme-core.ko.xz" → "nvme_core". */
export function moduleName(p: string): string {
  return path.basename(p).replace(/\.ko(\.\w+)?$/, "").replace(/-/g, "_");
}

/**
 * The module files to load for `wanted`, dependencies first, each once. Modules built into the kernel
 * (listed in modules.builtin) are skipped; unknown names throw.
 */
export function resolveModules(dep: Map<string, { path: string; deps: string[] }>, wanted: readonly string[], builtin: ReadonlySet<string> = new Set()): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (p: string): void => {
    if (seen.has(p)) return;
    seen.add(p);
    const entry = dep.get(moduleName(p));
    // modules.dep lists a module's dependencies in reverse load order (deepest last).
    for (const d of [...(entry?.deps ?? [])].reverse()) visit(d);
    order.push(p);
  };
  for (const w of wanted) {
    const name = w.replace(/-/g, "_");
    if (builtin.has(name)) continue;
    const entry = dep.get(name);
    if (entry === undefined) {
      throw new Error(`Cannot put kernel module "${w}" into the initramfs: it is neither in modules.dep nor built in; check the profile's initramfs module list`);
    }
    visit(entry.path);
  }
  return order;
}

/** Names of built-in modules from modules.builtin. */
export function parseModulesBuiltin(text: string): Set<string> {
  return new Set(text.split("\n").filter((l) => l.trim() !== "").map(moduleName));
}

/** Builds the initramfs; returns the number of modules included. */
export async function buildInitramfs(o: InitramfsOptions): Promise<{ modules: string[] }> {
  const root = await mkdtemp(path.join(os.tmpdir(), "corefleet-initramfs-"));
  try {
    for (const d of ["bin", "dev", "proc", "sys", "sysroot", "etc", "run", "tmp", "lib/modules"]) {
      await mkdir(path.join(root, d), { recursive: true });
    }
    await copyFile(o.busybox, path.join(root, "bin/busybox"));
    await chmod(path.join(root, "bin/busybox"), 0o755);
    await writeFile(path.join(root, "init"), o.init, { mode: 0o755 });
    let modules: string[] = [];
    if (o.modulesDir !== undefined && (o.modules?.length ?? 0) > 0) {
      const dep = parseModulesDep(await readFile(path.join(o.modulesDir, "modules.dep"), "utf8"));
      const builtin = parseModulesBuiltin(await readFile(path.join(o.modulesDir, "modules.builtin"), "utf8").catch(() => ""));
      modules = resolveModules(dep, o.modules ?? [], builtin);
      for (const m of modules) {
        await copyFile(path.join(o.modulesDir, m), path.join(root, "lib/modules", path.basename(m)));
      }
      await writeFile(path.join(root, "etc/modules.order"), modules.map((m) => path.basename(m)).join("\n") + "\n");
    }
    const files = (await listTree(root)).sort();
    await run("find", [root, "-exec", "touch", "-h", "-d", `@${o.epoch}`, "{}", "+"], sig(o.signal));
    // cpio -F writes the archive to a file (no shell redirection needed).
    const tmpCpio = `${o.out}.cpio`;
    await run("cpio", ["--quiet", "-o", "-H", "newc", "--reproducible", "-R", "0:0", "-D", root, "-F", tmpCpio], { input: [".", ...files].join("\n") + "\n", ...sig(o.signal) });
    await run("zstd", ["-q", "-f", "-19", "--rm", tmpCpio, "-o", o.out], sig(o.signal));
    return { modules };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function listTree(root: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(root, rel), { withFileTypes: true })) {
    const p = rel === "" ? e.name : `${rel}/${e.name}`;
    out.push(p);
    if (e.isDirectory()) out.push(...(await listTree(root, p)));
  }
  return out;
}

function sig(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}
