import { describe, expect, it } from "vitest";
import { probeAccelerator } from "./kvm-probe";

// Decisions that need a QEMU process (a stand-in QEMU whose console we script): test/integration/kvm-probe.test.ts.
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
});
