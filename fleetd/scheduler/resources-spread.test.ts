import { describe, expect, it } from "vitest";
import { buildUnit } from "../../lib/unit/index";
import { schedule } from "./schedule";
import { SchedulerModel } from "./scheduler-model";
import type { SchedulerMachine, SchedulerUnit } from "./types";

const GiB = 1024 ** 3;
const unit = (name: string, xfleet: string, service = "ExecStart=/bin/true"): SchedulerUnit => ({
  ...buildUnit(name, `[Service]\n${service}\n[X-Fleet]\n${xfleet}\n`),
  desiredState: "launched",
});
const machine = (id: string, cpus: number, memGiB: number, metadata: Record<string, string> = {}): SchedulerMachine => ({ id, metadata, capacity: { cpus: cpus * 1000, memory: memGiB * GiB } });

describe("Resources rule", () => {
  it("never overcommits: a unit goes only where its needs fit, and waits with a Resources reason otherwise", () => {
    const out = schedule({
      machines: [machine("m1", 2, 4), machine("m2", 1, 8)],
      units: [unit("big.service", "", "CPUQuota=150%\nMemoryMax=2G"), unit("huge.service", "Memory=16G")],
    });
    expect(out.model.placementOf("big.service")).toBe("m1");
    expect(out.unscheduled).toEqual([{ unit: "huge.service", reason: "no machine can run it (2 machines): 2 excluded by Resources", excludedBy: { Resources: 2 } }]);
    expect(out.model.explain("huge.service")).toEqual([
      { machineId: "m1", rule: "Resources", detail: "unit needs 16 GiB of memory, machine has 2 GiB free of 4 GiB" },
      { machineId: "m2", rule: "Resources", detail: "unit needs 16 GiB of memory, machine has 8 GiB free of 8 GiB" },
    ]);
  });

  it("weighs resources in least-loaded: the machine with the lowest dominant share wins, not the fewest units", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("m1", 4, 8));
    model.setMachine(machine("m2", 4, 8));
    model.setUnit(unit("heavy.service", "MachineID=m1\nCPUs=3"));
    model.reconcile();
    model.setUnit(unit("a.service", "CPUs=0.5"));
    model.setUnit(unit("b.service", "CPUs=0.5"));
    model.setUnit(unit("c.service", "CPUs=0.5"));
    model.reconcile();
    // m1 holds one unit but 75% of its CPUs; by unit count a/b/c would alternate onto m1.
    expect(["a.service", "b.service", "c.service"].map((n) => model.placementOf(n))).toEqual(["m2", "m2", "m2"]);
    // A unit without needs also goes by share once resources are in use: m2 (3 units, 37%) over m1 (1 unit, 75%).
    model.setUnit(unit("plain.service", ""));
    model.reconcile();
    expect(model.placementOf("plain.service")).toBe("m2");
  });

  it("retries a unit refused for resources when another unit frees them, and evicts only as many units as needed when capacity shrinks", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("m1", 2, 4));
    model.setUnit(unit("a.service", "CPUs=1"));
    model.setUnit(unit("b.service", "CPUs=1"));
    model.setUnit(unit("c.service", "CPUs=1"));
    expect(model.reconcile().unscheduled.map((u) => u.unit)).toEqual(["c.service"]);
    model.removeUnit("a.service");
    model.reconcile();
    expect(model.placementOf("c.service")).toBe("m1");
    model.setMachine(machine("m1", 1, 4));
    const result = model.reconcile();
    expect(result.decisions.filter((d) => d.kind === "unschedule").map((d) => [d.unit, d.reason])).toEqual([["b.service", "Resources: unit needs 1 CPU, machine has 0 CPUs free of 1 CPU"]]);
    expect(model.placementOf("c.service")).toBe("m1");
  });

  it("keeps a machine without published capacity for units that need nothing (fleet's agents, older fleetd)", () => {
    const out = schedule({ machines: [{ id: "old", metadata: {} }], units: [unit("needs.service", "CPUs=1"), unit("plain.service", "")] });
    expect(out.model.placementOf("plain.service")).toBe("old");
    expect(out.model.explain("needs.service")?.[0]?.detail).toMatch(/^machine publishes no capacity/);
  });
});

