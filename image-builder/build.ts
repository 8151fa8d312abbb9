/**
 * `image-builder build`: profile → packages (cached stage) → customised tree → initramfs, /usr
 * squashfs, state ext4, UKI on an ESP → GPT disk (raw + qcow2) + kernel/initramfs/cmdline for direct
 * boot + manifest.json. Built in a temp dir beside the output and renamed into place at the end, so a
 * failed build leaves the previous image untouched. Two caches: the installed+trimmed package tree
 * (keyed by packages, apt sources and trim rules) and the finished image (keyed by every input).
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { access, copyFile, mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { run } from "../lib/process/run";
import { readHostAptSources, type AptSources } from "./apt-sources";
import { bootInit } from "./boot-init";
import { prepareBundles } from "./bundles";
import { cacheRoot, debCacheDir } from "./cache-dir";
import { CODE_CACHED_BUNDLES, writeStartupFiles } from "./code-cache";
import { buildContainerImage, preloadIntoRootfs } from "./container";
import { customizeRootfs } from "./customize";
import { assembleDisk, makeEsp, makeExt4, makeQcow2, makeSquashfs } from "./disk";
import { buildInitramfs } from "./initramfs";
import { readManifest, type Manifest } from "./manifest";
import { loadProfile, type Profile } from "./profile";
import { mib, step, type ProgressSink } from "./progress";
import { installRootfs } from "./rootfs";
import { dropPackages, installedPackages, trimModules, trimPaths } from "./trim";
import { buildUki } from "./uki";

export interface BuildOptions {
  profile: string;
  out: string;
  repoRoot: string;
  /** Rebuild even when the finished image's inputs are unchanged. */
  force?: boolean;
  /** Ignore the cached package tree too (the .deb cache is still used). */
  noStageCache?: boolean;
  log: ProgressSink;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export type { Manifest } from "./manifest";

/** Bump when the package stage's output changes for the same inputs. */
const STAGE_VERSION = 3;
const REQUIRED_TOOLS = ["mmdebstrap", "mksquashfs", "mkfs.ext4", "mkfs.vfat", "mmd", "mcopy", "sgdisk", "objcopy", "qemu-img",
  "cpio", "zstd", "tar", "chroot", "dd", "gzip", "podman"];
/** Debian package that provides each tool, for the error message. */
const TOOL_PACKAGES: Record<string, string> = { mmdebstrap: "mmdebstrap", mksquashfs: "squashfs-tools", "mkfs.ext4": "e2fsprogs",
  "mkfs.vfat": "dosfstools", mmd: "mtools", mcopy: "mtools", sgdisk: "gdisk", objcopy: "binutils", "qemu-img": "qemu-utils",
  cpio: "cpio", zstd: "zstd", podman: "podman" };

async function sha256File(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** Fails early with the missing tools and the packages that provide them, and when not root. */
export async function checkBuildHost(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error("Cannot build the image: it needs root (mmdebstrap --mode=root, chroot, file ownership); run it as root, e.g. with sudo");
  }
  const missing: string[] = [];
  for (const t of REQUIRED_TOOLS) {
    const found = await run("sh", ["-c", 'command -v "$1"', "sh", t], { allowFailure: true, env });
    if (found.exitCode !== 0) missing.push(t);
  }
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((t) => TOOL_PACKAGES[t] ?? t))];
    throw new Error(`Cannot build the image: missing tool${missing.length > 1 ? "s" : ""} ${missing.join(", ")}; install ${pkgs.join(" ")} (apt-get install ${pkgs.join(" ")})`);
  }
}

