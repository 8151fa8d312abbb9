/**
 * Bench of the pure scheduler (no etcd): builds units and machines, then times `SchedulerModel`
 * passes in one run. Prints a table and, last, one JSON line.
 *
 *   npx tsx bench/scheduler-pure.ts [--units 10000] [--machines 1000]
 *
 * Scenarios: one pass placing every unit at once; the same units arriving in batches of 100 (the
 * engine calls reconcile per batch of watch events); losing 10 % of the machines; a mix of
 * constrained units (metadata, conflicts, MachineOf, globals); more self-conflicting instances than
 * machines (the refused ones must not be re-checked on every later pass).
 */
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { buildUnit, type Unit } from "../lib/unit/index";
import { SchedulerModel, type SchedulerMachine } from "../fleetd/scheduler/index";

const { values } = parseArgs({ options: { units: { type: "string", default: "10000" }, machines: { type: "string", default: "1000" } } });
const unitCount = Number(values.units);
const machineCount = Number(values.machines);

function machines(n: number): SchedulerMachine[] {
  return Array.from({ length: n }, (_, i) => ({ id: `m${String(i).padStart(31, "0")}`, metadata: { role: i % 2 === 0 ? "web" : "db", zone: `z${i % 3}` } }));
}

function plainUnits(n: number): Unit[] {
  const template = "[Service]\nExecStart=/bin/sleep infinity\n";
  return Array.from({ length: n }, (_, i) => buildUnit(`u${i}.service`, template));
}

function mixedUnits(n: number): Unit[] {
  const out: Unit[] = [];
  for (let i = 0; i < n; i++) {
    const kind = i % 5;
    const xf =
      kind === 1 ? "MachineMetadata=role=web\n" :
      kind === 2 ? `Conflicts=app${i % 50}@*.service\n` :
      kind === 3 ? `MachineOf=app${i - 3}@x.service\n` : "";
    const name = kind === 2 ? `app${i % 50}@${i}.service` : kind === 0 ? `app${i}@x.service` : `u${i}.service`;
    out.push(buildUnit(name, `[Service]\nExecStart=/bin/true\n${xf === "" ? "" : `\n[X-Fleet]\n${xf}`}`));
  }
  out.push(buildUnit("global-a.service", "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=db\n"));
  return out;
}

function time<T>(fn: () => T): { ms: number; value: T } {
  const start = performance.now();
  const value = fn();
  return { ms: performance.now() - start, value };
}

const rows: Array<[string, string]> = [];
const ms = machines(machineCount);

// 1. Everything in one pass.
const built = time(() => plainUnits(unitCount));
rows.push([`buildUnit x${unitCount}`, `${built.ms.toFixed(0)} ms`]);
const one = new SchedulerModel();
for (const m of ms) one.setMachine(m);
const onePass = time(() => {
  for (const u of built.value) one.setUnit({ ...u, desiredState: "launched" });
  return one.reconcile();
});
const loads = ms.map((m) => one.unitsOn(m.id).length);
rows.push([`one pass: ${unitCount} units on ${machineCount} machines`, `${onePass.ms.toFixed(0)} ms (${onePass.value.decisions.length} decisions, load ${Math.min(...loads)}..${Math.max(...loads)})`]);

// 2. Batches of 100.
const batched = new SchedulerModel();
for (const m of ms) batched.setMachine(m);
const batchedRun = time(() => {
  let decisions = 0;
  for (let i = 0; i < built.value.length; i += 100) {
    for (const u of built.value.slice(i, i + 100)) batched.setUnit({ ...u, desiredState: "launched" });
    decisions += batched.reconcile().decisions.length;
  }
  return decisions;
});
rows.push([`batches of 100 (${Math.ceil(unitCount / 100)} passes)`, `${batchedRun.ms.toFixed(0)} ms (${batchedRun.value} decisions)`]);

// 3. Lose 10 % of the machines.
const lost = ms.filter((_, i) => i % 10 === 0);
const lossRun = time(() => {
  for (const m of lost) batched.removeMachine(m.id);
  return batched.reconcile();
});
rows.push([`lose ${lost.length} machines`, `${lossRun.ms.toFixed(0)} ms (${lossRun.value.decisions.length} decisions)`]);

// 4. Mixed constraints.
const mixed = mixedUnits(unitCount);
const mixedModel = new SchedulerModel();
for (const m of ms) mixedModel.setMachine(m);
const mixedRun = time(() => {
  for (const u of mixed) mixedModel.setUnit({ ...u, desiredState: "launched" });
  return mixedModel.reconcile();
});
rows.push([`mixed constraints (${mixed.length} units, 1 global)`, `${mixedRun.ms.toFixed(0)} ms (${mixedRun.value.decisions.length} decisions, ${mixedRun.value.unscheduled.length} unscheduled)`]);
const idle = time(() => mixedModel.reconcile());
rows.push(["idle pass after that", `${idle.ms.toFixed(2)} ms (${idle.value.decisions.length} decisions)`]);

// 5. More self-conflicting instances than machines: the refused ones must not cost every pass.
const conflicted = new SchedulerModel();
for (const m of ms) conflicted.setMachine(m);
const instances = Math.min(unitCount, machineCount * 3);
const webText = "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nConflicts=web@*.service\n";
for (let i = 0; i < instances; i++) conflicted.setUnit({ ...buildUnit(`web@${i}.service`, webText), desiredState: "launched" });
const firstConflicted = time(() => conflicted.reconcile());
rows.push([`${instances} web@ instances with Conflicts=web@*: first pass`, `${firstConflicted.ms.toFixed(0)} ms (${firstConflicted.value.decisions.length} placed, ${firstConflicted.value.unscheduled.length} refused)`]);
conflicted.setUnit({ ...buildUnit("other.service", "[Service]\nExecStart=/bin/true\n"), desiredState: "launched" });
const nextConflicted = time(() => conflicted.reconcile());
rows.push(["  next pass (one new unrelated unit)", `${nextConflicted.ms.toFixed(2)} ms (${nextConflicted.value.decisions.length} decisions)`]);

const width = Math.max(...rows.map(([k]) => k.length));
for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
console.log(JSON.stringify({
  units: unitCount, machines: machineCount,
  one_pass_ms: Math.round(onePass.ms), batched_ms: Math.round(batchedRun.ms), machine_loss_ms: Math.round(lossRun.ms),
  mixed_ms: Math.round(mixedRun.ms), idle_pass_ms: Number(idle.ms.toFixed(2)),
  refused_first_pass_ms: Math.round(firstConflicted.ms), refused_next_pass_ms: Number(nextConflicted.ms.toFixed(2)),
}));
