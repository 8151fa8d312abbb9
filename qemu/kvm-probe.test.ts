import { describe, expect, it } from "vitest";
import { probeAccelerator } from "./kvm-probe";
import { findKernelForTests } from "../image-builder/testing/kernel";

describe("probeAccelerator", () => {
  it("honours COREFLEET_ACCEL without starting QEMU", async () => {
    expect(await probeAccelerator({ env: { COREFLEET_ACCEL: "kvm" } })).toEqual({ accelerator: "kvm", reason: "COREFLEET_ACCEL=kvm is set" });
    const tcg = await probeAccelerator({ env: { COREFLEET_ACCEL: "tcg" } });
    expect(tcg.notice).toBe("notice: using TCG software emulation (slow) because COREFLEET_ACCEL=tcg is set");
  });

  it("rejects an unknown COREFLEET_ACCEL value", async () => {
    await expect(probeAccelerator({ env: { COREFLEET_ACCEL: "hvf" } })).rejects.toThrow(
      'Cannot use COREFLEET_ACCEL="hvf": it must be "kvm" or "tcg"; unset it to probe',
    );
  });

  it("falls back to TCG when the KVM device is missing", async () => {
    const r = await probeAccelerator({ env: {}, kvmDevice: "/nonexistent/kvm" });
    expect(r.accelerator).toBe("tcg");
    expect(r.reason).toBe("/nonexistent/kvm is missing or not accessible");
  });

  it("boots a real kernel under KVM and decides from what the console shows", async () => {
    const kernel = await findKernelForTests();
    if (kernel === undefined) return expect.soft(kernel, "no kernel: build the image first").toBeDefined();
    const r = await probeAccelerator({ env: {}, kernel, timeoutMs: 6000 });
    // Either KVM really booted the kernel, or we got TCG with a reason naming the failure.
    if (r.accelerator === "kvm") expect(r.reason).toMatch(/^a KVM guest booted a kernel in \d+ ms$/);
    else expect(r.reason).toMatch(/^(a KVM guest did not boot a kernel within 6000 ms|\/dev\/kvm is missing|the KVM probe guest failed)/);
  });
});
