import { describe, expect, it } from "vitest";
import { qemuArgs } from "./vm";

// Booting a real kernel under QEMU: vm.system.test.ts.
describe("qemuArgs", () => {
  it("passes fw_cfg entries, read-only extra drives and the caller's network arguments through", () => {
    const args = qemuArgs(
      { name: "m1", workDir: "/w", boot: { kind: "kernel", kernel: "/k", cmdline: "console=ttyS0" },
        drives: [{ path: "/cfg.iso" }], fwCfg: [{ name: "opt/corefleet/user-data", file: "/ud" }],
        netArgs: ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"] },
      { consoleLog: "/w/console.log", qmpSocket: "/w/qmp.sock", pidFile: "/w/qemu.pid", overlay: "/w/disk.qcow2" },
      "tcg",
    );
    const joined = args.join(" ");
    expect(joined).toContain("-accel tcg -cpu max");
    expect(joined).toContain("-kernel /k -append console=ttyS0");
    expect(joined).toContain("-drive file=/w/disk.qcow2,format=qcow2,if=virtio");
    expect(joined).toContain("-drive file=/cfg.iso,format=raw,if=virtio,readonly=on");
    expect(joined).toContain("-fw_cfg name=opt/corefleet/user-data,file=/ud");
    expect(joined.endsWith("-netdev user,id=n0 -device virtio-net-pci,netdev=n0")).toBe(true);
  });
});

describe("Vm.find", () => {
  it("finds no VM where none was launched, and calls a corrupt vm.json an error naming the file", async () => {
    const { mkdtemp, rm, writeFile } = await import("node:fs/promises");
    const os = await import("node:os");
    const path = await import("node:path");
    const { Vm } = await import("./vm");
    const dir = await mkdtemp(path.join(os.tmpdir(), "corefleet-vm-find-"));
    try {
      expect(await Vm.find(dir)).toBeUndefined();
      await expect(Vm.attach(dir)).rejects.toThrow(`Cannot attach to the VM in ${dir}: it has no vm.json (it was never launched there)`);
      const file = path.join(dir, "vm.json");
      await writeFile(file, '{"name": "core-1", "pid": 12');
      await expect(Vm.find(dir)).rejects.toThrow(`Cannot read ${file}: it is not valid JSON`);
      await writeFile(file, "[]");
      await expect(Vm.find(dir)).rejects.toThrow(`Cannot read ${file}: it is not a VM record (no name and pid)`);
      await writeFile(file, JSON.stringify({ name: "core-1", pid: 2 ** 22 + 1, workDir: dir, consoleLog: path.join(dir, "console.log") }));
      const vm = await Vm.find(dir);
      expect(vm?.pid).toBe(2 ** 22 + 1);
      expect(await vm?.consoleText()).toBe("");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
