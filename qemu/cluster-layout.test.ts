import { describe, expect, it } from "vitest";
import { clusterPaths, clustersRoot, machineBase, parseMetadataFlag, validateClusterName } from "./cluster-layout";

describe("cluster layout", () => {
  it("keeps clusters under XDG_STATE_HOME, else ~/.local/state", () => {
    expect(clustersRoot({ XDG_STATE_HOME: "/s" })).toBe("/s/corefleet/clusters");
    expect(clustersRoot({})).toMatch(/\/\.local\/state\/corefleet\/clusters$/);
    expect(clusterPaths("/s/c", "dev").machine(2).console).toBe("/s/c/dev/machines/2/console.log");
  });

  it("numbers machines from 10.77.0.11 with matching MACs; the first three are etcd members", () => {
    expect(machineBase(1)).toEqual({ index: 1, hostname: "core-1", ip: "10.77.0.11", mac: "52:54:00:4d:00:0b", tap: "tap1", etcdRole: "member" });
    expect(machineBase(4).etcdRole).toBe("proxy");
    expect(() => machineBase(0)).toThrow("Invalid machine index 0: use 1..200");
  });

  it("parses --metadata per machine and names the bad entry", () => {
    expect([...parseMetadataFlag("1:zone=a,role=web;3:zone=b", 3)]).toEqual([
      [1, "zone=a,role=web"],
      [3, "zone=b"],
    ]);
    expect(() => parseMetadataFlag("4:zone=a", 3)).toThrow('Invalid --metadata entry "4:zone=a": machine 4 does not exist in a cluster of 3');
    expect(() => parseMetadataFlag("zone=a", 3)).toThrow('Invalid --metadata entry "zone=a": expected INDEX:key=value[,key=value], e.g. "1:zone=a,role=web"');
  });

  it("refuses cluster names that cannot be folder and namespace names", () => {
    expect(validateClusterName("dev-2")).toBe("dev-2");
    expect(() => validateClusterName("../x")).toThrow('Invalid cluster name "../x"');
  });
});
