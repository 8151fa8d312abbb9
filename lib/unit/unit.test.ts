import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { buildUnit, MAX_UNIT_TEXT_BYTES, templateActivationProblem, validateUnit } from "./unit";
import { substituteSpecifiers } from "./specifiers";
import { UnitFileParseError, UnitNameError } from "./errors";

const TEXT = "[Unit]\nDescription=web %i\n\n[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nConflicts=web@*.service\n";

describe("buildUnit", () => {
  it("builds name, options, canonical text, hash and requirements from text", () => {
    const unit = buildUnit("web@1.service", TEXT);
    expect(unit.text).toBe(TEXT);
    expect(unit.hash).toBe(createHash("sha1").update(TEXT).digest("hex"));
    expect(unit.options).toHaveLength(3);
    expect(unit.requirements.conflicts).toEqual(["web@*.service"]);
    expect(unit.warnings).toEqual([]);
  });

  it("gives an instance the same hash as its template's body", () => {
    expect(buildUnit("web@1.service", TEXT).hash).toBe(buildUnit("web@.service", TEXT).hash);
    expect(buildUnit("web@1.service", TEXT).hash).toBe(buildUnit("web@2.service", TEXT).hash);
  });

  it("builds the same unit from options as from text", () => {
    const fromText = buildUnit("a.service", TEXT);
    const fromOptions = buildUnit("a.service", fromText.options);
    expect(fromOptions.hash).toBe(fromText.hash);
    expect(fromOptions.text).toBe(fromText.text);
  });

  it("rejects invalid names and unparsable text with typed errors", () => {
    expect(() => buildUnit("foo@{1,3}.service", TEXT)).toThrow(UnitNameError);
    expect(() => buildUnit("a.service", "[Unit]\nbroken\n")).toThrow(UnitFileParseError);
    expect(() => buildUnit("a.service", "[Unit]\nbroken\n")).toThrow('"a.service" line 2');
  });

  it("carries unknown X-Fleet keys as warnings", () => {
    expect(buildUnit("a.service", "[X-Fleet]\nMachineIDD=x\n").warnings).toEqual(["unrecognized requirement in [X-Fleet] section: MachineIDD"]);
  });
});

describe("validateUnit", () => {
  it("accepts a well-formed unit", () => {
    expect(validateUnit(buildUnit("a.service", TEXT))).toBeUndefined();
  });

  it("returns requirement conflicts as typed errors", () => {
    expect(validateUnit(buildUnit("a.service", "[X-Fleet]\nGlobal=true\nMachineID=abc\n"))?.reason).toBe("MachineID cannot be used with Global");
  });

  it("refuses options that do not survive a round trip", () => {
    const withNewline = buildUnit("a.service", [{ section: "Service", name: "ExecStart", value: "/bin/a\nInjected=1" }]);
    expect(validateUnit(withNewline)?.reason).toMatch(/round trip/);
    const padded = buildUnit("a.service", [{ section: "Service", name: "ExecStart", value: " /bin/a" }]);
    expect(validateUnit(padded)?.reason).toMatch(/round trip/);
    const long = buildUnit("a.service", [{ section: "Service", name: "ExecStart", value: "x".repeat(3000) }]);
    expect(validateUnit(long)?.reason).toBe("line too long (max 2048 bytes)");
  });

  it("refuses a unit file larger than etcd's requests allow, naming its size and the limit", () => {
    const lines = (n: number) => Array.from({ length: n }, (_, i) => ({ section: "Service", name: "ExecStartPre", value: `/bin/echo ${i} ${"x".repeat(1_000)}` }));
    const big = buildUnit("a.service", lines(600));
    expect(Buffer.byteLength(big.text)).toBeGreaterThan(MAX_UNIT_TEXT_BYTES);
    expect(validateUnit(big)?.reason).toBe(`unit file too large: ${Buffer.byteLength(big.text)} bytes; at most 524288 bytes fit in etcd's requests (split it, or move scripts and data into files the unit reads)`);
    expect(validateUnit(buildUnit("a.service", lines(500)))).toBeUndefined();
  });
});

describe("substituteSpecifiers", () => {
  it.each([
    ["%n", "foo@bar.service", "foo@bar.service"],
    ["%N", "foo@bar.service", "foo@bar"],
    ["%p", "foo@bar.service", "foo"],
    ["%i", "foo@bar.service", "bar"],
    ["%p", "plain.service", "plain"],
    ["%i", "plain.service", ""],
    ["%p-%i.%n", "a@b.socket", "a-b.a@b.socket"],
    ["100%% %u %x", "a@b.service", "100%% %u %x"],
  ])("%s in %s → %s", (value, name, expected) => {
    expect(substituteSpecifiers(value, name)).toBe(expected);
  });
});

describe("templateActivationProblem", () => {
  it("refuses templates with fleet's text", () => {
    expect(templateActivationProblem("web@.service")).toBe('cannot activate template "web@.service"');
    expect(templateActivationProblem("web@1.service")).toBeUndefined();
  });
});
