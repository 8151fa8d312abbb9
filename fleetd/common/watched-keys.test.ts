import { describe, expect, it } from "vitest";
import { Keys } from "../registry/keys";
import { applyMetadataChange, clusterKey, snapshotPuts, type DynamicMetadata } from "./watched-keys";

const keys = new Keys("/p/");
const M = "4f1d2c3b5a6978800112233445566771";

describe("clusterKey", () => {
  it("reads every kind of key with the names in its path", () => {
    expect(clusterKey(keys, keys.machine(M))).toEqual({ kind: "machine", id: M });
    expect(clusterKey(keys, keys.metadata(M, "role"))).toEqual({ kind: "metadata", id: M, key: "role" });
    expect(clusterKey(keys, keys.unit("web@1.service"))).toEqual({ kind: "unit", name: "web@1.service" });
    expect(clusterKey(keys, keys.placement("web@1.service"))).toEqual({ kind: "placement", name: "web@1.service" });
    expect(clusterKey(keys, keys.schedule(M, "web@1.service"))).toEqual({ kind: "schedule", machine: M, name: "web@1.service" });
    expect(clusterKey(keys, keys.state("web@1.service", M))).toEqual({ kind: "state", name: "web@1.service", machine: M });
    expect(clusterKey(keys, keys.unscheduled("web@1.service"))).toEqual({ kind: "unscheduled", name: "web@1.service" });
  });

  it("passes over other keys, other prefixes and two-part keys missing a part", () => {
    expect(clusterKey(keys, keys.body("abc"))).toBeUndefined();
    expect(clusterKey(keys, keys.leader)).toBeUndefined();
    expect(clusterKey(keys, "/q/machines/x")).toBeUndefined();
    expect(clusterKey(keys, keys.metadata(M))).toBeUndefined();
    expect(clusterKey(keys, `${keys.metadataAll}role`)).toBeUndefined();
    expect(clusterKey(keys, keys.state("web@1.service"))).toBeUndefined();
    expect(clusterKey(keys, `${keys.scheduleAll}/web@1.service`)).toBeUndefined();
  });
});

describe("applyMetadataChange", () => {
  it("sets and deletes one machine's keys and records the machine as touched", () => {
    const metadata: DynamicMetadata = new Map();
    const touched = { machines: new Set<string>() };
    const change = (type: "put" | "delete", key: string, value = ""): void =>
      applyMetadataChange(metadata, { id: M, key }, { type, key: keys.metadata(M, key), value: Buffer.from(value), modRevision: 1 }, touched);
    change("put", "role", "web");
    change("put", "zone", "eu");
    change("delete", "zone");
    expect(metadata.get(M)).toEqual({ role: "web" });
    expect([...touched.machines]).toEqual([M]);
  });
});

describe("snapshotPuts", () => {
  it("turns each listed key of each prefix into a put, in order", () => {
    const kv = (key: string, modRevision: number) => ({ key, value: Buffer.from("v"), modRevision, createRevision: 1, lease: "0" });
    const puts = [...snapshotPuts([[kv("a", 2), kv("b", 3)], [], [kv("c", 4)]])];
    expect(puts.map((c) => [c.type, c.key, c.modRevision, c.value.toString()])).toEqual([
      ["put", "a", 2, "v"],
      ["put", "b", 3, "v"],
      ["put", "c", 4, "v"],
    ]);
  });
});
