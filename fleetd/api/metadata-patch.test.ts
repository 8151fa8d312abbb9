import { describe, expect, it } from "vitest";
import { MAX_METADATA_VALUE_BYTES, parseMetadataPatch } from "./metadata-patch";

describe("PATCH /machines validation", () => {
  it("turns add/replace/remove into ordered changes", () => {
    expect(
      parseMetadataPatch([
        { op: "add", path: "/m1/metadata/role", value: { value: "web" } },
        { OP: "replace", Path: "/m1/metadata/zone.a", Value: { Value: "x" } },
        { op: "remove", path: "/m2/metadata/role" },
      ]),
    ).toEqual([
      { machineID: "m1", key: "role", value: "web" },
      { machineID: "m1", key: "zone.a", value: "x" },
      { machineID: "m2", key: "role", value: null },
    ]);
  });

  it("uses fleet's messages", () => {
    expect(() => parseMetadataPatch([{ op: "move", path: "/m/metadata/k" }])).toThrow("invalid op: expect add, remove, or replace");
    expect(() => parseMetadataPatch([{ op: "add", path: "/m/meta/k", value: { value: "v" } }])).toThrow("machine metadata path invalid");
    expect(() => parseMetadataPatch([{ op: "add", path: "/m/metadata/k k", value: { value: "v" } }])).toThrow("machine metadata path invalid");
    expect(() => parseMetadataPatch([{ op: "add", path: "/m/metadata/k" }])).toThrow("invalid value: add and replace require a value");
    // fleet's server expects the value wrapped in an object; a bare string is no value.
    expect(() => parseMetadataPatch([{ op: "replace", path: "/m/metadata/k", value: "v" }])).toThrow("invalid value: add and replace require a value");
  });

  it("refuses a value larger than etcd's requests allow, naming its size and the limit", () => {
    const patch = (n: number) => [{ op: "add", path: "/m1/metadata/blob", value: { value: "x".repeat(n) } }];
    expect(parseMetadataPatch(patch(MAX_METADATA_VALUE_BYTES))[0]!.value).toHaveLength(MAX_METADATA_VALUE_BYTES);
    expect(() => parseMetadataPatch(patch(MAX_METADATA_VALUE_BYTES + 1))).toThrow(`invalid value: ${MAX_METADATA_VALUE_BYTES + 1} bytes for metadata blob of machine m1; at most 65536`);
  });

  it("validates every operation before returning any", () => {
    expect(() =>
      parseMetadataPatch([
        { op: "add", path: "/m/metadata/a", value: { value: "1" } },
        { op: "bad", path: "/m/metadata/b" },
      ]),
    ).toThrow("invalid op");
  });
});
