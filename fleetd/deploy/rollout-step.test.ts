import { describe, expect, it } from "vitest";
import type { RolloutRecord } from "./records";
import { step, type InstanceView } from "./rollout-step";

const T = "web@.service";

function rollout(n: number, over: Partial<RolloutRecord> = {}): RolloutRecord {
  const instances = Array.from({ length: n }, (_, i) => `web@${i + 1}.service`);
  return {
    revision: 2,
    toHash: "new",
    fromHash: "old",
    maxUnavailableSpec: "1",
    maxSurgeSpec: "0",
    maxUnavailable: 1,
    maxSurge: 0,
    deadlineMs: 5_000,
    startedAt: "",
    phase: "rolling",
    instances,
    previous: Object.fromEntries(instances.map((i) => [i, "old"])),
    bodies: { old: "old text" },
    pending: {},
    surge: [],
    maxUnavailableSeen: 0,
    message: "",
    ...over,
  };
}

/**
 * A tiny simulated cluster: an instance written to a hash goes down and comes back active on it
 * `startTicks` ticks later, unless its hash is in `failing`. Surge instances can be unplaceable.
 */
function simulate(r0: RolloutRecord, opts: { startTicks?: number; failing?: string[]; unplaceableSurge?: boolean; maxTicks?: number; maxChanges?: number; abortAtTick?: number } = {}) {
  const units = new Map<string, { hash: string; activeAt: number }>(r0.instances.map((n) => [n, { hash: "old", activeAt: 0 }]));
  let r = r0;
  let unavailableMax = 0;
  let capacityMin = Infinity;
  let changesMax = 0;
  const tickMs = 100;
  for (let tick = 0; tick < (opts.maxTicks ?? 500); tick++) {
    const now = tick * tickMs;
    // What the API writes when an operator stops the rollout (fleetctl rollback while it runs).
    if (tick === opts.abortAtTick) r = { ...r, aborted: "2026-12-07T10:00:00.000Z" };
    const view = new Map<string, InstanceView>();
    for (const [n, u] of units) {
      const active = !(opts.failing ?? []).includes(u.hash) && now >= u.activeAt;
      const unschedulable = n.includes("surge") && opts.unplaceableSurge ? "no machine can run it" : undefined;
      view.set(n, { hash: u.hash, active: active && unschedulable === undefined, ...(unschedulable ? { unschedulable } : {}) });
    }
    const named = r.instances.filter((n) => !view.get(n)!.active).length;
    unavailableMax = Math.max(unavailableMax, named);
    capacityMin = Math.min(capacityMin, [...view.values()].filter((v) => v.active).length);
    const out = step({ template: T, rollout: r, instances: view, now, ...(opts.maxChanges !== undefined ? { maxChanges: opts.maxChanges } : {}) });
    changesMax = Math.max(changesMax, out.updates.length + out.createSurge.length + out.destroySurge.length);
    for (const u of out.updates) units.set(u.instance, { hash: u.toHash, activeAt: now + (opts.startTicks ?? 3) * tickMs });
    for (const s of out.createSurge) units.set(s, { hash: r.toHash, activeAt: now + (opts.startTicks ?? 3) * tickMs });
    for (const s of out.destroySurge) units.delete(s);
    r = out.rollout;
    if (r.phase === "done") break;
  }
  return { r, units, unavailableMax, capacityMin, changesMax };
}

