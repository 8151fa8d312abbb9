import { describe, expect, it } from "vitest";
import { compileGlob } from "../../lib/unit/index";
import { ConflictHosts } from "./conflict-hosts";

describe("ConflictHosts", () => {
  const web = [compileGlob("web@*.service")];

  it("tracks which machines host a unit matching each wildcard pattern", () => {
    const hosts = new ConflictHosts();
    hosts.addUser("web@*.service", () => [["m1", "web@1.service"], ["m2", "db.service"]]);
    expect(hosts.coverAll(web, 2)).toBe(false);
    hosts.attached("m2", "web@2.service");
    expect(hosts.coverAll(web, 2)).toBe(true);
    hosts.attached("m2", "web@3.service");
    hosts.detached("m2", "web@2.service");
    expect(hosts.coverAll(web, 2)).toBe(true); // web@3 still there
    hosts.detached("m2", "web@3.service");
    expect(hosts.coverAll(web, 2)).toBe(false);
  });

  it("unions several patterns and declines unindexed or literal ones", () => {
    const hosts = new ConflictHosts();
    hosts.addUser("a*.service", () => [["m1", "a1.service"]]);
    hosts.addUser("b*.service", () => [["m2", "b1.service"]]);
    hosts.addUser("c.service", () => [["m3", "c.service"]]);
    expect(hosts.coverAll([compileGlob("a*.service"), compileGlob("b*.service")], 2)).toBe(true);
    expect(hosts.coverAll([compileGlob("a*.service"), compileGlob("b*.service")], 3)).toBe(false);
    expect(hosts.coverAll([compileGlob("c.service")], 1)).toBe(false);
    expect(hosts.coverAll([compileGlob("z*.service")], 1)).toBe(false);
    expect(hosts.coverAll([], 0)).toBe(false);
  });

  it("forgets a pattern when its last user leaves", () => {
    const hosts = new ConflictHosts();
    hosts.addUser("web@*.service", () => [["m1", "web@1.service"]]);
    hosts.addUser("web@*.service", () => []);
    hosts.removeUser("web@*.service");
    expect(hosts.coverAll(web, 1)).toBe(true);
    hosts.removeUser("web@*.service");
    expect(hosts.coverAll(web, 1)).toBe(false);
  });

  it("indexes at most 64 distinct patterns", () => {
    const hosts = new ConflictHosts();
    for (let i = 0; i < 70; i++) hosts.addUser(`p${i}*.service`, () => [["m1", `p${i}x.service`]]);
    expect(hosts.coverAll([compileGlob("p63*.service")], 1)).toBe(true);
    expect(hosts.coverAll([compileGlob("p64*.service")], 1)).toBe(false);
  });
});
