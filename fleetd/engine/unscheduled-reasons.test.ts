import { describe, expect, it } from "vitest";
import { parseRequirements, parseUnitFile } from "../../lib/unit";
import { Keys } from "../registry/keys";
import { SchedulerModel } from "../scheduler/scheduler-model";
import type { UnscheduledUnit } from "../scheduler/types";
import { buildRecord, EXPLAIN_BUDGET, MAX_RECORD_BYTES, UnscheduledReasons } from "./unscheduled-reasons";
import type { OpGroup } from "./placement-plan";

const keys = new Keys("/t/");

function unit(name: string, xfleet: string): { name: string; requirements: ReturnType<typeof parseRequirements>["requirements"]; desiredState: "launched" } {
  const options = parseUnitFile(`[Service]\nExecStart=/bin/true\n\n[X-Fleet]\n${xfleet}\n`);
  return { name, requirements: parseRequirements(name, options).requirements, desiredState: "launched" };
}

/** What the groups would write: key → JSON record, or null for a delete. */
function writes(groups: readonly OpGroup[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const g of groups) {
    for (const op of g.ops) {
      const put = op.request_put;
      const del = op.request_delete_range;
      if (put?.key && put.value) out[put.key.toString()] = JSON.parse(put.value.toString()) as unknown;
      if (del?.key) out[del.key.toString()] = null;
    }
  }
  return out;
}

function applyAll(groups: readonly OpGroup[]): void {
  for (const g of groups) g.apply();
}

