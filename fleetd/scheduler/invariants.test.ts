/**
 * Randomized check of the scheduler's invariants: seeded random clusters go through random changes
 * (machines leaving and joining, metadata changes, desired-state changes, destroyed and new units),
 * and after every pass the placements are checked against the rules by an independent, naive
 * implementation written here, and the decisions are checked to turn the old placements into the new.
 */
import { describe, expect, it } from "vitest";
import type { UnitTargetState } from "../../lib/api/types";
import { buildUnit, globMatch } from "../../lib/unit/index";
import { SchedulerModel } from "./scheduler-model";
import type { Decision, SchedulerMachine, SchedulerUnit } from "./types";

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface World {
  machines: Map<string, SchedulerMachine>;
  units: Map<string, SchedulerUnit>;
  /** Units with CPU/memory needs and Spread=, machines with capacity. */
  resources: boolean;
}

function randomUnit(rand: () => number, i: number, names: readonly string[], resources = false): SchedulerUnit {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const group = `grp${Math.floor(rand() * 4)}`;
  const name = rand() < 0.4 ? `${group}@${i}.service` : `u${i}.service`;
  const lines: string[] = [];
  const r = rand();
  if (r < 0.1) lines.push("Global=true", `MachineMetadata=role=${pick(["a", "b"])}`);
  else if (r < 0.3) lines.push(`Conflicts=${group}@*.service`);
  else if (r < 0.4 && names.length > 0) lines.push(`MachineOf=${pick(names)}`);
  else if (r < 0.45 && names.length > 0) lines.push(`Replaces=${pick(names)}`);
  else if (r < 0.5) lines.push(`MachineID=m${Math.floor(rand() * 10)}`);
  if (rand() < 0.3 && !lines.some((l) => l.startsWith("MachineMetadata"))) lines.push(`MachineMetadata=zone=${pick(["1", "2"])}`);
  if (resources) {
    if (rand() < 0.7) lines.push(`CPUs=${pick(["0.25", "0.5", "1", "2"])}`);
    if (rand() < 0.7) lines.push(`Memory=${pick(["128M", "512M", "1G", "3G"])}`);
    if (name.includes("@") && rand() < 0.6 && !lines.some((l) => l.startsWith("Global"))) lines.push(`Spread=${pick(["zone", "role", "zone role"])}`);
  }
  const desired: UnitTargetState = rand() < 0.15 ? "inactive" : rand() < 0.5 ? "loaded" : "launched";
  const text = `[Service]\nExecStart=/bin/true\n${lines.length === 0 ? "" : `\n[X-Fleet]\n${lines.join("\n")}\n`}`;
  return { ...buildUnit(name, text), desiredState: desired };
}

function randomMachine(rand: () => number, i: number, resources = false): SchedulerMachine {
  const metadata = { role: rand() < 0.5 ? "a" : "b", zone: rand() < 0.5 ? "1" : "2" };
  if (!resources) return { id: `m${i}`, metadata };
  return { id: `m${i}`, metadata, capacity: { cpus: 1000 * (1 + Math.floor(rand() * 4)), memory: 1024 ** 3 * (1 + Math.floor(rand() * 4)) } };
}

type Snapshot = { placements: Map<string, string>; globals: Set<string> };

function snapshot(model: SchedulerModel, world: World, extraNames: Iterable<string>): Snapshot {
  const placements = new Map<string, string>();
  const globals = new Set<string>();
  for (const name of new Set([...world.units.keys(), ...extraNames])) {
    const at = model.placementOf(name);
    if (at !== undefined) placements.set(name, at);
    for (const id of model.globalMachines(name)) globals.add(`${name}@${id}`);
  }
  return { placements, globals };
}

/**
 * Replays the decisions on the snapshot they were made from. Along the way, checks least-loaded
 * placement for units without any [X-Fleet] requirement: no machine that could take the unit had a
 * lower (load, ID) than the one chosen, loads counting global units too.
 */
function apply(before: Snapshot, decisions: readonly Decision[], world: World): Snapshot {
  const placements = new Map(before.placements);
  const globals = new Set(before.globals);
  const unitsOn = (id: string): string[] => [
    ...[...placements].filter(([, m]) => m === id).map(([n]) => n),
    ...[...globals].filter((k) => k.endsWith(`@${id}`)).map((k) => k.slice(0, k.length - id.length - 1)),
  ];
  for (const d of decisions) {
    const u = world.units.get(d.unit);
    const r = u?.requirements;
    if (!world.resources && d.kind === "schedule" && !d.global && r !== undefined && r.machineId === undefined && r.machineOf.length === 0 &&
        r.machineMetadata.size === 0 && r.conflicts.length === 0 && r.replaces.length === 0) {
      const eligible = [...world.machines.keys()].filter((id) => unitsOn(id).every((other) => {
        const o = world.units.get(other)?.requirements;
        return !(o?.conflicts.some((p) => globMatch(p, d.unit)) ?? false) && !(o?.replaces.some((p) => globMatch(p, d.unit)) ?? false);
      }));
      const rank = (id: string): [number, string] => [unitsOn(id).length, id];
      const best = eligible.sort((a, b) => rank(a)[0] - rank(b)[0] || (a < b ? -1 : 1))[0];
      expect(d.machineId, `${d.unit} should go to the least-loaded machine`).toBe(best);
    }
    if (d.global) {
      if (d.kind === "schedule") globals.add(`${d.unit}@${d.machineId}`);
      else expect(globals.delete(`${d.unit}@${d.machineId}`), `unschedule of absent ${d.unit}@${d.machineId}`).toBe(true);
    } else if (d.kind === "schedule") {
      expect(placements.has(d.unit), `${d.unit} scheduled twice`).toBe(false);
      placements.set(d.unit, d.machineId);
    } else {
      expect(placements.get(d.unit)).toBe(d.machineId);
      placements.delete(d.unit);
    }
  }
  return { placements, globals };
}

