import { describe, expect, it } from "vitest";
import type { UnitOption } from "../api/types";
import { parseMultiValue, parseRequirements, validateRequirements } from "./requirements";
import { parseUnitFile } from "./unit-file";
import { UnitValidationError } from "./errors";

function xfleet(body: string): UnitOption[] {
  return parseUnitFile(`[Service]\nExecStart=/bin/true\n\n[X-Fleet]\n${body}`);
}

function req(body: string, name = "web@1.service") {
  return parseRequirements(name, xfleet(body)).requirements;
}

describe("parseMultiValue", () => {
  it.each([
    ['"a=b" "c=d"', ["a=b", "c=d"]],
    ['"a=b"   "c d=e"', ["a=b", "c d=e"]],
    ['"single"', ["single"]],
    ['a=b "c=d"', ['a=b "c=d"']],
    ['"a=b" c=d', ['"a=b" c=d']],
    ["plain value", ["plain value"]],
    ['"', ['"']],
  ])("%s → %j", (value, expected) => {
    expect(parseMultiValue(value)).toEqual(expected);
  });
});

describe("parseRequirements", () => {
  it("reads nothing from a unit without [X-Fleet]", () => {
    const parsed = parseRequirements("a.service", parseUnitFile("[Service]\nExecStart=/bin/true\n"));
    expect(parsed.warnings).toEqual([]);
    expect(parsed.requirements).toEqual({ machineId: undefined, machineOf: [], machineMetadata: new Map(), conflicts: [], global: false, replaces: [], cpus: 0, memory: 0, spread: [] });
  });

  it("takes the first MachineID from MachineID and X-ConditionMachineID, the boot ID only as fallback", () => {
    expect(req("MachineID=abc\nMachineID=def\n").machineId).toBe("abc");
    expect(req("X-ConditionMachineID=abc\n").machineId).toBe("abc");
    expect(req("X-ConditionMachineBootID=boot\nMachineID=abc\n").machineId).toBe("abc");
    expect(req("X-ConditionMachineBootID=boot\n").machineId).toBe("boot");
  });

  it("reads MachineOf and its alias without splitting", () => {
    expect(req("MachineOf=db.service\nX-ConditionMachineOf=cache.service\n").machineOf).toEqual(["db.service", "cache.service"]);
    expect(req("MachineOf=a.service b.service\n").machineOf).toEqual(["a.service b.service"]);
  });

  it("groups MachineMetadata by key: OR within a key, across lines and quoted items", () => {
    const r = req('MachineMetadata="region=us-east-1" "diskType=SSD"\nMachineMetadata=region=us-west-1\nX-ConditionMachineMetadata=role=web\n');
    expect([...r.machineMetadata]).toEqual([
      ["region", ["us-east-1", "us-west-1"]],
      ["diskType", ["SSD"]],
      ["role", ["web"]],
    ]);
  });

  it("ignores metadata items without exactly one '=' or with an empty side", () => {
    const r = req('MachineMetadata="a=b=c" "=x" "y=" "noequals" "ok=1"\n');
    expect([...r.machineMetadata]).toEqual([["ok", ["1"]]]);
  });

  it("splits Conflicts on whitespace, over several lines and the X-Conflicts alias", () => {
    expect(req("Conflicts=a*.service b.service\nConflicts=c.service\nX-Conflicts=d.service\n").conflicts).toEqual([
      "a*.service", "b.service", "c.service", "d.service",
    ]);
    expect(req('Conflicts="a.service" "b.service c.service"\n').conflicts).toEqual(["a.service", "b.service", "c.service"]);
  });

  it.each([
    ["true", true], ["TRUE", true], ["yes", true], ["Yes", true], ["1", true], ["on", true], ["t", true], ["T", true],
    ["false", false], ["no", false], ["0", false], ["y", false], ["", false], ["enabled", false],
  ])("Global=%s → %s", (value, expected) => {
    expect(req(`Global=${value}\n`).global).toBe(expected);
  });

  it("lets the last Global win", () => {
    expect(req("Global=true\nGlobal=false\n").global).toBe(false);
    expect(req("Global=false\nGlobal=yes\n").global).toBe(true);
  });

  it("reads Replaces without splitting", () => {
    expect(req("Replaces=old@*.service\nReplaces=legacy.service\n").replaces).toEqual(["old@*.service", "legacy.service"]);
  });

  it("substitutes %n %N %p %i from the unit's name before use", () => {
    const r = req("MachineOf=%p-data@%i.service\nConflicts=%p@*.service\nMachineMetadata=instance=%i\nReplaces=%N-old.service\nMachineID=%n\n", "web@7.service");
    expect(r.machineOf).toEqual(["web-data@7.service"]);
    expect(r.conflicts).toEqual(["web@*.service"]);
    expect([...r.machineMetadata]).toEqual([["instance", ["7"]]]);
    expect(r.replaces).toEqual(["web@7-old.service"]);
    expect(r.machineId).toBe("web@7.service");
  });

  it("warns about unknown keys instead of failing", () => {
    const parsed = parseRequirements("a.service", xfleet("Bogus=1\nMachineOf=b.service\nX-Whatever=2\n"));
    expect(parsed.warnings).toEqual([
      "unrecognized requirement in [X-Fleet] section: Bogus",
      "unrecognized requirement in [X-Fleet] section: X-Whatever",
    ]);
    expect(parsed.requirements.machineOf).toEqual(["b.service"]);
  });

  it("ignores other sections", () => {
    expect(parseRequirements("a.service", parseUnitFile("[Unit]\nConflicts=b.service\n")).requirements.conflicts).toEqual([]);
  });
});

describe("validateRequirements (fleet's messages, fleet's order)", () => {
  it.each([
    ["MachineID=m1\nGlobal=true\n", "MachineID cannot be used with Global"],
    ["MachineID=m1\nMachineOf=a.service\n", "MachineID cannot be used with Peers"],
    ["MachineID=m1\nConflicts=a.service\n", "MachineID cannot be used with Conflicts"],
    ["MachineID=m1\nReplaces=a.service\n", "MachineID cannot be used with Replaces"],
    ["Global=true\nMachineOf=a.service\n", "Global cannot be used with Peers"],
    ["Global=true\nReplaces=a.service\n", "Global cannot be used with Replaces"],
    ["Conflicts=a.service\nReplaces=b.service\n", "Conflicts cannot be used with Replaces"],
    ["MachineOf=db.service\nConflicts=d*.service\n", 'unresolvable requirements: peer "db.service" matches conflict "d*.service"'],
    ["MachineOf=db.service\nReplaces=db.service\n", 'unresolvable requirements: peer "db.service" matches replace "db.service"'],
  ])("%j → %s", (body, reason) => {
    const err = validateRequirements("x.service", req(body, "x.service"));
    expect(err).toBeInstanceOf(UnitValidationError);
    expect(err?.reason).toBe(reason);
    expect(err?.message).toBe(`Invalid unit "x.service": ${reason}; change its [X-Fleet] section or options and submit it again`);
  });

  it.each([
    "", "MachineID=m1\nMachineMetadata=a=b\n", "Global=true\nMachineMetadata=a=b\nConflicts=x.service\n",
    "MachineOf=a.service\nConflicts=b.service\n", "Replaces=a.service\nMachineMetadata=r=1\n",
  ])("accepts %j", (body) => {
    expect(validateRequirements("x.service", req(body, "x.service"))).toBeUndefined();
  });
});