describe("unscheduled reasons (engine side of invariant 4)", () => {
  it("records a refused unit once, rewrites it only when the reason changes, deletes it once placed", () => {
    const model = new SchedulerModel();
    model.setMachine({ id: "m1", metadata: { role: "web" } });
    model.setMachine({ id: "m2", metadata: {} });
    model.setUnit(unit("db.service", "MachineMetadata=role=db"));
    const reasons = new UnscheduledReasons(keys, () => new Date("2026-01-01T00:00:00Z"));
    const explain = (n: string): ReturnType<SchedulerModel["explain"]> => model.explain(n);

    let result = model.reconcile();
    let plan = reasons.plan(result.unscheduled, explain, 2);
    expect(plan.more).toBe(false);
    expect(writes(plan.groups)).toEqual({
      "/t/unscheduled/db.service": {
        summary: "no machine can run it (2 machines): 2 excluded by MachineMetadata",
        excludedBy: { MachineMetadata: 2 },
        machines: [
          { machineID: "m1", rule: "MachineMetadata", detail: "unit requires role=db, machine has role=web" },
          { machineID: "m2", rule: "MachineMetadata", detail: 'unit requires role=db, machine has no "role"' },
        ],
        moreMachines: 0,
        since: "2026-01-01T00:00:00.000Z",
      },
    });
    applyAll(plan.groups);

    // Nothing changed: no write, even though the unit is still refused.
    result = model.reconcile();
    expect(result.unscheduled.map((u) => u.unit)).toEqual(["db.service"]);
    expect(reasons.plan(result.unscheduled, explain, 2).groups).toEqual([]);

    // A new machine re-evaluates it: the count changed, so the record is rewritten.
    model.setMachine({ id: "m3", metadata: { role: "cache" } });
    result = model.reconcile();
    plan = reasons.plan(result.unscheduled, explain, 3);
    expect(Object.keys(writes(plan.groups))).toEqual(["/t/unscheduled/db.service"]);
    applyAll(plan.groups);

    // Metadata changed on a machine but the outcome did not change the reason's content: no write.
    model.setMachine({ id: "m3", metadata: { role: "cache", zone: "a" } });
    result = model.reconcile();
    plan = reasons.plan(result.unscheduled, explain, 3);
    expect(plan.groups).toEqual([]);

    // A matching machine appears: the unit is placed and its record deleted.
    model.setMachine({ id: "m4", metadata: { role: "db" } });
    result = model.reconcile();
    expect(result.decisions.map((d) => `${d.kind} ${d.unit} ${d.machineId}`)).toEqual(["schedule db.service m4"]);
    plan = reasons.plan(result.unscheduled, explain, 4);
    expect(writes(plan.groups)).toEqual({ "/t/unscheduled/db.service": null });
    applyAll(plan.groups);
    expect(reasons.size).toBe(0);
    expect(reasons.plan(model.reconcile().unscheduled, explain, 4).groups).toEqual([]);
  });

  it("costs nothing for units that are placed at once", () => {
    const model = new SchedulerModel();
    model.setMachine({ id: "m1", metadata: {} });
    model.setUnit(unit("web.service", "Conflicts=nothing.service"));
    const reasons = new UnscheduledReasons(keys);
    const plan = reasons.plan(model.reconcile().unscheduled, (n) => model.explain(n), 1);
    expect(plan.groups).toEqual([]);
  });

  it("keeps an unapplied write pending (a failed transaction is planned again)", () => {
    const model = new SchedulerModel();
    model.setUnit(unit("a.service", "MachineID=abc"));
    const reasons = new UnscheduledReasons(keys);
    const first = reasons.plan(model.reconcile().unscheduled, (n) => model.explain(n), 0);
    expect(first.groups).toHaveLength(1);
    const again = reasons.plan(model.reconcile().unscheduled, (n) => model.explain(n), 0);
    expect(Object.keys(writes(again.groups))).toEqual(["/t/unscheduled/a.service"]);
  });

  it("deletes records left by a previous leader for units that are no longer refused, and keeps equal ones", () => {
    const reasons = new UnscheduledReasons(keys);
    const report: UnscheduledUnit = { unit: "x.service", reason: "no machines are registered", excludedBy: {} };
    const kept = buildRecord(report, [], "2025-01-01T00:00:00.000Z");
    reasons.load([
      { key: "/t/unscheduled/x.service", value: Buffer.from(JSON.stringify(kept)), modRevision: 5, createRevision: 5, lease: "0" },
      { key: "/t/unscheduled/gone.service", value: Buffer.from("not json"), modRevision: 6, createRevision: 6, lease: "0" },
    ]);
    const plan = reasons.plan([report], () => [], 0);
    expect(writes(plan.groups)).toEqual({ "/t/unscheduled/gone.service": null });
  });

  it("bounds the record: first 50 machines by ID, the rest counted, and a byte limit", () => {
    const report: UnscheduledUnit = { unit: "x.service", reason: "no machine can run it (120 machines): 120 excluded by Conflicts", excludedBy: { Conflicts: 120 } };
    const exclusions = Array.from({ length: 120 }, (_, i) => ({ machineId: `m${String(119 - i).padStart(3, "0")}`, rule: "Conflicts" as const, detail: `unit conflicts with "y${i}.service" on this machine` }));
    const record = buildRecord(report, exclusions, "");
    expect(record.machines).toHaveLength(50);
    expect(record.machines[0]!.machineID).toBe("m000");
    expect(record.moreMachines).toBe(70);
    const long = exclusions.map((e) => ({ ...e, machineId: `${e.machineId}${"f".repeat(200)}`, detail: "d".repeat(500) }));
    const big = buildRecord(report, long, "2026-01-01T00:00:00.000Z");
    expect(Buffer.byteLength(JSON.stringify(big))).toBeLessThanOrEqual(MAX_RECORD_BYTES);
    expect(big.machines.length + big.moreMachines).toBe(120);
    expect(big.machines[0]!.detail.length).toBeLessThanOrEqual(200);
  });

  it("explains at most a budget of rule checks per pass and asks for another pass", () => {
    const reasons = new UnscheduledReasons(keys);
    const machines = 1_000;
    const reports: UnscheduledUnit[] = Array.from({ length: 500 }, (_, i) => ({ unit: `u${i}.service`, reason: "r", excludedBy: { Conflicts: machines } }));
    let explained = 0;
    const explain = (): [] => {
      explained++;
      return [];
    };
    const first = reasons.plan(reports, explain, machines);
    expect(explained).toBe(EXPLAIN_BUDGET / machines);
    expect(first.more).toBe(true);
    applyAll(first.groups);
    let rounds = 1;
    for (let plan = first; plan.more; rounds++) {
      plan = reasons.plan(reports, explain, machines);
      applyAll(plan.groups);
    }
    expect(explained).toBe(500);
    expect(reasons.size).toBe(500);
    expect(rounds).toBe(Math.ceil(500 / (EXPLAIN_BUDGET / machines)));
  });
  it("counts Resources in the record like the other rules, with each machine's room", () => {
    const model = new SchedulerModel();
    model.setMachine({ id: "m1", metadata: {}, capacity: { cpus: 2000, memory: 1024 ** 3 } });
    model.setMachine({ id: "m2", metadata: { role: "web" } });
    model.setMachine({ id: "m3", metadata: {}, capacity: { cpus: 500, memory: 1024 ** 3 } });
    model.setUnit(unit("big.service", "CPUs=4"));
    const reasons = new UnscheduledReasons(keys, () => new Date("2026-01-01T00:00:00Z"));
    const plan = reasons.plan(model.reconcile().unscheduled, (n) => model.explain(n), 3);
    const record = writes(plan.groups)["/t/unscheduled/big.service"] as { summary: string; excludedBy: Record<string, number>; machines: { machineID: string; rule: string; detail: string }[] };
    expect(record.summary).toBe("no machine can run it (3 machines): 3 excluded by Resources");
    expect(record.excludedBy).toEqual({ Resources: 3 });
    expect(record.machines.map((m) => [m.machineID, m.rule, m.detail])).toEqual([
      ["m1", "Resources", "unit needs 4 CPUs, machine has 2 CPUs free of 2 CPUs"],
      ["m2", "Resources", "machine publishes no capacity (an older fleetd or fleet agent), so it takes no unit with CPU or memory needs"],
      ["m3", "Resources", "unit needs 4 CPUs, machine has 0.5 CPUs free of 0.5 CPUs"],
    ]);
  });
});
