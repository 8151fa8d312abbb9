/**
 * Bench of the engine's unscheduled-reason bookkeeping (no etcd): the cost the engine adds to its
 * passes to record why units have no machine (`fleetd/engine/unscheduled-reasons.ts`).
 *
 *   npx tsx bench/unscheduled-reasons.ts [--machines 1000] [--refused 2000]
 *
 * Scenario: more self-conflicting instances than machines (the refused ones are the worst case:
 * the scheduler refuses them without walking machines, the explanation walks every machine). Times
 * the scheduler's first pass, then the reason planning per pass until every refused unit is
 * explained (budgeted per pass), then an idle pass (nothing may be planned). Last line: JSON.
 */
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { buildUnit } from "../lib/unit/index";
import { SchedulerModel } from "../fleetd/scheduler/index";
import { Keys } from "../fleetd/registry/keys";
import { UnscheduledReasons } from "../fleetd/engine/unscheduled-reasons";

const { values } = parseArgs({ options: { machines: { type: "string", default: "1000" }, refused: { type: "string", default: "2000" } } });
const machineCount = Number(values.machines);
const refusedCount = Number(values.refused);

const model = new SchedulerModel();
for (let i = 0; i < machineCount; i++) model.setMachine({ id: `m${String(i).padStart(31, "0")}`, metadata: { role: i % 2 === 0 ? "web" : "db" } });
const text = "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nConflicts=web@*.service\n";
for (let i = 0; i < machineCount + refusedCount; i++) model.setUnit({ ...buildUnit(`web@${i}.service`, text), desiredState: "launched" });

let t = performance.now();
let result = model.reconcile();
const firstPassMs = performance.now() - t;

const reasons = new UnscheduledReasons(new Keys("/bench/"));
const passMs: number[] = [];
let writes = 0;
let bytes = 0;
for (let more = true; more; ) {
  t = performance.now();
  result = model.reconcile();
  const plan = reasons.plan(result.unscheduled, (n) => model.explain(n), machineCount);
  passMs.push(performance.now() - t);
  for (const g of plan.groups) {
    writes += g.ops.length;
    for (const op of g.ops) bytes += op.request_put?.value?.length ?? 0;
    g.apply();
  }
  more = plan.more;
}
t = performance.now();
const idlePlan = reasons.plan(model.reconcile().unscheduled, (n) => model.explain(n), machineCount);
const idleMs = performance.now() - t;

const rows: [string, string][] = [
  [`scheduler first pass (${machineCount} placed, ${result.unscheduled.length} refused)`, `${firstPassMs.toFixed(0)} ms`],
  [`passes until every refused unit is explained`, `${passMs.length} (max ${Math.max(...passMs).toFixed(0)} ms, total ${passMs.reduce((a, b) => a + b, 0).toFixed(0)} ms)`],
  [`records written`, `${writes} (${(bytes / writes / 1024).toFixed(1)} KiB each on average)`],
  [`idle pass after that (reconcile + plan)`, `${idleMs.toFixed(2)} ms, ${idlePlan.groups.length} writes`],
];
const width = Math.max(...rows.map(([k]) => k.length));
for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
console.log(
  JSON.stringify({
    machines: machineCount, refused: result.unscheduled.length, first_pass_ms: Math.round(firstPassMs), explain_passes: passMs.length,
    max_explain_pass_ms: Math.round(Math.max(...passMs)), records: writes, avg_record_bytes: Math.round(bytes / writes), idle_ms: Number(idleMs.toFixed(2)),
  }),
);
