import { describe, expect, it } from "vitest";
import { instanceRuns } from "./instance-runs";

describe("instanceRuns", () => {
  const web = instanceRuns("web@.service");

  it("encodes consecutive numbers as runs, keeps order, and decodes back", () => {
    const names = ["web@1.service", "web@2.service", "web@3.service", "web@5.service", "web@blue.service", "web@6.service", "web@7.service"];
    expect(web.encode(names)).toEqual([[1, 3], 5, "web@blue.service", [6, 7]]);
    expect(web.decode(web.encode(names))).toEqual(names);
  });

  it("takes only the template's own canonically numbered instances for numbers", () => {
    const names = ["web@01.service", "web@1.socket", "webx@2.service", "web@.service", "web@-1.service", "web@1e3.service", "web@0.service"];
    expect(web.encode(names)).toEqual([...names.slice(0, 6), 0]);
    expect(web.decode(web.encode(names))).toEqual(names);
    expect(instanceRuns("plain.service").encode(["plain.service", "x@1.service"])).toEqual(["plain.service", "x@1.service"]);
  });

  it("formats runs of five or more the way bash expands them back, shorter ones name by name", () => {
    expect(web.format(Array.from({ length: 10_000 }, (_, i) => `web@${i + 1}.service`))).toBe("web@{1..10000}.service");
    const names = ["web@1.service", "web@2.service", "web@3.service", "web@4.service", "web@6.service", "web@7.service", "web@8.service", "web@9.service", "web@10.service", "web@blue.service"];
    expect(web.format(names)).toBe("web@1.service web@2.service web@3.service web@4.service web@{6..10}.service web@blue.service");
    expect(web.format([])).toBe("");
  });

  it("refuses a damaged run instead of looping or filling memory", () => {
    expect(() => web.decode([[5, 2]])).toThrow(/invalid run of instances of web@\.service: \[5,2\]/);
    expect(() => web.decode([[1, 1e15]])).toThrow(RangeError);
    expect(() => web.decode([[1.5, 3]])).toThrow(RangeError);
  });
});
