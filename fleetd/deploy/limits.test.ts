import { describe, expect, it } from "vitest";
import { resolveLimit } from "./limits";

describe("resolveLimit (--max-unavailable / --max-surge)", () => {
  it("rounds percentages down for max-unavailable and up for max-surge", () => {
    expect(resolveLimit("max-unavailable", "25%", 10)).toBe(2);
    expect(resolveLimit("max-surge", "25%", 10)).toBe(3);
    expect(resolveLimit("max-unavailable", "25%", 3)).toBe(0);
    expect(resolveLimit("max-unavailable", "100%", 4)).toBe(4);
    expect(resolveLimit("max-unavailable", "1", 3)).toBe(1);
  });

  it("refuses values out of range with what to use instead", () => {
    expect(() => resolveLimit("max-unavailable", "150%", 10)).toThrow('invalid max-unavailable "150%": a percentage must be from 0% to 100%');
    expect(() => resolveLimit("max-unavailable", "11", 10)).toThrow('invalid max-unavailable "11": the template has 10 instance(s); use at most 10 or a percentage');
    expect(() => resolveLimit("max-surge", "-1", 10)).toThrow('invalid max-surge "-1": use a whole number of instances (1) or a percentage of them (25%)');
  });
});
