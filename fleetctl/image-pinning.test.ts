import { describe, expect, it } from "vitest";
import { needsPinning } from "./image-pinning";

describe("which --set values deploy pins to a digest", () => {
  it("pins image= tags of a HOST:PORT registry only", () => {
    expect(needsPinning("image", "registry.cluster:5000/web:2")).toBe(true);
    expect(needsPinning("image", "registry.cluster:5000/web")).toBe(true);
    expect(needsPinning("image", `registry.cluster:5000/web@sha256:${"0".repeat(64)}`)).toBe(false);
    expect(needsPinning("image", "localhost/app:2")).toBe(false);
    expect(needsPinning("image", "x")).toBe(false);
    expect(needsPinning("IMAGE", "registry.cluster:5000/web:2")).toBe(false);
    expect(needsPinning("tag", "registry.cluster:5000/web:2")).toBe(false);
  });
});
