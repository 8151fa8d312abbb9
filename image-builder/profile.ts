/**
 * The image profile: a short declarative JSON file (image-builder/profiles/*.json) saying which
 * Debian packages go in, what is trimmed and how the disk is laid out. Parsed and validated here,
 * with the bad value quoted in every error.
 */
import { readFile } from "node:fs/promises";

/** An OCI container image built from Debian packages (see `image-builder container`). */
export interface ContainerSpec {
  /** Image name; loaded as `localhost/<name>:latest`. */
  name: string;
  /** Debian packages extracted into the image's single layer (with their dependencies). */
  packages: string[];
  /** The image's Cmd. */
  cmd: string[];
  /** Environment of the image (`KEY=value`). Default none. */
  env?: string[];
  /** Files or folders of the build host copied into a second layer (image directories, image.json). */
  files?: { from: string; to: string }[];
  /** Exposed TCP ports (the config's ExposedPorts). */
  ports?: number[];
  /** Working directory of the command. Default /. */
  workdir?: string;
  /** Load the image into the host image's podman storage so units run offline. Default false. */
  preload?: boolean;
}

export interface Profile {
  name: string;
  description?: string;
  /** Debian suite; default: the first suite of the host's apt configuration. */
  suite?: string;
  /** Packages installed into the image (dependencies follow, recommends do not). */
  packages: string[];
  /** Packages needed only while building (busybox for the initramfs, the EFI stub); removed afterwards. */
  buildOnlyPackages: string[];
  /** Packages whose files are deleted after installation (package manager, perl, ...). Default none. */
  dropPackages: string[];
  /** Paths (relative to the root) deleted after installation. Default none. */
  trimPaths: string[];
  /** Kernel module paths (relative to /usr/lib/modules/<version>) kept in the image; others are deleted. Empty = keep all. */
  keepModules: string[];
  /** Modules put into the initramfs (with dependencies) to find and mount the disk. */
  initramfsModules: string[];
  /** Kernel command line (cmdline.txt and the unified kernel image). */
  cmdline: string;
  /**
   * mksquashfs options for /usr. Default zstd level 17 with 1 MiB blocks: measured on this tree,
   * level 9 gives 83.4 MiB in 3 s, 17 gives 78.0 MiB in 24 s, 18 gives 75.0 MiB in 33 s (a warm
   * rebuild then took 60 s on a slow moment of this host), 19 gives 74.8 MiB in 38 s; xz is smaller
   * (68 MiB) but decompresses several times slower, which a TCG guest pays at every boot.
   */
  usrCompression: string[];
  /** Size of the EFI system partition. Default 48. */
  espSizeMiB: number;
  /** Initial size of the state partition (/etc, /var, /home); it grows to fill the disk on first boot. Default 768. */
  stateSizeMiB: number;
  /** Container images to build (and preload when asked). Default none. */
  containers: ContainerSpec[];
}

const PKG_NAME = /^[a-z0-9][a-z0-9+.-]+$/;

/** Thrown for a profile that cannot be used; the message names the file and the key. */
export class ProfileError extends Error {
  override readonly name = "ProfileError";
}

/** Reads and validates a profile file. */
export async function loadProfile(file: string): Promise<Profile> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ProfileError(`Cannot read profile "${file}": ${(err as NodeJS.ErrnoException).code ?? String(err)}; pass an existing file with --profile`, { cause: err });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ProfileError(`Cannot parse profile "${file}": ${(err as Error).message}; it must be JSON`, { cause: err });
  }
  return parseProfile(data, file);
}

