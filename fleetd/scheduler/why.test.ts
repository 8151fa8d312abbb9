import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildUnit } from "../../lib/unit/index";
import { SchedulerModel } from "./scheduler-model";
import type { SchedulerUnit } from "./types";

const unit = (name: string, xfleet = "", desiredState: SchedulerUnit["desiredState"] = "launched"): SchedulerUnit => ({ ...buildUnit(name, `[Service]\nExecStart=/bin/true\n[X-Fleet]\n${xfleet}\n`), desiredState });
const verdicts = (model: SchedulerModel, name: string): string[][] | undefined => model.why(name)?.map((v) => [v.machineId, v.verdict, v.rule ?? "-"]);

describe("why: every rule names the machines it excludes", () => {
  const model = new SchedulerModel();
  model.setMachine({ id: "m1", metadata: { role: "web" } });
  model.setMachine({ id: "m2", metadata: { role: "db" } });
  model.setMachine({ id: "m3", metadata: { role: "web" } });
  model.setUnit(unit("db.service", "MachineMetadata=role=db"));
  model.setUnit(unit("web@1.service", "Conflicts=web@*.service\nMachineMetadata=role=web"));
  model.setUnit(unit("web@2.service", "Conflicts=web@*.service\nMachineMetadata=role=web"));
  model.setUnit(unit("agent.service", "MachineOf=db.service"));
  model.setUnit(unit("pinned.service", "MachineID=m3"));
  model.setUnit(unit("new.service", "Replaces=old.service\nMachineID=m1"));
  model.setUnit(unit("old.service"));
  model.reconcile();

  it("MachineMetadata and the current machine", () => {
    expect(verdicts(model, "db.service")).toEqual([
      ["m1", "excluded", "MachineMetadata"],
      ["m2", "current", "-"],
      ["m3", "excluded", "MachineMetadata"],
    ]);
    expect(model.why("db.service")?.[0]?.detail).toBe("unit requires role=db, machine has role=web");
  });

  it("Conflicts: the machine holding the other instance", () => {
    model.setUnit(unit("web@3.service", "Conflicts=web@*.service\nMachineMetadata=role=web"));
    const v = model.why("web@3.service")!;
    expect(v.map((x) => x.rule)).toEqual(["Conflicts", "MachineMetadata", "Conflicts"]);
    expect(v[0]?.detail).toMatch(/^unit conflicts with "web@\d\.service"/);
    model.removeUnit("web@3.service");
  });

  it("MachineOf, MachineID, Replaces", () => {
    expect(verdicts(model, "agent.service")).toEqual([
      ["m1", "excluded", "MachineOf"],
      ["m2", "current", "-"],
      ["m3", "excluded", "MachineOf"],
    ]);
    expect(verdicts(model, "pinned.service")).toEqual([
      ["m1", "excluded", "MachineID"],
      ["m2", "excluded", "MachineID"],
      ["m3", "current", "-"],
    ]);
    expect(model.placementOf("new.service")).toBe("m1");
    const old = model.why("old.service")!;
    expect(old.find((v) => v.machineId === "m1")).toMatchObject({ verdict: "excluded", rule: "Replaces" });
    expect(old.find((v) => v.machineId === model.placementOf("old.service"))?.verdict).toBe("current");
  });

  it("an unscheduled unit: the best machine, or every machine excluded", () => {
    model.setUnit(unit("later.service", "", "inactive"));
    expect(model.why("later.service")?.filter((v) => v.verdict === "best")).toHaveLength(1);
    model.setUnit(unit("nowhere.service", "MachineMetadata=role=cache"));
    model.reconcile();
    expect(model.why("nowhere.service")?.every((v) => v.verdict === "excluded" && v.rule === "MachineMetadata")).toBe(true);
    expect(model.why("unknown.service")).toBeUndefined();
  });
});

describe("why: a global unit", () => {
  it("is current on every machine it runs on, fits where it could, and no machine is the scheduler's choice", () => {
    const model = new SchedulerModel();
    const capacity = { cpus: 4000, memory: 1024 ** 3 };
    model.setMachine({ id: "m1", metadata: { role: "web" }, capacity });
    model.setMachine({ id: "m2", metadata: { role: "db" }, capacity });
    model.setMachine({ id: "m3", metadata: { role: "web" }, capacity });
    model.setUnit(unit("other.service", "MachineID=m3"));
    model.setUnit(unit("glob.service", "Global=true\nMachineMetadata=role=web\nCPUs=1"));
    model.reconcile();
    expect(model.why("glob.service")).toEqual([
      { machineId: "m1", verdict: "current", detail: "runs here, as on every machine no rule excludes (load 0, 25% of its capacity with the unit)" },
      { machineId: "m2", verdict: "excluded", rule: "MachineMetadata", detail: "unit requires role=web, machine has role=db" },
      { machineId: "m3", verdict: "current", detail: "runs here, as on every machine no rule excludes (load 1, 25% of its capacity with the unit)" },
    ]);
    // A machine that joined since the last pass: it fits; the next pass schedules the unit there too.
    model.setMachine({ id: "m4", metadata: { role: "web" }, capacity });
    expect(model.why("glob.service")?.[3]).toEqual({ machineId: "m4", verdict: "fits", detail: "fits (load 0, 25% of its capacity with the unit); a global unit runs on every machine no rule excludes" });
    expect(model.why("glob.service")?.some((v) => v.verdict === "best")).toBe(false);
  });
});

describe("the units/worker@.service example (Spread=zone, CPUs=, Memory=)", () => {
  it("spreads five instances 2/2/1 over three zones and says so in why", () => {
    const text = readFileSync(new URL("../../units/worker@.service", import.meta.url), "utf8");
    const model = new SchedulerModel();
    const zones = { m1: "a", m2: "a", m3: "b", m4: "c" } as const;
    for (const [id, zone] of Object.entries(zones)) model.setMachine({ id, metadata: { zone }, capacity: { cpus: 2000, memory: 1024 ** 3 } });
    for (let i = 1; i <= 5; i++) model.setUnit({ ...buildUnit(`worker@${i}.service`, text), desiredState: "launched" });
    model.reconcile();
    const perZone: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let i = 1; i <= 5; i++) perZone[zones[model.placementOf(`worker@${i}.service`) as keyof typeof zones]]! += 1;
    expect(Object.values(perZone).sort()).toEqual([1, 2, 2]);
    model.setUnit({ ...buildUnit("worker@6.service", text), desiredState: "launched" });
    const v = model.why("worker@6.service")!;
    expect(v.filter((x) => x.rule === "Spread").length).toBeGreaterThan(0);
    expect(v.find((x) => x.verdict === "best")).toBeDefined();
  });
});
