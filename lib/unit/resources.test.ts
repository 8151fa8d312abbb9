import { describe, expect, it } from "vitest";
import { buildUnit, validateUnit } from "./index";
import { parseCpus, parseMemory, parseResources } from "./resources";
import { parseUnitFile } from "./unit-file";

const needs = (text: string): ReturnType<typeof parseResources> => parseResources(parseUnitFile(text));

describe("unit resource needs", () => {
  it("reads CPUQuota as milli-CPUs and MemoryMax/MemoryLimit with systemd's 1024-based suffixes", () => {
    expect(parseCpus("150%", false)).toBe(1500);
    expect(parseCpus("12.5%", false)).toBe(125);
    expect(parseCpus("1.5", false)).toBeUndefined();
    expect(parseCpus("1.5", true)).toBe(1500);
    expect(parseCpus("250m", true)).toBe(250);
    expect(parseMemory("512M")).toBe(512 * 1024 ** 2);
    expect(parseMemory("1.5G")).toBe(1.5 * 1024 ** 3);
    expect(parseMemory("2T")).toBe(2 * 1024 ** 4);
    expect(parseMemory("4096")).toBe(4096);
    expect(parseMemory("infinity")).toBe(0);
    expect(parseMemory("lots")).toBeUndefined();
    expect(needs("[Service]\nCPUQuota=150%\nMemoryLimit=1G\n")).toEqual({ cpus: 1500, memory: 1024 ** 3, problem: undefined });
    expect(needs("[Service]\nMemoryLimit=1G\nMemoryMax=256M\n").memory).toBe(256 * 1024 ** 2);
  });

  it("lets [X-Fleet] CPUs=/Memory= override the systemd settings; an empty value resets", () => {
    expect(needs("[Service]\nCPUQuota=400%\nMemoryMax=8G\n[X-Fleet]\nCPUs=0.5\nMemory=100M\n")).toEqual({ cpus: 500, memory: 100 * 1024 ** 2, problem: undefined });
    expect(needs("[Service]\nCPUQuota=200%\nCPUQuota=\n").cpus).toBe(0);
  });

  it("counts nothing for a unit without settings (fleet's units schedule as before)", () => {
    expect(needs("[Service]\nExecStart=/bin/true\n")).toEqual({ cpus: 0, memory: 0, problem: undefined });
    expect(buildUnit("a.service", "[Service]\nExecStart=/bin/true\n").requirements).toMatchObject({ cpus: 0, memory: 0, spread: [] });
  });

  it("refuses invalid values at validation with the value, the key and what to give", () => {
    const bad = (text: string): string | undefined => validateUnit(buildUnit("a.service", text))?.reason;
    expect(bad("[Service]\nCPUQuota=fast\n")).toBe('invalid [Service] CPUQuota= value "fast": give a percentage of one CPU, e.g. "150%"');
    expect(bad("[Service]\nMemoryMax=12Q\n")).toMatch(/^invalid \[Service\] MemoryMax= value "12Q": give bytes/);
    expect(bad("[X-Fleet]\nCPUs=two\n")).toMatch(/^invalid \[X-Fleet\] CPUs= value "two"/);
    expect(bad("[X-Fleet]\nMemory=-1G\n")).toMatch(/^invalid \[X-Fleet\] Memory= value "-1G"/);
    expect(bad("[X-Fleet]\nSpread=zone=a\n")).toBe('invalid Spread key "zone=a": give machine metadata keys, e.g. Spread=zone');
    expect(bad("[X-Fleet]\nSpread=zone\nGlobal=true\n")).toBe("Spread cannot be used with Global");
    expect(bad("[Service]\nCPUQuota=50%\nMemoryMax=1G\n[X-Fleet]\nSpread=zone region\n")).toBeUndefined();
    expect(buildUnit("web@1.service", "[X-Fleet]\nSpread=zone region\nSpread=zone\n").requirements.spread).toEqual(["zone", "region"]);
  });
});
