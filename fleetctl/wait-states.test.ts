import { afterEach, describe, expect, it, vi } from "vitest";
import type { CommandContext } from "./context";
import { countReporter } from "./wait-states";

describe("countReporter (waits on many units)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("prints the count on stderr at most every 2 s and only when it grew, and one line on stdout when all arrived", () => {
    vi.useFakeTimers({ now: 0 });
    const out: string[] = [];
    const err: string[] = [];
    const ctx = { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } as unknown as CommandContext;
    const report = countReporter(ctx, 10_000, "launched");
    report(100); // before 2 s: nothing
    vi.setSystemTime(2_000);
    report(4_180);
    vi.setSystemTime(3_000);
    report(5_000); // within 2 s of the last line
    vi.setSystemTime(5_000);
    report(4_180 + 0); // no growth since the last line
    vi.setSystemTime(6_000);
    report(9_999);
    report(10_000);
    expect(err).toEqual(["4,180 of 10,000 units launched", "9,999 of 10,000 units launched"]);
    expect(out).toEqual(["All 10,000 units launched"]);
  });
});
