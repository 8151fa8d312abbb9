import { describe, expect, it } from "vitest";
import { parseMetadataPatch } from "./metadata-patch";

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

  it("validates every operation before returning any", () => {
    expect(() =>
      parseMetadataPatch([
        { op: "add", path: "/m/metadata/a", value: { value: "1" } },
        { op: "bad", path: "/m/metadata/b" },
      ]),
    ).toThrow("invalid op");
  });
});
