import { describe, expect, it } from "vitest";
import { mergeMetadata } from "./etcd-registry";
import { Keys, prefixEnd } from "./keys";

describe("registry keys", () => {
  it("lays keys out under the prefix, with a trailing slash added", () => {
    const k = new Keys("/fleet");
    expect(k.machine("abc")).toBe("/fleet/machines/abc");
    expect(k.schedule("m1")).toBe("/fleet/schedule/m1/");
    expect(k.schedule("m1", "web@1.service")).toBe("/fleet/schedule/m1/web@1.service");
    expect(k.state("web.service", "m1")).toBe("/fleet/state/web.service/m1");
    expect(k.leader).toBe("/fleet/engine/leader");
    expect(Keys.split2("m1/key")).toEqual(["m1", "key"]);
    expect(Keys.split2("m1/")).toBeUndefined();
  });

  it("computes etcd's prefix range end", () => {
    expect(prefixEnd("/a/").toString()).toBe("/a0");
    expect([...prefixEnd("a\xff")]).toEqual([0x61, 0xc3, 0xc0]);
  });

  it("merges metadata as fleet did: dynamic wins, an empty dynamic value hides the static one", () => {
    expect(mergeMetadata({ a: "1", b: "2" }, { b: "3", a: "", c: "4" })).toEqual({ b: "3", c: "4" });
    expect(mergeMetadata({ a: "1" }, undefined)).toEqual({ a: "1" });
  });
});
