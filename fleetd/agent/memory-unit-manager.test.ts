import { describe, expect, it } from "vitest";
import type { UnitStateChange } from "./unit-manager";
import { MemoryUnitManager } from "./memory-unit-manager";

const until = (cond: () => boolean | Promise<boolean>): Promise<void> =>
  new Promise((resolve) => {
    const tick = (): void => void Promise.resolve(cond()).then((ok) => (ok ? resolve() : void setTimeout(tick, 1)));
    tick();
  });

describe("MemoryUnitManager", () => {
  it("simulates load/start/stop/unload with state-change events and records every operation", async () => {
    const m = new MemoryUnitManager();
    const seen: UnitStateChange[] = [];
    m.onStateChange((c) => seen.push(c));
    await m.load("a.service", "[Service]\nExecStart=/bin/true");
    await m.reload();
    await m.start("a.service");
    await until(() => m.running().includes("a.service"));
    expect((await m.states(["a.service", "b.service"])).get("b.service")).toEqual({ loadState: "not-found", activeState: "inactive", subState: "dead" });
    await m.stop("a.service");
    await until(() => !m.running().includes("a.service"));
    await m.unload("a.service");
    await until(() => seen.at(-1)?.state.loadState === "not-found");
    expect(seen.map((c) => `${c.state.loadState}/${c.state.activeState}/${c.state.subState}`)).toEqual([
      "loaded/inactive/dead",
      "loaded/active/running",
      "loaded/inactive/dead",
      "not-found/inactive/dead",
    ]);
    expect(m.operations.map((o) => o.op)).toEqual(["load", "reload", "start", "stop", "unload"]);
    expect(await m.listLoaded()).toEqual(new Map());
  });

  it("refuses to start a unit that is not loaded, and keeps files on a shared disk across instances", async () => {
    const m = new MemoryUnitManager();
    await expect(m.start("x.service")).rejects.toThrow("Cannot start x.service: unit not loaded");
    await m.load("x.service", "text");
    const again = new MemoryUnitManager({ disk: m.disk });
    expect(await again.listLoaded()).toEqual(new Map([["x.service", "text"]]));
  });

  it("fails a unit whose ExecStart runs /bin/false (the documented failing-body rule), and only that one", async () => {
    const m = new MemoryUnitManager();
    await m.load("bad.service", "[Service]\nExecStart=/bin/false --image x");
    await m.load("good.service", "[Service]\nExecStart=/bin/falsehood");
    await m.start("bad.service");
    await m.start("good.service");
    await until(() => m.running().includes("good.service"));
    await until(async () => (await m.states(["bad.service"])).get("bad.service")?.activeState === "failed");
    expect((await m.states(["bad.service"])).get("bad.service")).toEqual({ loadState: "loaded", activeState: "failed", subState: "failed" });
  });
});
