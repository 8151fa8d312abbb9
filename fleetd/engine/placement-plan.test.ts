import { describe, expect, it } from "vitest";
import { Keys } from "../registry/keys";
import { ClusterMirror, emptyTouched } from "./cluster-mirror";
import { packBatches, planUnit, type OpGroup } from "./placement-plan";

const keys = new Keys("/p/");

function mirrorWith(units: Record<string, { desiredState: "inactive" | "loaded" | "launched"; global?: boolean }>, placements: Record<string, string> = {}): ClusterMirror {
  const m = new ClusterMirror(keys);
  const t = emptyTouched();
  let rev = 10;
  for (const [name, u] of Object.entries(units)) {
    m.apply({ type: "put", key: keys.unit(name), value: Buffer.from(JSON.stringify({ name, hash: "h1", desiredState: u.desiredState, global: u.global ?? false })), modRevision: rev++ }, t);
  }
  for (const [name, machine] of Object.entries(placements)) {
    m.apply({ type: "put", key: keys.placement(name), value: Buffer.from(machine), modRevision: rev++ }, t);
    m.apply({ type: "put", key: keys.schedule(machine, name), value: Buffer.from(JSON.stringify({ hash: "h1", desiredState: units[name]!.desiredState, text: "x" })), modRevision: rev++ }, t);
  }
  return m;
}

const text = (): string => "[Service]\nExecStart=/bin/true";
const describeOps = (g: OpGroup): string[] =>
  g.ops.map((o) => (o.request_put ? `put ${o.request_put.key!.toString()}` : `del ${o.request_delete_range!.key!.toString()}`));

