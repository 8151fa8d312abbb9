// The KVM probe's decision from what the guest's console shows, each outcome forced by a stand-in
// QEMU (a script that prints a kernel panic, prints nothing, or fails) and a stand-in KVM device (a
// readable, writable file), so each case asserts one definite result on any host.
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeAccelerator } from "../../qemu/kvm-probe";

let dir = "";
let device = "";
let kernel = "";
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "corefleet-kvm-probe-"));
  device = path.join(dir, "kvm");
  kernel = path.join(dir, "vmlinuz");
  await writeFile(device, "");
  await writeFile(kernel, "");
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function qemu(name: string, script: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, `#!/bin/sh\n${script}\n`);
  await chmod(file, 0o755);
  return file;
}

describe("probeAccelerator with a stand-in QEMU", () => {
  it("picks KVM when the guest reaches its kernel panic, and stops the guest", async () => {
    const bin = await qemu("panics", 'echo "[    0.4] Kernel panic - not syncing: VFS: Unable to mount root fs"; exec sleep 30');
    const r = await probeAccelerator({ env: {}, kvmDevice: device, kernel, qemuBinary: bin, timeoutMs: 10_000 });
    expect(r.accelerator).toBe("kvm");
    expect(r.reason).toMatch(/^a KVM guest booted a kernel in \d+ ms$/);
    expect(r.notice).toBeUndefined();
  });

  it("picks TCG naming the timeout and the last console line when the guest hangs", async () => {
    const bin = await qemu("hangs", 'echo "Booting the kernel."; exec sleep 30');
    const r = await probeAccelerator({ env: {}, kvmDevice: device, kernel, qemuBinary: bin, timeoutMs: 1500 });
    expect(r).toEqual({
      accelerator: "tcg",
      reason: 'a KVM guest did not boot a kernel within 1500 ms (last console output: "Booting the kernel.")',
      notice: 'notice: using TCG software emulation (slow) because a KVM guest did not boot a kernel within 1500 ms (last console output: "Booting the kernel.")',
    });
  });

  it("picks TCG naming QEMU's failure when QEMU cannot start the guest", async () => {
    const bin = await qemu("fails", 'echo "qemu-system-x86_64: failed to initialize kvm: Permission denied" >&2; exit 1');
    const r = await probeAccelerator({ env: {}, kvmDevice: device, kernel, qemuBinary: bin, timeoutMs: 10_000 });
    expect(r.accelerator).toBe("tcg");
    expect(r.reason).toMatch(/^the KVM probe guest failed: /);
  });

  it("refuses a kernel that does not exist", async () => {
    await expect(probeAccelerator({ env: {}, kvmDevice: device, kernel: path.join(dir, "none"), qemuBinary: "/bin/false" })).rejects.toThrow(
      `Cannot probe KVM with kernel "${path.join(dir, "none")}": it does not exist or is not readable`,
    );
  });
});
