/**
 * Config drives: an ISO9660 image labelled `config-2` holding `openstack/latest/user_data`, built
 * with xorriso (atomically: temp file, then rename), and read back for tests and `status`.
 */
import { mkdtemp, mkdir, rename, rm, writeFile, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ProcessError, run } from "../lib/process/run";
import { withSignal } from "./with-signal";

const USER_DATA = "openstack/latest/user_data";

/** Attempts at writing a drive when xorriso dies of a signal (it crashed once with SIGSEGV here, not reproducibly). */
const XORRISO_ATTEMPTS = 3;

/**
 * Writes `isoPath` with `userData` as the config drive's user_data. A xorriso killed by a signal is
 * run again (up to 3 times in all, each retry logged to stderr); a xorriso that exits with an error
 * code fails at once, since running it again would fail the same way.
 */
export async function writeConfigDrive(isoPath: string, userData: string, signal?: AbortSignal, options: { xorriso?: string } = {}): Promise<void> {
  const staging = await mkdtemp(path.join(os.tmpdir(), "corefleet-cfgdrive-"));
  try {
    const file = path.join(staging, USER_DATA);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, userData, { mode: 0o600 });
    const tmp = `${isoPath}.tmp`;
    await rm(tmp, { force: true });
    const args = ["-as", "mkisofs", "-quiet", "-V", "config-2", "-J", "-R", "-o", tmp, staging];
    for (let attempt = 1; ; attempt++) {
      await rm(tmp, { force: true });
      const r = await run(options.xorriso ?? "xorriso", args, { ...withSignal(signal), timeoutMs: 60_000, allowFailure: true });
      if (r.exitCode === 0) break;
      if (r.signal === null || attempt >= XORRISO_ATTEMPTS || signal?.aborted) throw new ProcessError(r);
      process.stderr.write(`config drive ${isoPath}: xorriso was killed by ${r.signal} (attempt ${attempt} of ${XORRISO_ATTEMPTS}); running it again\n`);
    }
    await rename(tmp, isoPath);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Reads user_data back out of a config drive (with xorriso; no mount needed). */
export async function readConfigDrive(isoPath: string, signal?: AbortSignal): Promise<{ label: string; userData: string }> {
  const out = await mkdtemp(path.join(os.tmpdir(), "corefleet-cfgdrive-read-"));
  try {
    const target = path.join(out, "user_data");
    await run("xorriso", ["-osirrox", "on", "-indev", isoPath, "-extract", `/${USER_DATA}`, target], { ...withSignal(signal), timeoutMs: 60_000 });
    const pvd = await run("xorriso", ["-indev", isoPath, "-pvd_info"], { ...withSignal(signal), timeoutMs: 60_000 });
    const label = /Volume Id\s*:\s*(\S+)/.exec(pvd.stdout)?.[1] ?? "";
    return { label, userData: await readFile(target, "utf8") };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}