describe("rollout step", () => {
  it("rolls 10 instances with max-unavailable 2 and never has more than 2 down", () => {
    const { r, units, unavailableMax } = simulate(rollout(10, { maxUnavailable: 2, maxUnavailableSpec: "25%" }));
    expect(r.phase).toBe("done");
    expect(r.outcome).toBe("succeeded");
    expect([...units.values()].every((u) => u.hash === "new")).toBe(true);
    expect(unavailableMax).toBe(2);
    expect(r.maxUnavailableSeen).toBe(2);
  });

  it("with max-surge 1 and max-unavailable 0 starts a surge instance first: capacity never drops below N", () => {
    const { r, units, capacityMin } = simulate(rollout(4, { maxUnavailable: 0, maxSurge: 1 }));
    expect(r.outcome).toBe("succeeded");
    expect(capacityMin).toBe(4);
    expect([...units.keys()].sort()).toEqual(["web@1.service", "web@2.service", "web@3.service", "web@4.service"]);
  });

  it("turns surge off when the surge instance cannot be placed and rolls within max-unavailable", () => {
    const { r, unavailableMax } = simulate(rollout(3, { maxUnavailable: 1, maxSurge: 1 }), { unplaceableSurge: true });
    expect(r.outcome).toBe("succeeded");
    expect(r.surgeDisabled).toContain("web@surge-2-1.service cannot be placed (no machine can run it)");
    expect(unavailableMax).toBe(1);
  });

  it("fails at the first instance that is not active within the deadline and rolls every instance back", () => {
    const { r, units } = simulate(rollout(4), { failing: ["new"] });
    expect(r.outcome).toBe("rolled-back");
    expect(r.failed).toEqual({ instance: "web@1.service", reason: "not active within 5 s of getting its new body" });
    expect([...units.values()].map((u) => u.hash)).toEqual(["old", "old", "old", "old"]);
  });

  it("rolls back when a surge instance (make-before-break) does not become active within the deadline", () => {
    const { r, units } = simulate(rollout(4, { maxUnavailable: 0, maxSurge: 1 }), { failing: ["new"] });
    expect(r.outcome).toBe("rolled-back");
    expect(r.failed).toEqual({ instance: "web@surge-2-1.service", reason: "not active within 5 s of getting its new body" });
    expect([...units.keys()].sort()).toEqual(["web@1.service", "web@2.service", "web@3.service", "web@4.service"]);
    expect([...units.values()].every((u) => u.hash === "old")).toBe(true);
  });

  it("rolls back when an updated instance cannot be placed within the deadline (only surge instances turn surge off instead)", () => {
    const r0 = rollout(2, { maxUnavailable: 1 });
    const first = step({
      template: T,
      rollout: r0,
      instances: new Map([
        ["web@1.service", { hash: "old", active: true }],
        ["web@2.service", { hash: "old", active: true }],
      ]),
      now: 0,
    });
    expect(first.updates).toEqual([{ instance: "web@1.service", toHash: "new" }]);
    const late = step({
      template: T,
      rollout: first.rollout,
      instances: new Map([
        ["web@1.service", { hash: "new", active: false, unschedulable: "no machine can run it" }],
        ["web@2.service", { hash: "old", active: true }],
      ]),
      now: 6_000,
    });
    expect(late.rollout.phase).toBe("rolling-back");
    expect(late.rollout.failed).toEqual({ instance: "web@1.service", reason: "not active within 5 s of getting its new body" });
  });

  it("ends failed only once the surge instances over the allowance are removed too", () => {
    const surge = Array.from({ length: 5 }, (_, k) => `web@surge-2-${k + 1}.service`);
    const r0 = rollout(1, { phase: "rolling-back", failed: { instance: "web@1.service", reason: "x" }, pending: { "web@1.service": 0 }, surge });
    const views = (names: string[]) => new Map<string, InstanceView>([["web@1.service", { hash: "old", active: false }], ...names.map((n): [string, InstanceView] => [n, { hash: "new", active: false }])]);
    const first = step({ template: T, rollout: r0, instances: views(surge), now: 10_000, maxChanges: 3 });
    expect(first.destroySurge).toEqual(surge.slice(0, 3));
    expect(first.rollout.phase).toBe("rolling-back");
    expect(first.rollout.surge).toEqual(surge.slice(3));
    const second = step({ template: T, rollout: first.rollout, instances: views(surge.slice(3)), now: 10_100, maxChanges: 3 });
    expect(second.destroySurge).toEqual(surge.slice(3));
    expect(second.rollout).toMatchObject({ phase: "done", outcome: "failed", surge: [] });
  });

  it("rolls every instance back when the operator stops the rollout, surge instances removed, outcome rolled-back", () => {
    const { r, units } = simulate(rollout(6, { maxUnavailable: 1, maxSurge: 1 }), { abortAtTick: 8 });
    expect(r).toMatchObject({ phase: "done", outcome: "rolled-back", message: "rolled back: stopped by the operator at 2026-12-07T10:00:00.000Z", surge: [] });
    expect(r.failed).toBeUndefined();
    expect([...units.keys()].sort()).toEqual(rollout(6).instances);
    expect([...units.values()].every((u) => u.hash === "old")).toBe(true);
    // Instances already on the new body when it is stopped go back too (the simulation is deterministic).
    const before = simulate(rollout(6, { maxUnavailable: 1 }), { maxTicks: 9 });
    expect([...before.units.values()].filter((u) => u.hash === "new").length).toBeGreaterThanOrEqual(2);
    const stopped = simulate(rollout(6, { maxUnavailable: 1 }), { abortAtTick: 9 });
    expect(stopped.r.outcome).toBe("rolled-back");
    expect([...stopped.units.values()].every((u) => u.hash === "old")).toBe(true);
  });

  it("a stop while it already rolls back (a failure) changes nothing: it ends as the failure decides", () => {
    const { r } = simulate(rollout(2), { failing: ["new"], abortAtTick: 80 });
    expect(r.outcome).toBe("rolled-back");
    expect(r.failed?.instance).toBe("web@1.service");
    expect(r.message).toBe("rolled back: web@1.service not active within 5 s of getting its new body");
  });

  it("ends failed when the rollback does not become active either", () => {
    const { r } = simulate(rollout(2), { failing: ["new", "old"] });
    expect(r.outcome).toBe("failed");
    expect(r.message).toContain("rollback failed too: web@1.service not active within 5 s");
  });

  it("makes at most maxChanges unit changes per step and still rolls 300 instances at 100 %", () => {
    const { r, units, changesMax } = simulate(rollout(300, { maxUnavailable: 300, maxUnavailableSpec: "100%" }), { maxChanges: 100 });
    expect(r.outcome).toBe("succeeded");
    expect(changesMax).toBe(100);
    expect([...units.values()].every((u) => u.hash === "new")).toBe(true);
    const unlimited = simulate(rollout(300, { maxUnavailable: 300, maxUnavailableSpec: "100%" }));
    expect(unlimited.changesMax).toBe(300);
  });

  it("with a change allowance, keeps the surge instances it could not remove yet recorded and removes them later", () => {
    const { r, units, changesMax } = simulate(rollout(200, { maxUnavailable: 10, maxSurge: 150 }), { failing: ["new"], maxChanges: 60 });
    expect(r.outcome).toBe("rolled-back");
    expect(changesMax).toBe(60);
    expect(r.surge).toEqual([]);
    expect([...units.keys()].filter((n) => n.includes("surge"))).toEqual([]);
    expect([...units.values()].every((u) => u.hash === "old")).toBe(true);
  });

  it("resumes from the record alone: an instance already on the new body but not pending gets a fresh deadline", () => {
    const r0 = rollout(2);
    const out = step({
      template: T,
      rollout: r0,
      instances: new Map([
        ["web@1.service", { hash: "new", active: false }],
        ["web@2.service", { hash: "old", active: true }],
      ]),
      now: 1_000,
    });
    expect(out.updates).toEqual([]);
    expect(out.rollout.pending).toEqual({ "web@1.service": 1_000 });
  });

  it("switches a stopped instance at once and does not wait for it", () => {
    const r0 = rollout(2);
    const out = step({
      template: T,
      rollout: r0,
      instances: new Map([
        ["web@1.service", { hash: "old", active: false, idle: true }],
        ["web@2.service", { hash: "new", active: true }],
      ]),
      now: 1_000,
    });
    expect(out.updates).toEqual([{ instance: "web@1.service", toHash: "new" }]);
    expect(out.rollout.pending).toEqual({});
    const next = step({
      template: T,
      rollout: out.rollout,
      instances: new Map([
        ["web@1.service", { hash: "new", active: false, idle: true }],
        ["web@2.service", { hash: "new", active: true }],
      ]),
      now: 1_100,
    });
    expect(next.rollout.outcome).toBe("succeeded");
  });
});
