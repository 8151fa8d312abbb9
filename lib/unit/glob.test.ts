import { describe, expect, it } from "vitest";
import { compileGlob, globMatch, hasGlobMeta } from "./glob";

describe("globMatch (Go path.Match semantics)", () => {
  it.each([
    ["web@*.service", "web@1.service", true],
    ["web@*.service", "web@.service", true],
    ["web@*.service", "web.service", false],
    ["*", "anything.service", true],
    ["*.service", "a.socket", false],
    ["a?c.service", "abc.service", true],
    ["a?c.service", "ac.service", false],
    ["[abc].service", "b.service", true],
    ["[abc].service", "d.service", false],
    ["[a-c]x.service", "cx.service", true],
    ["[^a-c]x.service", "cx.service", false],
    ["[^a-c]x.service", "dx.service", true],
    ["[!a-c]x.service", "dx.service", true],
    ["[!a-c]x.service", "ax.service", false],
    ["a\\*b", "a*b", true],
    ["a\\*b", "axb", false],
    ["[\\]]", "]", true],
    ["[a\\-z]", "-", true],
    ["[a\\-z]", "b", false],
    ["*", "a/b", false],
    ["a?b", "a/b", false],
    ["x.service", "x.service", true],
    ["x.service", "xxservice", false],
    ["a+b(c).service", "a+b(c).service", true],
    ["db-*.service", "db-1.service", true],
  ])("%s ~ %s → %s", (pattern, name, expected) => {
    expect(globMatch(pattern, name)).toBe(expected);
  });

  it.each(["[", "[]", "[a", "a\\", "[-a]", "[a-]", "[^]"])("treats malformed %j as matching nothing", (pattern) => {
    const glob = compileGlob(pattern);
    expect(glob.valid).toBe(false);
    expect(glob.match(pattern)).toBe(false);
    expect(glob.match("a")).toBe(false);
  });

  it("marks plain names as literals for set lookups", () => {
    expect(compileGlob("foo.service").literal).toBe("foo.service");
    expect(compileGlob("foo*.service").literal).toBeUndefined();
    expect(hasGlobMeta("a[b]")).toBe(true);
    expect(hasGlobMeta("a.b")).toBe(false);
  });

  it("never matches a reversed range but keeps the rest of the class", () => {
    expect(globMatch("[z-ab]", "b")).toBe(true);
    expect(globMatch("[z-ab]", "m")).toBe(false);
  });
});
