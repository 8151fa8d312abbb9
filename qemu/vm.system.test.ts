// A real kernel under QEMU (TCG): the system tier.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Vm } from "./vm";
import { buildInitramfs } from "../image-builder/initramfs";
import { buildFloorInitramfs, FLOOR_MARKER } from "../image-builder/floor-initramfs";
import { findKernelForTests } from "../image-builder/testing/kernel";

const kernel = await findKernelForTests();
let dir = "";
const vms: Vm[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "corefleet-vm-test-"));
});
afterAll(async () => {
  for (const vm of vms) await vm.kill();
  await rm(dir, { recursive: true, force: true });
});

describe.skipIf(kernel === undefined)("Vm with a real kernel (TCG)", () => {
  const k = kernel ?? "";

  it("boots the floor initramfs, sees its console marker and notices QEMU exiting", async () => {
    const initrd = path.join(dir, "floor.img");
    await buildFloorInitramfs("/usr/bin/busybox", initrd);
    const vm = await Vm.launch({ name: "floor", workDir: path.join(dir, "floor"), accelerator: "tcg", memoryMiB: 256,
      boot: { kind: "kernel", kernel: k, initrd, cmdline: "console=ttyS0 panic=-1" }, extraArgs: ["-no-reboot"] });
    vms.push(vm);
    const m = await vm.waitForConsole(FLOOR_MARKER, { timeoutMs: 60_000 });
    expect(m.offset).toBeGreaterThan(0);
    expect(await vm.waitForExit({ timeoutMs: 30_000 })).toBe(true);
    const again = await Vm.attach(path.join(dir, "floor"));
    expect(again.pid).toBe(vm.pid);
    expect(again.isRunning()).toBe(false);
  });

  it("stops a guest that ignores the power button by killing it, and reports a console timeout with the tail", async () => {
    const initrd = path.join(dir, "sleeper.img");
    await buildInitramfs({ busybox: "/usr/bin/busybox", epoch: 0, out: initrd,
      init: "#!/bin/busybox sh\necho sleeper-ready\nwhile :; do /bin/busybox sleep 1; done\n" });
    const vm = await Vm.launch({ name: "sleeper", workDir: path.join(dir, "sleeper"), accelerator: "tcg", memoryMiB: 256,
      boot: { kind: "kernel", kernel: k, initrd, cmdline: "console=ttyS0" } });
    vms.push(vm);
    await vm.waitForConsole("sleeper-ready", { timeoutMs: 60_000 });
    await expect(vm.waitForConsole("never printed", { timeoutMs: 500 })).rejects.toThrow(
      /Waiting for \/never printed\/ on the console of VM "sleeper" timed out after 500 ms\. Console tail:\n[\s\S]*sleeper-ready/,
    );
    await expect(Vm.launch({ name: "sleeper", workDir: path.join(dir, "sleeper"), accelerator: "tcg",
      boot: { kind: "kernel", kernel: k } })).rejects.toThrow(`Cannot launch VM "sleeper": it is already running as pid ${vm.pid}`);
    await vm.stop({ timeoutMs: 1_000 });
    expect(vm.isRunning()).toBe(false);
  });

  it("fails to launch with QEMU's own reason when a file is missing", async () => {
    await writeFile(path.join(dir, "empty"), "");
    await expect(Vm.launch({ name: "bad", workDir: path.join(dir, "bad"), accelerator: "tcg",
      boot: { kind: "kernel", kernel: path.join(dir, "no-such-kernel") } })).rejects.toThrow('Cannot launch VM "bad": QEMU refused to start');
  });
});
