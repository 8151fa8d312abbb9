import { describe, expect, it } from "vitest";
import { buildUnit } from "../../lib/unit/index";
import { SchedulerModel } from "./scheduler-model";
import type { SchedulerMachine, SchedulerUnit } from "./types";

const GiB = 1024 ** 3;
const unit = (name: string, xfleet = ""): SchedulerUnit => ({ ...buildUnit(name, `[Service]\nExecStart=/bin/true\n[X-Fleet]\n${xfleet}\n`), desiredState: "launched" });
const machine = (id: string, metadata: Record<string, string> = {}, cpus = 8): SchedulerMachine => ({ id, metadata, capacity: { cpus: cpus * 1000, memory: 16 * GiB } });

/** Units per machine, as `id:count` sorted by ID. */
function loads(model: SchedulerModel, ids: readonly string[]): string[] {
  return ids.map((id) => `${id}:${model.unitsOn(id).length}`);
}

function placed(names: readonly string[], build: (name: string) => SchedulerUnit, machines: SchedulerMachine[]): SchedulerModel {
  const model = new SchedulerModel();
  for (const m of machines) model.setMachine(m);
  for (const n of names) model.setUnit(build(n));
  model.reconcile();
  return model;
}

describe("rebalance planner", () => {
  it("moves units onto a machine that joined, until no move lowers the load, within the budget", () => {
    const names = Array.from({ length: 6 }, (_, i) => `u${i}.service`);
    const model = placed(names, (n) => unit(n), [machine("m1"), machine("m2")]);
    expect(loads(model, ["m1", "m2"])).toEqual(["m1:3", "m2:3"]);
    model.setMachine(machine("m3"));
    model.reconcile();
    // The scheduler itself moves nothing that may stay (fleet's rule).
    expect(loads(model, ["m1", "m2", "m3"])).toEqual(["m1:3", "m2:3", "m3:0"]);

    const one = model.rebalance(1);
    expect(one.moves).toHaveLength(1);
    expect(one.considered).toBe(6);
    expect(one.moves[0]).toMatchObject({ from: "m1", to: "m3", reason: "load: 3 units on m1, 0 on m3" });
    const rest = model.rebalance(10);
    expect(rest.moves.map((m) => [m.from, m.to])).toEqual([["m2", "m3"]]);
    expect(loads(model, ["m1", "m2", "m3"])).toEqual(["m1:2", "m2:2", "m3:2"]);
    expect(model.rebalance(10).moves).toEqual([]);
    // Each move is in the model: a pass after it changes nothing.
    expect(model.reconcile().decisions).toEqual([]);
  });

  it("never moves where a rule forbids it: Conflicts, MachineMetadata, Resources; pinned units stay", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("m1", { role: "web" }));
    model.setMachine(machine("m2", { role: "web" }));
    model.setUnit(unit("web@1.service", "Conflicts=web@*.service\nMachineMetadata=role=web"));
    model.setUnit(unit("web@2.service", "Conflicts=web@*.service\nMachineMetadata=role=web"));
    model.setUnit(unit("pinned.service", "MachineID=m1"));
    model.setUnit(unit("big.service", "CPUs=6\nMachineMetadata=role=web"));
    model.setUnit(unit("a.service", "MachineMetadata=role=web"));
    model.setUnit(unit("b.service", "MachineMetadata=role=web"));
    model.reconcile();
    // New machines: one without the metadata, one too small for big.service, one already holding a web@.
    model.setMachine(machine("m3", {}));
    model.setMachine(machine("m4", { role: "web" }, 2));
    model.reconcile();
    const before = new Map(["web@1.service", "web@2.service", "pinned.service", "big.service"].map((n) => [n, model.placementOf(n)]));
    const plan = model.rebalance(20);
    for (const move of plan.moves) {
      expect(move.to).not.toBe("m3");
      expect(["pinned.service", "big.service"]).not.toContain(move.unit);
    }
    expect(model.placementOf("pinned.service")).toBe(before.get("pinned.service"));
    expect(model.placementOf("big.service")).toBe(before.get("big.service"));
    // The web@ instances may move only to m4 and never together.
    const webs = [model.placementOf("web@1.service"), model.placementOf("web@2.service")];
    expect(new Set(webs).size).toBe(2);
    for (const m of ["m1", "m2", "m3", "m4"]) expect(model.explain(model.unitsOn(m)[0] ?? "none") ?? []).not.toContainEqual(expect.objectContaining({ machineId: m }));
    expect(plan.moves.length).toBeGreaterThan(0);
    expect(model.unitsOn("m4").length).toBeGreaterThan(0);
  });

  it("lowers Spread skew first: instances move to the zone that joined", () => {
    const names = [1, 2, 3, 4].map((i) => `w@${i}.service`);
    const model = placed(names, (n) => unit(n, "Spread=zone"), [machine("a1", { zone: "a" }), machine("a2", { zone: "a" })]);
    model.setMachine(machine("b1", { zone: "b" }));
    model.reconcile();
    const plan = model.rebalance(5);
    expect(plan.moves).toHaveLength(2);
    expect(plan.moves.every((m) => m.to === "b1" && m.reason.startsWith("Spread: zone=a already holds"))).toBe(true);
    expect(model.unitsOn("b1")).toHaveLength(2);
  });

  it("weighs shares for units with needs: a bigger machine takes more", () => {
    const names = Array.from({ length: 6 }, (_, i) => `r${i}.service`);
    const model = placed(names, (n) => unit(n, "CPUs=1"), [machine("m1", {}, 4), machine("m2", {}, 4)]);
    model.setMachine(machine("big", {}, 16));
    model.reconcile();
    const plan = model.rebalance(10);
    expect(plan.moves.every((m) => m.to === "big" && m.reason.includes("of its capacity"))).toBe(true);
    // 3 CPUs of 4 (75%) on each small machine; moves stop at 25% everywhere (4 of 16 CPUs on the big one).
    expect(loads(model, ["big", "m1", "m2"])).toEqual(["big:4", "m1:1", "m2:1"]);
  });

  it("randomized: moves stay within the budget and never overcommit, conflict or widen spread", () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return (seed >>> 16) % n;
    };
    let moved = 0;
    for (let round = 0; round < 40; round++) {
      const model = new SchedulerModel();
      const specs = new Map<string, { zone: string; cpus: number }>();
      const addMachine = (id: string): void => {
        const spec = { zone: ["a", "b", "c"][rand(3)]!, cpus: 1 + rand(8) };
        specs.set(id, spec);
        model.setMachine(machine(id, { zone: spec.zone }, spec.cpus));
      };
      const [first, count, joining] = [2 + rand(4), 5 + rand(20), 1 + rand(3)];
      for (let i = 0; i < first; i++) addMachine(`m${i}`);
      const units = new Map<string, SchedulerUnit>();
      for (let i = 0; i < count; i++) {
        const kind = rand(4);
        const x = kind === 0 ? `CPUs=${1 + rand(3)}` : kind === 1 ? "Spread=zone\nCPUs=0.5" : kind === 2 ? "Conflicts=c@*.service" : "";
        const u = unit(kind === 1 ? `s@${i}.service` : kind === 2 ? `c@${i}.service` : `u${i}.service`, x);
        units.set(u.name, u);
        model.setUnit(u);
      }
      model.reconcile();
      for (let i = 0; i < joining; i++) addMachine(`n${i}`);
      model.reconcile();
      const skew = (): number => {
        const perZone = new Map<string, number>();
        for (const [id, spec] of specs) perZone.set(spec.zone, (perZone.get(spec.zone) ?? 0) + model.unitsOn(id).filter((n) => n.startsWith("s@")).length);
        return Math.max(...perZone.values()) - Math.min(...perZone.values());
      };
      const skewBefore = skew();
      const budget = 1 + rand(6);
      const plan = model.rebalance(budget);
      moved += plan.moves.length;
      expect(plan.moves.length).toBeLessThanOrEqual(budget);
      for (const [id, spec] of specs) {
        const on = model.unitsOn(id);
        expect(on.reduce((a, n) => a + (units.get(n)?.requirements.cpus ?? 0), 0)).toBeLessThanOrEqual(spec.cpus * 1000);
        expect(on.filter((n) => n.startsWith("c@")).length).toBeLessThanOrEqual(1);
        for (const n of on) expect(model.explain(n)?.find((e) => e.machineId === id)).toBeUndefined();
      }
      expect(skew()).toBeLessThanOrEqual(skewBefore);
      expect(model.reconcile().decisions).toEqual([]);
    }
    // The rounds did exercise moves.
    expect(moved).toBeGreaterThan(20);
  });
});