/** Hash of every file under `dir` (names + contents), sorted. */
async function hashTree(dir: string, h = createHash("sha256"), rel = ""): Promise<ReturnType<typeof createHash>> {
  for (const e of (await readdir(path.join(dir, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = rel === "" ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) await hashTree(dir, h, p);
    // Docs, tests and test helpers do not change the image.
    else if (!/\.test\.ts$|\.md$/.test(e.name) && !p.startsWith("testing/")) h.update(`${p}\0${await sha256File(path.join(dir, p))}\0`);
  }
  return h;
}

function stageKeyOf(profile: Profile, sources: AptSources, suite: string): string {
  return createHash("sha256").update(JSON.stringify({
    v: STAGE_VERSION, suite, sources: sources.content, packages: [...profile.packages, ...profile.buildOnlyPackages].sort(),
    drop: profile.dropPackages, trim: profile.trimPaths, modules: profile.keepModules,
  })).digest("hex").slice(0, 24);
}

/** Package stages kept in the cache (each ~260 MiB): the newest used ones; older ones are removed. */
const KEPT_STAGES = 3;

/** Removes all but the `keep` most recently used stages (by the time of their "done" marker). */
export async function pruneStages(stagesDir: string, keep: number): Promise<string[]> {
  const dirs = (await readdir(stagesDir)).filter((d) => d.startsWith("rootfs-"));
  const used = await Promise.all(dirs.map(async (d) => ({ d, t: await stat(path.join(stagesDir, d, "done")).then((st) => st.mtimeMs, () => 0) })));
  const old = used.sort((a, b) => b.t - a.t).slice(keep).map((u) => u.d);
  for (const d of old) await rm(path.join(stagesDir, d), { recursive: true, force: true });
  return old;
}

interface Stage { dir: string; packages: { name: string; version: string }[]; kernelVersion: string }

/** The installed + trimmed package tree, from the stage cache or built now. */
async function packageStage(o: BuildOptions, profile: Profile, sources: AptSources, suite: string, key: string, epoch: number, tmp: string): Promise<Stage> {
  const stageDir = path.join(cacheRoot(o.env), "stages", `rootfs-${key}`);
  const haveCache = !o.noStageCache && (await access(path.join(stageDir, "done")).then(() => true, () => false));
  if (haveCache) {
    o.log(`    package stage: cache hit (${path.basename(stageDir)})`);
    const now = new Date();
    await utimes(path.join(stageDir, "done"), now, now);
    const meta = JSON.parse(await readFile(path.join(stageDir, "stage.json"), "utf8")) as Omit<Stage, "dir">;
    return { dir: stageDir, ...meta };
  }
  const root = path.join(tmp, "stage-root");
  const debsBefore = (await readdir(debCacheDir(o.env)).catch(() => [] as string[])).length;
  await step(o.log, "install packages (mmdebstrap)", () => installRootfs({
    target: root, packages: [...profile.packages, ...profile.buildOnlyPackages], sources, suite, debCache: debCacheDir(o.env), epoch,
    ...(o.signal ? { signal: o.signal } : {}),
  }), () => {
    return `${profile.packages.length + profile.buildOnlyPackages.length} packages asked, .deb cache had ${debsBefore} files`;
  });
  const packages = await installedPackages(root);
  const parts = path.join(tmp, "stage-new");
  await mkdir(parts, { recursive: true });
  const boot = await readdir(path.join(root, "boot"));
  const vmlinuz = boot.find((f) => f.startsWith("vmlinuz-"));
  if (vmlinuz === undefined) throw new Error("Cannot find the kernel: /boot has no vmlinuz-* after installing the packages; the profile must include a linux-image package");
  await copyFile(path.join(root, "boot", vmlinuz), path.join(parts, "vmlinuz"));
  await copyFile(path.join(root, "usr/lib/systemd/boot/efi/linuxx64.efi.stub"), path.join(parts, "linuxx64.efi.stub"));
  await copyFile(path.join(root, "usr/bin/busybox"), path.join(parts, "busybox"));
  const trimmed = await step(o.log, "trim (packages, docs, kernel modules)", async () => {
    const dropped = await dropPackages(root, [...profile.dropPackages, ...profile.buildOnlyPackages.filter((p) => !profile.packages.includes(p))]);
    await trimPaths(root, profile.trimPaths);
    const mods = await trimModules(root, profile.keepModules, o.signal);
    return { dropped, ...mods };
  }, (r) => `dropped ${r.dropped.length} packages, ${r.removed} module paths; kernel ${r.kernelVersion}`);
  await step(o.log, "save package stage to cache", async () => {
    await run("tar", ["--sort=name", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", root, "-cf", path.join(parts, "rootfs.tar"), "."], o.signal ? { signal: o.signal } : {});
    const kept = packages.filter((p) => !trimmed.dropped.includes(p.name));
    await writeFile(path.join(parts, "stage.json"), JSON.stringify({ packages: kept, kernelVersion: trimmed.kernelVersion }, null, 1));
    await writeFile(path.join(parts, "done"), "");
    await mkdir(path.dirname(stageDir), { recursive: true });
    await rm(stageDir, { recursive: true, force: true });
    await rename(parts, stageDir);
    await rm(root, { recursive: true, force: true });
    return pruneStages(path.dirname(stageDir), KEPT_STAGES);
  }, (pruned) => `${stageDir}${pruned.length ? `; removed ${pruned.length} older stage(s)` : ""}`);
  const meta = JSON.parse(await readFile(path.join(stageDir, "stage.json"), "utf8")) as Omit<Stage, "dir">;
  return { dir: stageDir, ...meta };
}

async function du(dir: string): Promise<number> {
  const r = await run("du", ["-sb", dir]);
  return Number(r.stdout.split("\t")[0]);
}

/**
 * The build replaces `out` as a whole (rename, then recursive removal of the old one): refuses, before
 * any work, an `out` that is not a directory, or that holds files but is no previous image (no
 * manifest.json), e.g. `--out build`, which would take build/containers/ with it.
 */
export async function checkOutDir(out: string): Promise<void> {
  const st = await stat(out).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw new Error(`Cannot use --out "${out}": ${err.code ?? err.message}`, { cause: err });
  });
  if (st === undefined) return;
  const refuse = (why: string): never => {
    throw new Error(`Refusing --out "${out}": ${why}, and a build replaces --out as a whole (removing what it held); ` +
      "give a new or empty directory, or the directory of a previous image (build/image by default)");
  };
  if (!st.isDirectory()) refuse("it exists and is not a directory");
  const entries = await readdir(out);
  if (entries.length === 0 || entries.includes("manifest.json")) return;
  refuse(`it holds ${entries.length} entr${entries.length === 1 ? "y" : "ies"} (${entries.slice(0, 3).join(", ")}${entries.length > 3 ? ", ..." : ""}) but no manifest.json, so it is not a previous image`);
}

/** Builds the image; returns its manifest (and whether the up-to-date image was kept). */
export async function buildImage(o: BuildOptions): Promise<{ manifest: Manifest; skipped: boolean; seconds: number }> {
  const started = Date.now();
  const sig = o.signal ? { signal: o.signal } : {};
  const env = o.env ?? process.env;
  const out = path.resolve(o.out);
  await checkOutDir(out);
  await checkBuildHost(env);
  const profile = await loadProfile(o.profile);
  const epoch = Number(env["SOURCE_DATE_EPOCH"] ?? 1735689600);
  const tmp = `${out}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    const sources = await readHostAptSources(tmp);
    const suite = profile.suite ?? sources.suite;
    const stageKey = stageKeyOf(profile, sources, suite);
    o.log(`image-builder: profile ${profile.name}, Debian ${suite} from the host's apt configuration, output ${out}`);
    const bundles = await step(o.log, "bundles (npm run build + provision.cjs)", () => prepareBundles(o.repoRoot, tmp, o.signal),
      (b) => Object.keys(b.files).join(", "));
    for (const w of bundles.warnings) o.log(`    warning: ${w}`);

    const inputs = createHash("sha256").update(`${stageKey}\0${epoch}\0${JSON.stringify(profile)}\0`);
    for (const f of Object.keys(bundles.files).sort()) inputs.update(`${f}\0${await sha256File(bundles.files[f] ?? "")}\0`);
    await hashTree(path.join(o.repoRoot, "image-builder"), inputs);
    for (const u of ["fleet.service", "fleet.socket"]) {
      const p = path.join(o.repoRoot, "fleetd/systemd", u);
      inputs.update(`${u}\0${await sha256File(p).catch(() => "absent")}\0`);
    }
    const inputsKey = inputs.digest("hex").slice(0, 24);
    const previous = await readManifest(out);
    if (!o.force && previous?.inputsKey === inputsKey) {
      o.log(`image-builder: ${out} is up to date (inputs ${inputsKey}); use --force to rebuild`);
      return { manifest: previous, skipped: true, seconds: (Date.now() - started) / 1000 };
    }

    const stage = await packageStage(o, profile, sources, suite, stageKey, epoch, tmp);
    const root = path.join(tmp, "root");
    await step(o.log, "extract package tree", async () => {
      await mkdir(root);
      await run("tar", ["--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", root, "-xpf", path.join(stage.dir, "rootfs.tar")], sig);
    }, () => `${stage.packages.length} packages`);

    const initramfs = path.join(tmp, "initramfs.img");
    await step(o.log, "initramfs (busybox + disk modules)", () => buildInitramfs({
      busybox: path.join(stage.dir, "busybox"), init: bootInit(), modulesDir: path.join(root, "usr/lib/modules", stage.kernelVersion),
      modules: profile.initramfsModules, out: initramfs, epoch, ...sig,
    }), (r) => `${r.modules.length} modules`);

    await step(o.log, "customize (overlay, users, services, bundles)", () => customizeRootfs({
      root, overlayDir: path.join(o.repoRoot, "image-builder/overlay"), fleetUnitsDir: path.join(o.repoRoot, "fleetd/systemd"),
      bundles: bundles.files, epoch, ...sig,
    }), () => "fleet units from fleetd/systemd");
    await step(o.log, "node start-up snapshot and code caches (the image's node)", () => writeStartupFiles(root, CODE_CACHED_BUNDLES, o.signal),
      (f) => `snapshot ${mib(f.snapshotBytes)}; ${Object.entries(f.caches).map(([n, b]) => `${n} ${mib(b)}`).join(", ")}`);
    const warnings = [...bundles.warnings];

    const containers: Manifest["containers"] = [];
    for (const c of profile.containers) {
      const archive = path.join(tmp, `${c.name}.oci.tar`);
      const built = await step(o.log, `container image ${c.name}`, () => buildContainerImage(c, { sources, suite, debCache: debCacheDir(env), epoch, out: archive, ...sig }),
        (r) => `${r.ref}, ${mib(r.bytes)}`);
      containers.push(built);
      if (c.preload === true) await step(o.log, `preload ${built.ref} into the image's podman storage`, () => preloadIntoRootfs(archive, root, o.signal));
    }

    const usrDir = path.join(tmp, "usr");
    await rename(path.join(root, "usr"), usrDir);
    await mkdir(path.join(root, "usr"));
    const usrBytes = await du(usrDir);
    const usrImg = path.join(tmp, "usr.squashfs");
    await step(o.log, "/usr file system (squashfs)", () => makeSquashfs(usrDir, usrImg, { epoch, options: profile.usrCompression, ...sig }),
      () => `${mib(usrBytes)} of files`);
    const stateBytes = await du(root);
    const stateMiB = Math.max(profile.stateSizeMiB, Math.ceil((stateBytes * 1.3) / 1048576) + 64);
    const stateImg = path.join(tmp, "state.ext4");
    await step(o.log, "state file system (ext4: /etc, /var, /home)", () => makeExt4(root, stateImg, {
      sizeMiB: stateMiB, label: "corefleet-state", uuid: "c0eef1e7-0000-4000-8000-0000000000e4", epoch, ...sig,
    }), () => `${mib(stateBytes)} of files in ${stateMiB} MiB`);

    const art = path.join(tmp, "out");
    await mkdir(art);
    await writeFile(path.join(art, "cmdline.txt"), `${profile.cmdline}\n`);
    await copyFile(path.join(stage.dir, "vmlinuz"), path.join(art, "vmlinuz"));
    await copyFile(initramfs, path.join(art, "initramfs.img"));
    const uki = path.join(tmp, "BOOTX64.EFI");
    const espImg = path.join(tmp, "esp.vfat");
    await step(o.log, "UEFI boot (unified kernel image on the ESP)", async () => {
      await writeFile(path.join(tmp, "cmdline.uki"), profile.cmdline);
      await buildUki({ stub: path.join(stage.dir, "linuxx64.efi.stub"), kernel: path.join(stage.dir, "vmlinuz"), initrd: initramfs,
        cmdlineFile: path.join(tmp, "cmdline.uki"), osRelease: path.join(usrDir, "lib/os-release"), out: uki, ...sig });
      await makeEsp(uki, espImg, { sizeMiB: profile.espSizeMiB, epoch, ...sig });
    }, () => `EFI/BOOT/BOOTX64.EFI in a ${profile.espSizeMiB} MiB ESP`);
    const table = await step(o.log, "GPT disk (raw)", () => assembleDisk(path.join(art, "disk.raw"), { esp: espImg, usr: usrImg, state: stateImg }, o.signal),
      () => "esp, corefleet-usr, corefleet-state");
    o.log(table.trim().split("\n").slice(-4).map((l) => `    ${l}`).join("\n"));
    await step(o.log, "qcow2 (compressed)", () => makeQcow2(path.join(art, "disk.raw"), path.join(art, "disk.qcow2"), o.signal));

    const artefacts: Manifest["artefacts"] = {};
    for (const f of ["disk.raw", "disk.qcow2", "vmlinuz", "initramfs.img", "cmdline.txt"]) {
      const p = path.join(art, f);
      artefacts[f] = { bytes: (await stat(p)).size, sha256: await sha256File(p) };
    }
    const manifest: Manifest = {
      profile: profile.name, inputsKey, stageKey, sourceDateEpoch: epoch, suite, kernelVersion: stage.kernelVersion,
      packages: stage.packages, containers, warnings, artefacts, usrBytes,
    };
    await writeFile(path.join(art, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);

    // Swap in the new image: the old one is removed only after the new one is in place.
    const old = `${out}.old-${process.pid}`;
    const hadOld = await access(out).then(() => true, () => false);
    if (hadOld) await rename(out, old);
    await rename(art, out);
    if (hadOld) await rm(old, { recursive: true, force: true });

    const seconds = (Date.now() - started) / 1000;
    o.log(`image-builder: done in ${seconds.toFixed(1)} s -> ${out}`);
    for (const [f, a] of Object.entries(artefacts)) o.log(`    ${f.padEnd(14)} ${mib(a.bytes).padStart(11)}  sha256 ${a.sha256.slice(0, 16)}`);
    o.log(`    /usr ${mib(usrBytes)} uncompressed, ${manifest.packages.length} packages: ${manifest.packages.map((p) => p.name).join(" ")}`);
    for (const w of warnings) o.log(`    warning: ${w}`);
    return { manifest, skipped: false, seconds };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