describe("Spread rule", () => {
  it("spreads a template's instances across zones, then within a zone by load", () => {
    const machines = [machine("a1", 8, 8, { zone: "a" }), machine("a2", 8, 8, { zone: "a" }), machine("a3", 8, 8, { zone: "a" }), machine("b1", 8, 8, { zone: "b" })];
    const units = [1, 2, 3, 4].map((i) => unit(`web@${i}.service`, "Spread=zone"));
    const out = schedule({ machines, units });
    const where = units.map((u) => out.model.placementOf(u.name));
    // Plain least-loaded would put 3 of 4 in zone a (three machines there).
    expect(where.filter((m) => m?.startsWith("b")).length).toBe(2);
    expect(where.filter((m) => m?.startsWith("a")).length).toBe(2);
  });

  it("spreads across several keys in order, and on top of Conflicts", () => {
    const machines = [
      machine("m1", 8, 8, { region: "eu", zone: "eu-1" }), machine("m2", 8, 8, { region: "eu", zone: "eu-2" }),
      machine("m3", 8, 8, { region: "us", zone: "us-1" }), machine("m4", 8, 8, { region: "us", zone: "us-1" }),
    ];
    const units = [1, 2, 3, 4, 5].map((i) => unit(`db@${i}.service`, "Spread=region zone\nConflicts=db@*.service"));
    const out = schedule({ machines, units });
    const regions = units.map((u) => out.model.placementOf(u.name)).filter((m) => m !== undefined).map((m) => (m === "m1" || m === "m2" ? "eu" : "us"));
    expect(regions.sort()).toEqual(["eu", "eu", "us", "us"]);
    expect(out.unscheduled.map((u) => u.unit)).toEqual(["db@5.service"]);
    expect(out.unscheduled[0]?.excludedBy).toEqual({ Conflicts: 4 });
  });

  it("falls back to the zones that still have room (skew beyond 1 only where capacity forces it)", () => {
    const machines = [machine("a1", 1, 8, { zone: "a" }), machine("b1", 8, 8, { zone: "b" })];
    const units = [1, 2, 3, 4].map((i) => unit(`w@${i}.service`, "Spread=zone\nCPUs=1"));
    const out = schedule({ machines, units });
    expect(units.map((u) => out.model.placementOf(u.name)).sort()).toEqual(["a1", "b1", "b1", "b1"]);
  });
});

describe("why (per-machine evaluation)", () => {
  it("names the current machine, the scheduler's choice, machines that fit, and the rule excluding each other one", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("a1", 4, 8, { zone: "a" }));
    model.setMachine(machine("a2", 4, 8, { zone: "a" }));
    model.setMachine(machine("b1", 4, 8, { zone: "b" }));
    model.setMachine(machine("c1", 4, 8, { zone: "c" }));
    model.setMachine(machine("c2", 1, 8, { zone: "c" }));
    model.setUnit(unit("web@1.service", "Spread=zone\nCPUs=2"));
    model.setUnit(unit("web@2.service", "Spread=zone\nCPUs=2\nMachineMetadata=zone=a\nMachineMetadata=zone=b"));
    model.reconcile();
    model.setUnit(unit("web@3.service", "Spread=zone\nCPUs=2"));
    const verdicts = model.why("web@3.service");
    const placed = [model.placementOf("web@1.service"), model.placementOf("web@2.service")];
    expect(placed.sort()).toEqual(["a1", "b1"]);
    expect(verdicts?.map((v) => [v.machineId, v.verdict, v.rule])).toEqual([
      ["a1", "excluded", "Spread"],
      ["a2", "excluded", "Spread"],
      ["b1", "excluded", "Spread"],
      ["c1", "best", undefined],
      ["c2", "excluded", "Resources"],
    ]);
    expect(verdicts?.[0]?.detail).toBe("zone=a already holds 1 instance(s) of web@.service, a fitting machine elsewhere has 0 (Spread=zone)");
    expect(verdicts?.[3]?.detail).toBe("the scheduler's choice now (load 0, 50% of its capacity with the unit)");
    expect(verdicts?.[4]?.detail).toBe("unit needs 2 CPUs, machine has 1 CPU free of 1 CPU");
    const w1 = model.why("web@1.service");
    expect(w1?.find((v) => v.machineId === model.placementOf("web@1.service"))?.verdict).toBe("current");
    expect(w1?.filter((v) => v.verdict === "best").length).toBe(1);
    expect(model.why("nope.service")).toBeUndefined();
  });
});