describe("placement plan", () => {
  it("places a new unit create-only, guarded by the unit's revision, with its schedule entry in the same group", () => {
    const m = mirrorWith({ "a.service": { desiredState: "launched" } });
    const g = planUnit(m, "a.service", { placement: "m1", machines: ["m1"] }, text)!;
    expect(describeOps(g)).toEqual(["put /p/placement/a.service", "put /p/schedule/m1/a.service"]);
    expect(g.compares.map((c) => [c.key!.toString(), c.target, c.result])).toEqual([
      ["/p/placement/a.service", "Version", "Equal"],
      ["/p/units/a.service", "Mod", "Equal"],
    ]);
    g.apply();
    expect(m.placements.get("a.service")).toBe("m1");
    expect(planUnit(m, "a.service", { placement: "m1", machines: ["m1"] }, text)).toBeUndefined();
  });

  it("moves a unit with compare-on-value of the old placement and removes the old schedule entry", () => {
    const m = mirrorWith({ "a.service": { desiredState: "launched" } }, { "a.service": "m1" });
    const g = planUnit(m, "a.service", { placement: "m2", machines: ["m2"] }, text)!;
    expect(describeOps(g)).toEqual(["put /p/placement/a.service", "put /p/schedule/m2/a.service", "del /p/schedule/m1/a.service"]);
    expect(g.compares[0]).toMatchObject({ target: "Value", value: Buffer.from("m1") });
  });

  it("gives a global unit being rolled the body each machine is kept on (machineHashes), the unit's hash elsewhere", () => {
    const m = new ClusterMirror(keys);
    const t = emptyTouched();
    const record = { name: "g.service", hash: "h2", desiredState: "launched", global: true, machineHashes: { m1: "h1" } };
    m.apply({ type: "put", key: keys.unit("g.service"), value: Buffer.from(JSON.stringify(record)), modRevision: 5 }, t);
    const texts: Record<string, string> = { h1: "[Service]\nExecStart=/bin/v1", h2: "[Service]\nExecStart=/bin/v2" };
    const g = planUnit(m, "g.service", { placement: undefined, machines: ["m1", "m2"] }, (h) => texts[h])!;
    const entries = g.ops.map((o) => [o.request_put!.key!.toString(), JSON.parse(o.request_put!.value!.toString()) as { hash: string; text: string }]);
    expect(entries).toEqual([
      ["/p/schedule/m1/g.service", { hash: "h1", desiredState: "launched", text: texts.h1 }],
      ["/p/schedule/m2/g.service", { hash: "h2", desiredState: "launched", text: texts.h2 }],
    ]);
    g.apply();
    // The deploy controller moves m1 on: only its entry changes.
    m.apply({ type: "put", key: keys.unit("g.service"), value: Buffer.from(JSON.stringify({ ...record, machineHashes: undefined })), modRevision: 6 }, t);
    expect(describeOps(planUnit(m, "g.service", { placement: undefined, machines: ["m1", "m2"] }, (h) => texts[h])!)).toEqual(["put /p/schedule/m1/g.service"]);
  });

  it("unschedules an inactive unit everywhere", () => {
    const m = mirrorWith({ "a.service": { desiredState: "inactive" } }, { "a.service": "m1" });
    const g = planUnit(m, "a.service", { placement: undefined, machines: [] }, text)!;
    expect(describeOps(g)).toEqual(["del /p/placement/a.service", "del /p/schedule/m1/a.service"]);
  });

  it("updates the schedule entry when only the desired state changed", () => {
    const m = mirrorWith({ "a.service": { desiredState: "loaded" } }, { "a.service": "m1" });
    const t = emptyTouched();
    m.apply({ type: "put", key: keys.unit("a.service"), value: Buffer.from(JSON.stringify({ name: "a.service", hash: "h1", desiredState: "launched", global: false })), modRevision: 99 }, t);
    const g = planUnit(m, "a.service", { placement: "m1", machines: ["m1"] }, text)!;
    expect(describeOps(g)).toEqual(["put /p/schedule/m1/a.service"]);
    expect(JSON.parse(g.ops[0]!.request_put!.value!.toString())).toEqual({ hash: "h1", desiredState: "launched", text: text() });
  });

  it("packs groups within the op limit, counting the leader guard, and splits huge global groups", () => {
    const group = (n: number, ops: number, compares: number): OpGroup => ({
      unit: `u${n}`,
      machine: `m${n}`,
      compares: Array.from({ length: compares }, () => ({})),
      ops: Array.from({ length: ops }, () => ({})),
      apply: () => undefined,
    });
    const groups = Array.from({ length: 100 }, (_, i) => group(i, 2, 2));
    const batches = packBatches(groups, 128);
    expect(batches.map((b) => b.groups.length)).toEqual([63, 37]);
    for (const b of batches) expect(b.compares.length + 1).toBeLessThanOrEqual(128);
    const global = packBatches([group(0, 300, 0)], 128);
    expect(global.map((b) => b.ops.length)).toEqual([128, 128, 44]);
  });

  it("packs groups within a byte budget: a large unit's entries fill transactions sooner, a huge group goes alone", () => {
    const entry = (key: string, bytes: number) => ({ request_put: { key: Buffer.from(key), value: Buffer.alloc(bytes) } });
    const group = (n: number, bytes: number, compares = 1): OpGroup => ({
      unit: `u${n}`,
      machine: `m${n}`,
      compares: Array.from({ length: compares }, () => ({ key: Buffer.from(`/p/placement/u${n}`) })),
      ops: [entry(`/p/schedule/m${n}/u${n}`, bytes)],
      apply: () => undefined,
    });
    // 30 KB entries, 1 MiB budget: 34 per transaction (the op limit alone would allow 127).
    const batches = packBatches(Array.from({ length: 100 }, (_, i) => group(i, 30_000)), 128, 1, 1024 * 1024);
    expect(batches.map((b) => b.groups.length)).toEqual([34, 34, 32]);
    // A group over the budget with compares stays whole (placement and entry in one transaction), alone.
    const alone = packBatches([group(0, 100), group(1, 2_000_000), group(2, 100)], 128, 1, 1024 * 1024);
    expect(alone.map((b) => b.groups.map((g) => g.unit))).toEqual([["u0"], ["u1"], ["u2"]]);
    // A compare-free (global) group over the budget is split by bytes too.
    const global: OpGroup = { unit: "g", machine: "m0", compares: [], ops: Array.from({ length: 100 }, (_, i) => entry(`/p/schedule/m${i}/g`, 30_000)), apply: () => undefined };
    expect(packBatches([global], 128, 1, 1024 * 1024).map((b) => b.ops.length)).toEqual([34, 34, 32]);
  });
});
