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
