import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { clusterPaths, clustersRoot, imageInputsKey, machineBase, parseMetadataFlag, staleClusterReason, validateClusterName } from "./cluster-layout";

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

describe("which image a cluster runs", () => {
  it("reads the image's inputs key from its manifest, and nothing from a folder without one", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "image-key-"));
    try {
      expect(await imageInputsKey(dir)).toBeUndefined();
      await writeFile(path.join(dir, "manifest.json"), JSON.stringify({ profile: "corefleet", inputsKey: "abc123" }));
      expect(await imageInputsKey(dir)).toBe("abc123");
      await writeFile(path.join(dir, "manifest.json"), "{");
      expect(await imageInputsKey(dir)).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("reuses a cluster only on the image it was created from", () => {
    const spec = { imageDir: "/repo/build/image", imageInputsKey: "k1" };
    expect(staleClusterReason(spec, "/repo/build/image", "k1")).toBeUndefined();
    expect(staleClusterReason(spec, "/repo/build/image", "k2")).toBe("it runs an older image (k1; now k2)");
    expect(staleClusterReason({ imageDir: "/repo/build/image" }, "/repo/build/image", "k2")).toBe("it runs an older image (unrecorded; now k2)");
    expect(staleClusterReason(spec, "/other/image", "k1")).toBe("it runs the image in /repo/build/image, not /other/image");
    // An image without a manifest (built by hand): nothing to compare, the cluster is kept.
    expect(staleClusterReason(spec, "/repo/build/image", undefined)).toBeUndefined();
  });
});
