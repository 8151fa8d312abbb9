/**
 * Helpers for tests and benchmarks that boot the built image under QEMU: config drives, free
 * loopback ports, the image's direct-boot settings, and SSH into the guest with the real ssh client.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { run, type RunResult } from "../../lib/process/run";
import { retry } from "../../lib/async/retry";
import type { KernelBoot } from "../../qemu/vm";

/** Writes an ISO9660 config drive labelled config-2 holding openstack/latest/user_data. */
export async function makeConfigDrive(userData: string, out: string, signal?: AbortSignal): Promise<void> {
  const tree = await mkdtemp(path.join(os.tmpdir(), "corefleet-cfgdrive-"));
  try {
    await mkdir(path.join(tree, "openstack/latest"), { recursive: true });
    await writeFile(path.join(tree, "openstack/latest/user_data"), userData);
    await run("xorriso", ["-as", "mkisofs", "-quiet", "-V", "config-2", "-J", "-R", "-o", out, tree], signal ? { signal } : {});
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Direct kernel boot of a built image (build/image), with extra kernel arguments appended. */
export async function imageKernelBoot(imageDir: string, extraCmdline = ""): Promise<KernelBoot> {
  const cmdline = (await readFile(path.join(imageDir, "cmdline.txt"), "utf8")).trim();
  return { kind: "kernel", kernel: path.join(imageDir, "vmlinuz"), initrd: path.join(imageDir, "initramfs.img"), cmdline: `${cmdline} ${extraCmdline}`.trim() };
}

/** Generates an ed25519 key pair in `dir`; returns the private key path and the public key line. */
export async function makeSshKey(dir: string): Promise<{ key: string; pub: string }> {
  const key = path.join(dir, "id_ed25519");
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "corefleet-test", "-f", key]);
  return { key, pub: (await readFile(`${key}.pub`, "utf8")).trim() };
}

/** Runs a command as core@127.0.0.1:port over SSH (host key not checked: a throwaway test VM). */
export function ssh(port: number, key: string, command: string, options: { timeoutMs?: number; allowFailure?: boolean; signal?: AbortSignal } = {}): Promise<RunResult> {
  return run("ssh", ["-i", key, "-p", String(port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "core@127.0.0.1", command],
  { timeoutMs: options.timeoutMs ?? 120_000, allowFailure: options.allowFailure ?? false, ...(options.signal ? { signal: options.signal } : {}) });
}

/** Waits until SSH accepts the key (sshd may still be generating its host key). */
export async function waitForSsh(port: number, key: string, signal?: AbortSignal): Promise<void> {
  await retry(() => ssh(port, key, "true", { timeoutMs: 30_000 }), { attempts: 20, initialDelayMs: 1000, maxDelayMs: 5000, ...(signal ? { signal } : {}) });
}