/** The rules, naively and independently: every placed unit must be allowed where it is. */
function checkRules(world: World, snap: Snapshot): void {
  const on = new Map<string, string[]>();
  for (const [name, id] of snap.placements) on.set(id, [...(on.get(id) ?? []), name]);
  for (const key of snap.globals) {
    const [name, id] = key.split("@m") as [string, string];
    on.set(`m${id}`, [...(on.get(`m${id}`) ?? []), name]);
  }
  const metadataOk = (u: SchedulerUnit, m: SchedulerMachine): boolean =>
    [...u.requirements.machineMetadata].every(([k, vs]) => m.metadata[k] !== undefined && vs.includes(m.metadata[k]));
  for (const [id, names] of on) {
    const m = world.machines.get(id);
    expect(m, `units on missing machine ${id}`).toBeDefined();
    // Never overcommitted: the needs of the units on a machine fit in its capacity.
    const need = names.reduce((acc, n) => ({ cpus: acc.cpus + (world.units.get(n)?.requirements.cpus ?? 0), memory: acc.memory + (world.units.get(n)?.requirements.memory ?? 0) }), { cpus: 0, memory: 0 });
    if (need.cpus > 0 || need.memory > 0) {
      expect(m?.capacity, `units with needs on ${id}, which has no capacity`).toBeDefined();
      expect(need.cpus, `${id} CPUs overcommitted`).toBeLessThanOrEqual(m?.capacity?.cpus ?? 0);
      expect(need.memory, `${id} memory overcommitted`).toBeLessThanOrEqual(m?.capacity?.memory ?? 0);
    }
    for (const name of names) {
      const u = world.units.get(name);
      expect(u, `destroyed unit ${name} still placed`).toBeDefined();
      if (u === undefined || m === undefined) continue;
      expect(u.desiredState, `${name} inactive but placed`).not.toBe("inactive");
      expect(metadataOk(u, m), `${name} on ${id} breaks MachineMetadata`).toBe(true);
      const req = u.requirements;
      if (req.machineId !== undefined) expect(id).toBe(req.machineId);
      for (const peer of req.machineOf) expect(names, `${name} on ${id} without its MachineOf ${peer}`).toContain(peer);
      for (const other of names) {
        if (other === name) continue;
        const o = world.units.get(other);
        const conflict = req.conflicts.some((p) => globMatch(p, other)) || (o?.requirements.conflicts.some((p) => globMatch(p, name)) ?? false);
        expect(conflict, `${name} and ${other} conflict on ${id}`).toBe(false);
        if (!u.requirements.global && o !== undefined) {
          const replacedBy = o.requirements.replaces.some((p) => globMatch(p, name)) && !req.replaces.some((p) => globMatch(p, other));
          expect(replacedBy, `${name} stays beside its replacer ${other} on ${id}`).toBe(false);
        }
      }
    }
  }
  // At most one unit of a circular Replaces pair is placed, cluster-wide.
  const placed = [...snap.placements.keys()];
  for (const a of placed) {
    for (const b of placed) {
      const ra = world.units.get(a)?.requirements.replaces ?? [];
      const rb = world.units.get(b)?.requirements.replaces ?? [];
      expect(a !== b && ra.some((p) => globMatch(p, b)) && rb.some((p) => globMatch(p, a)), `circular Replaces pair ${a} and ${b} both placed`).toBe(false);
    }
  }
}