/** Validates profile data (already parsed JSON); `source` names it in errors. */
export function parseProfile(data: unknown, source = "profile"): Profile {
  const fail = (key: string, why: string): never => {
    throw new ProfileError(`Invalid profile "${source}": ${key} ${why}`);
  };
  if (typeof data !== "object" || data === null || Array.isArray(data)) return fail("(top level)", "must be a JSON object");
  const o = data as Record<string, unknown>;
  const known = new Set(["name", "description", "suite", "packages", "buildOnlyPackages", "dropPackages", "trimPaths", "keepModules",
    "initramfsModules", "cmdline", "usrCompression", "espSizeMiB", "stateSizeMiB", "containers"]);
  for (const k of Object.keys(o)) if (!known.has(k)) fail(`"${k}"`, `is not a known key (known: ${[...known].join(", ")})`);

  const str = (key: string, required: boolean): string | undefined => {
    const v = o[key];
    if (v === undefined && !required) return undefined;
    if (typeof v !== "string" || v === "") return fail(`"${key}"`, `must be a non-empty string, got ${JSON.stringify(v)}`);
    return v;
  };
  const strList = (key: string, v: unknown, check?: (s: string) => boolean, what?: string): string[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) return fail(`"${key}"`, `must be a list of strings, got ${JSON.stringify(v)}`);
    return v.map((s, i) => {
      if (typeof s !== "string" || s === "") return fail(`"${key}[${i}]"`, `must be a non-empty string, got ${JSON.stringify(s)}`);
      if (check && !check(s)) return fail(`"${key}[${i}]"`, `"${s}" is not ${what ?? "valid"}`);
      return s;
    });
  };
  const pkgs = (key: string): string[] => strList(key, o[key], (s) => PKG_NAME.test(s), "a Debian package name");
  const relPath = (s: string): boolean => !s.startsWith("/") && !s.split("/").includes("..");
  const size = (key: string, dflt: number, min: number): number => {
    const v = o[key];
    if (v === undefined) return dflt;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) return fail(`"${key}"`, `must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  };

  const name = str("name", true) ?? "";
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) fail(`"name"`, `"${name}" must be lowercase letters, digits and dashes`);
  const packages = pkgs("packages");
  if (packages.length === 0) fail(`"packages"`, "must list at least one package");
  const profile: Profile = {
    name,
    packages,
    buildOnlyPackages: pkgs("buildOnlyPackages"),
    dropPackages: pkgs("dropPackages"),
    trimPaths: strList("trimPaths", o["trimPaths"], relPath, "a relative path inside the image"),
    keepModules: strList("keepModules", o["keepModules"], relPath, "a relative path"),
    initramfsModules: strList("initramfsModules", o["initramfsModules"], (s) => /^[a-z0-9_-]+$/.test(s), "a module name"),
    cmdline: str("cmdline", true) ?? "",
    usrCompression: o["usrCompression"] === undefined ? ["-comp", "zstd", "-Xcompression-level", "17", "-b", "1M"] : strList("usrCompression", o["usrCompression"]),
    espSizeMiB: size("espSizeMiB", 48, 33),
    stateSizeMiB: size("stateSizeMiB", 768, 64),
    containers: parseContainers(o["containers"], fail),
  };
  const description = str("description", false);
  if (description !== undefined) profile.description = description;
  const suite = str("suite", false);
  if (suite !== undefined) profile.suite = suite;
  for (const need of ["busybox-static", "systemd-boot-efi"]) {
    if (![...profile.packages, ...profile.buildOnlyPackages].includes(need)) {
      fail(`"buildOnlyPackages"`, `must include "${need}" (the initramfs and the UEFI boot file are built from it)`);
    }
  }
  if (!profile.packages.some((p) => p.startsWith("linux-image-"))) fail(`"packages"`, "must include a kernel (linux-image-...)");
  return profile;
}

function parseContainers(v: unknown, fail: (key: string, why: string) => never): ContainerSpec[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) return fail(`"containers"`, `must be a list, got ${JSON.stringify(v)}`);
  return v.map((c, i) => {
    const key = `"containers[${i}]`;
    if (typeof c !== "object" || c === null) return fail(`${key}"`, "must be an object");
    const r = c as Record<string, unknown>;
    if (typeof r["name"] !== "string" || !/^[a-z0-9][a-z0-9._-]*$/.test(r["name"])) return fail(`${key}.name"`, `must be a lowercase image name, got ${JSON.stringify(r["name"])}`);
    const list = (k: string, required: boolean): string[] => {
      const x = r[k];
      if (x === undefined && !required) return [];
      if (!Array.isArray(x) || x.length === 0 || x.some((s) => typeof s !== "string")) return fail(`${key}.${k}"`, `must be a non-empty list of strings, got ${JSON.stringify(x)}`);
      return x as string[];
    };
    const spec: ContainerSpec = { name: r["name"], packages: list("packages", true), cmd: list("cmd", true) };
    const env = list("env", false);
    if (env.length > 0) spec.env = env;
    if (r["preload"] !== undefined) {
      if (typeof r["preload"] !== "boolean") return fail(`${key}.preload"`, `must be true or false, got ${JSON.stringify(r["preload"])}`);
      spec.preload = r["preload"];
    }
    return spec;
  });
}
