import { describe, expect, it } from "vitest";
import { parseImageReference, resolveImageDigest } from "./image-reference";

const D = `sha256:${"ab".repeat(32)}`;

describe("image references", () => {
  it("parses registry, repository, tag and digest", () => {
    expect(parseImageReference("registry.cluster:5000/web:2")).toEqual({ registry: "registry.cluster:5000", host: "registry.cluster", port: 5000, repository: "web", tag: "2" });
    expect(parseImageReference(`registry.cluster:5000/team/web@${D}`)).toEqual({ registry: "registry.cluster:5000", host: "registry.cluster", port: 5000, repository: "team/web", digest: D });
    expect(parseImageReference("localhost/web")).toEqual({ registry: "localhost", host: "localhost", repository: "web" });
  });

  it("does not take a name without a registry host, or a bad repository, for a reference", () => {
    expect(parseImageReference("web:1")).toBeUndefined();
    expect(parseImageReference("library/web:1")).toBeUndefined();
    expect(parseImageReference("registry.cluster:5000/Web:1")).toBeUndefined();
    expect(parseImageReference("/usr/bin/true")).toBeUndefined();
  });

  it("returns a pinned reference as it is and refuses what it cannot ask a registry about", async () => {
    await expect(resolveImageDigest(`registry.cluster:5000/web:2@${D}`)).resolves.toBe(`registry.cluster:5000/web@${D}`);
    await expect(resolveImageDigest("web:2")).rejects.toThrow('Cannot resolve image "web:2" to a digest: it does not name a registry (HOST:PORT/NAME:TAG, e.g. registry.cluster:5000/web:2)');
    await expect(resolveImageDigest("quay.example/web:2")).rejects.toThrow(/only a registry with an explicit port .* pin the digest yourself/);
  });
});
