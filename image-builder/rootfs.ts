/**
 * Installs the profile's packages into a directory with mmdebstrap (as root), from the host's apt
 * configuration, sharing one .deb download cache between builds (sync-in before, sync-out after), and
 * turns mmdebstrap's failures into errors that say what to do.
 */
import { mkdir } from "node:fs/promises";
import { run, ProcessError } from "../lib/process/run";
import type { AptSources } from "./apt-sources";

export interface RootfsOptions {
  target: string;
  packages: readonly string[];
  sources: AptSources;
  suite: string;
  debCache: string;
  epoch: number;
  /** Receives mmdebstrap's output lines (for the build log). */
  onOutput?: (chunk: string) => void;
  signal?: AbortSignal;
}

/** Paths dpkg never writes (saves unpacking time; trimmed anyway). */
const DPKG_EXCLUDES = ["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*", "/usr/share/lintian/*"];

/** The mmdebstrap arguments for a build (exported for tests). */
export function mmdebstrapArgs(o: RootfsOptions): string[] {
  const args = ["--mode=root", "--variant=required", `--include=${[...o.packages].sort().join(",")}`,
    `--components=${o.sources.components.join(",") || "main"}`, "--skip=essential/unlink",
    "--aptopt=Acquire::Retries \"2\"",
    "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/",
    `--setup-hook=sync-in ${o.debCache} /var/cache/apt/archives/`,
    `--customize-hook=sync-out /var/cache/apt/archives ${o.debCache}`];
  for (const p of DPKG_EXCLUDES) args.push(`--dpkgopt=path-exclude=${p}`);
  args.push("--dpkgopt=path-include=/usr/share/doc/*/copyright");
  args.push(o.suite, o.target, ...o.sources.files);
  return args;
}

/** Translates mmdebstrap's stderr into a reason and an action, or undefined if unrecognised. */
export function explainMmdebstrapFailure(stderr: string): string | undefined {
  const unknown = [...stderr.matchAll(/Unable to locate package (\S+)|Package '([^']+)' has no installation candidate|E: Package '([^']+)'/g)]
    .map((m) => m[1] ?? m[2] ?? m[3]).filter((x): x is string => x !== undefined);
  if (unknown.length > 0) {
    return `package${unknown.length > 1 ? "s" : ""} ${[...new Set(unknown)].map((p) => `"${p}"`).join(", ")} ${unknown.length > 1 ? "are" : "is"} not in the archive of the host's apt configuration; fix the profile's package list`;
  }
  if (/Could not resolve|Temporary failure resolving|Failed to fetch|Unable to connect|Connection timed out|Could not connect|Network is unreachable/.test(stderr)) {
    return "the Debian archive named by the host's apt configuration (/etc/apt/sources.list, /etc/apt/sources.list.d) is unreachable; check the network or the apt proxy settings, or build offline once the .deb cache is complete";
  }
  if (/Unable to correct problems|unmet dependencies|held broken packages/.test(stderr)) {
    return "apt cannot satisfy the packages' dependencies; check the package list for conflicts";
  }
  if (/root|Operation not permitted|EPERM/.test(stderr) && /mode/.test(stderr)) {
    return "mmdebstrap needs root for --mode=root; run the build as root";
  }
  return undefined;
}

/** Runs mmdebstrap; throws an error naming the reason (with the stderr tail as cause). */
export async function installRootfs(o: RootfsOptions): Promise<void> {
  await mkdir(o.debCache, { recursive: true });
  try {
    await run("mmdebstrap", mmdebstrapArgs(o), {
      env: { ...process.env, SOURCE_DATE_EPOCH: String(o.epoch), LC_ALL: "C.UTF-8", INITRD: "No" },
      captureStdout: false,
      ...(o.onOutput ? { onStdout: o.onOutput, onStderr: o.onOutput } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
  } catch (err) {
    if (!(err instanceof ProcessError)) throw err;
    const why = explainMmdebstrapFailure(err.result.stderr) ?? "see the build log for mmdebstrap's output";
    throw new Error(`Cannot install the image's packages with mmdebstrap: ${why}`, { cause: err });
  }
}
