import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import { durationInRange, parseDuration } from "./duration-option";

describe("duration options", () => {
  it("reads ms, s, m and h, and a bare number as seconds", () => {
    expect(["500ms", "90s", "2m", "1.5h", "120", " 45 "].map(parseDuration)).toEqual([500, 90_000, 120_000, 5_400_000, 120_000, 45_000]);
  });

  it("refuses what is not a positive duration, quoting it", () => {
    for (const bad of ["", "-5s", "5d", "1e3", "s", "1.s"]) {
      expect(() => parseDuration(bad)).toThrow(InvalidArgumentError);
      expect(() => parseDuration(bad)).toThrow(`"${bad}" is not a duration; use e.g. 90s, 2m or 120`);
    }
    // A duration, but none: said as such, not "not a duration".
    for (const zero of ["0", "0s", "0.0m"]) expect(() => parseDuration(zero)).toThrow(`"${zero}" is no time at all; use a positive duration, e.g. 90s, 2m or 120`);
  });

  it("bounds a duration to a range and says it", () => {
    const deadline = durationInRange(1_000, 3_600_000, "1s to 1h");
    expect(deadline("1h")).toBe(3_600_000);
    expect(() => deadline("61m")).toThrow('"61m" is out of range; use from 1s to 1h');
    expect(() => deadline("500ms")).toThrow('"500ms" is out of range; use from 1s to 1h');
  });
});
