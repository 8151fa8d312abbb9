import { describe, expect, it } from "vitest";
import { machineBase } from "./cluster-layout";
import { registryMachine, withRegistryMetadata } from "./cluster-registry";

describe("cluster registry placement", () => {
  it("adds registry=true to machine 1's metadata only, keeping what the operator gave", () => {
    expect(withRegistryMetadata(1, "")).toBe("registry=true");
    expect(withRegistryMetadata(1, "zone=a")).toBe("zone=a,registry=true");
    expect(withRegistryMetadata(2, "zone=b")).toBe("zone=b");
  });

  it("finds the registry machine by index", () => {
    const machines = [2, 1, 3].map((i) => ({ ...machineBase(i), machineId: "", metadata: "", sshPort: 0 }));
    expect(registryMachine(machines)?.ip).toBe("10.77.0.11");
    expect(registryMachine(machines.filter((m) => m.index !== 1))).toBeUndefined();
  });
});
