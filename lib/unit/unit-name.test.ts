import { describe, expect, it } from "vitest";
import { assertValidUnitName, instanceOf, isInstance, isTemplate, mangleUnitName, parseUnitName, templateOf, unitNameProblem } from "./unit-name";
import { UnitNameError } from "./errors";

describe("unitNameProblem", () => {
  it.each([
    "foo.service", "foo@.service", "foo@bar.service", "a:b_c-d.e\\f.socket", "x.timer", "x@1.path", "x@y.target",
    "x.mount", "x.automount", "x.device", "x.swap", "x.slice", "x.scope", "x.snapshot", "x.busname", "web@1.2.3.service",
  ])("accepts %s", (name) => {
    expect(unitNameProblem(name)).toBeUndefined();
  });

  it.each([
    ["", "unit name cannot be empty"],
    [`${"a".repeat(249)}.service`, "unit name exceeds maximum length (256)"],
    ["foo", 'unit name must contain "."'],
    ["foo.", 'unit name cannot end in "."'],
    ["foo.bar", "invalid unit type: bar"],
    ["foo.target.service.", 'unit name cannot end in "."'],
    ["foo@1.mount", "invalid unit type for template: mount"],
    ["foo@.device", "invalid unit type for template: device"],
    ["foo@{1,3}.service", "invalid character '{' in unit name"],
    ["foo@{1..3}.service", "invalid character '{' in unit name"],
    ["foo.{1-3}.service", "invalid character '{' in unit name"],
    ["foo bar.service", "invalid character ' ' in unit name"],
    ["foo'.service", "invalid character '\\'' in unit name"],
    ["foo/bar.service", "invalid character '/' in unit name"],
    ["foo\tbar.service", "invalid character '\\t' in unit name"],
    ["@foo.service", 'unit name cannot start in "@"'],
  ])("rejects %j: %s", (name, problem) => {
    expect(unitNameProblem(name)).toBe(problem);
  });

  it("counts the length in bytes", () => {
    expect(unitNameProblem(`${"é".repeat(125)}.service`)).toBe("unit name exceeds maximum length (256)");
    expect(unitNameProblem("é.service")).toBe("invalid character 'é' in unit name");
  });

  it("allows exactly 256 characters", () => {
    expect(unitNameProblem(`${"a".repeat(248)}.service`)).toBeUndefined();
  });

  it("throws a typed error with the reason", () => {
    expect(() => assertValidUnitName("foo.bar")).toThrow(UnitNameError);
    expect(() => assertValidUnitName("foo.bar")).toThrow('Invalid unit name "foo.bar": invalid unit type: bar');
  });
});

describe("templates and instances", () => {
  it("splits names into prefix, instance and suffix", () => {
    expect(parseUnitName("web@1.service")).toEqual({ name: "web@1.service", base: "web@1", prefix: "web", instance: "1", suffix: ".service", hasAt: true });
    expect(parseUnitName("web@.service")).toMatchObject({ prefix: "web", instance: "", hasAt: true });
    expect(parseUnitName("db.socket")).toEqual({ name: "db.socket", base: "db", prefix: "db", instance: "", suffix: ".socket", hasAt: false });
    expect(parseUnitName("a@b.c.service")).toMatchObject({ prefix: "a", instance: "b.c", suffix: ".service" });
  });

  it("tells templates from instances", () => {
    expect(isTemplate("web@.service")).toBe(true);
    expect(isTemplate("web@1.service")).toBe(false);
    expect(isTemplate("web.service")).toBe(false);
    expect(isInstance("web@1.service")).toBe(true);
    expect(isInstance("web@.service")).toBe(false);
    expect(instanceOf("web@1.service")).toBe("1");
    expect(instanceOf("web@.service")).toBeUndefined();
    expect(instanceOf("web.service")).toBeUndefined();
  });

  it("finds the template of an instance", () => {
    expect(templateOf("web@1.service")).toBe("web@.service");
    expect(templateOf("hello@01.socket")).toBe("hello@.socket");
    expect(templateOf("web@.service")).toBeUndefined();
    expect(templateOf("web.service")).toBeUndefined();
  });
});

describe("mangleUnitName (fleetctl)", () => {
  it.each([
    ["foo", "foo.service"],
    ["foo.1", "foo.1.service"],
    ["foo/bar.socket", "bar.socket"],
    ["fixtures/units/hello.service", "hello.service"],
    ["foo.target", "foo.target.service"],
    ["a.timer", "a.timer"],
    ["a.path", "a.path"],
    ["a.device", "a.device"],
    ["a.mount", "a.mount"],
    ["a.automount", "a.automount"],
    ["web@1", "web@1.service"],
    ["/abs/dir/web@.service", "web@.service"],
  ])("%s → %s", (arg, expected) => {
    expect(mangleUnitName(arg)).toBe(expected);
  });
});