describe.each([false, true])("scheduler invariants under random changes (resources and spread: %s)", (resources) => {
  it.each(Array.from({ length: Number(process.env.SCHEDULER_SEEDS ?? 8) }, (_, i) => i + 1))("seed %i", (seed) => {
    const rand = mulberry32(seed);
    const world: World = { machines: new Map(), units: new Map(), resources };
    const model = new SchedulerModel();
    let nextMachine = 0;
    let nextUnit = 0;
    const everSeen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const m = randomMachine(rand, nextMachine++, resources);
      world.machines.set(m.id, m);
      model.setMachine(m);
    }
    for (let step = 0; step < 40; step++) {
      const changes = 1 + Math.floor(rand() * 6);
      for (let c = 0; c < changes; c++) {
        const r = rand();
        const unitNames = [...world.units.keys()];
        if (r < 0.45 || unitNames.length === 0) {
          const u = randomUnit(rand, nextUnit++, unitNames, resources);
          if (world.units.has(u.name)) continue;
          world.units.set(u.name, u);
          everSeen.add(u.name);
          model.setUnit(u);
        } else if (r < 0.6) {
          const name = unitNames[Math.floor(rand() * unitNames.length)] as string;
          const u = world.units.get(name) as SchedulerUnit;
          const next = { ...u, desiredState: (u.desiredState === "inactive" ? "launched" : "inactive") as UnitTargetState };
          world.units.set(name, next);
          model.setUnit(next);
        } else if (r < 0.7) {
          const name = unitNames[Math.floor(rand() * unitNames.length)] as string;
          world.units.delete(name);
          model.removeUnit(name);
        } else if (r < 0.8 && world.machines.size > 1) {
          const ids = [...world.machines.keys()];
          const id = ids[Math.floor(rand() * ids.length)] as string;
          world.machines.delete(id);
          model.removeMachine(id);
        } else if (r < 0.9) {
          const m = randomMachine(rand, nextMachine++ % 12, resources);
          world.machines.set(m.id, m);
          model.setMachine(m);
        } else {
          const ids = [...world.machines.keys()];
          const id = ids[Math.floor(rand() * ids.length)] as string;
          const m = randomMachine(rand, Number(id.slice(1)), resources);
          world.machines.set(id, m);
          model.setMachine(m);
        }
      }
      const before = snapshot(model, world, everSeen);
      const result = model.reconcile();
      const after = snapshot(model, world, everSeen);
      const replayed = apply(before, result.decisions, world);
      expect(replayed.placements).toEqual(after.placements);
      expect(replayed.globals).toEqual(after.globals);
      checkRules(world, after);
      // Every unit that wants a machine and has none is reported, even when this pass skipped it.
      const reported = new Set(result.unscheduled.map((u) => u.unit));
      for (const u of world.units.values()) {
        if (u.requirements.global || u.desiredState === "inactive" || model.placementOf(u.name) !== undefined) continue;
        expect(reported.has(u.name), `${u.name} waits without a report`).toBe(true);
      }
      // Invariant 4: every unit left unscheduled has a reason for every machine.
      for (const u of result.unscheduled) {
        expect(model.placementOf(u.unit)).toBeUndefined();
        expect(model.explain(u.unit)?.length, `explanation of ${u.unit}`).toBe(world.machines.size);
        const counted = Object.values(u.excludedBy).reduce((a, b) => a + b, 0);
        expect(counted).toBe(world.machines.size);
      }
    }
  });
});

describe("spread invariant", () => {
  it.each([1, 2, 3, 4, 5, 6])("seed %i: instances of a Spread=zone template stay within 1 of each other per zone while capacity allows", (seed) => {
    const rand = mulberry32(seed * 7919);
    const model = new SchedulerModel();
    const zones = ["a", "b", "c"].slice(0, 2 + Math.floor(rand() * 2));
    const machines: SchedulerMachine[] = [];
    for (let i = 0; i < 3 + Math.floor(rand() * 8); i++) {
      const m: SchedulerMachine = { id: `m${i}`, metadata: { zone: zones[Math.floor(rand() * zones.length)] ?? "a" }, capacity: { cpus: 64_000, memory: 64 * 1024 ** 3 } };
      machines.push(m);
      model.setMachine(m);
    }
    const used = new Set(machines.map((m) => m.metadata.zone));
    let next = 0;
    for (let step = 0; step < 15; step++) {
      for (let c = 0; c < 1 + Math.floor(rand() * 5); c++) {
        const cpus = ["0.5", "1", "2"][Math.floor(rand() * 3)] ?? "1";
        model.setUnit({ ...buildUnit(`web@${next++}.service`, `[Service]\nExecStart=/bin/true\n[X-Fleet]\nSpread=zone\nCPUs=${cpus}\n`), desiredState: "launched" });
        // Noise: units outside the template load machines unevenly, which must not skew the spread.
        if (rand() < 0.5) model.setUnit({ ...buildUnit(`noise${next++}.service`, `[X-Fleet]\nMemory=${Math.floor(rand() * 8) + 1}G\n`), desiredState: "launched" });
      }
      model.reconcile();
      const perZone = new Map([...used].map((z) => [z, 0]));
      for (let i = 0; i < next; i++) {
        const at = model.placementOf(`web@${i}.service`);
        if (at === undefined) continue;
        const zone = machines.find((m) => m.id === at)?.metadata.zone ?? "";
        perZone.set(zone, (perZone.get(zone) ?? 0) + 1);
      }
      const counts = [...perZone.values()];
      expect(Math.max(...counts) - Math.min(...counts), JSON.stringify(Object.fromEntries(perZone))).toBeLessThanOrEqual(1);
    }
  });
});
