/**
 * Invariant 4 beyond the leader process: for each unit the scheduler could not place, the leading
 * engine records why at `P/unscheduled/<name>` (summary, count per rule, the first excluded machines
 * with their rule), so the API on any machine and fleetctl can show it.
 *
 * Cost rules: a record is written only when its content changes and deleted only when it exists, so a
 * unit that is placed at once never costs a write; the writes are op groups packed into the engine's
 * placement transactions. Per-machine detail (`SchedulerModel.explain`, one rule check per machine)
 * is computed only for units the scheduler re-evaluated (it hands out a new report object then), and
 * only up to a budget per pass: the rest follow in the next passes, so a flood of refusals on a big
 * cluster cannot stall placement.
 */
import type { ApiMachineExclusion } from "../../lib/api/types";
import { EXCLUSION_RULES, UNSCHEDULED_MACHINES_SHOWN } from "../../lib/api/types";
import type { StoredKv } from "../registry/etcd-store";
import { parseRecord, type Keys, type UnscheduledRecord } from "../registry/keys";
import type { MachineExclusion, UnscheduledUnit } from "../scheduler/types";
import type { OpGroup } from "./placement-plan";

/** Longest detail kept per machine. */
const MAX_DETAIL_CHARS = 200;
/**
 * Largest record: 128 of them (etcd's op limit per transaction) stay well under etcd's 1.5 MiB request
 * limit, with room for the placement writes sharing the transaction.
 */
export const MAX_RECORD_BYTES = 6 * 1024;
/** Rule checks (units explained × machines) per pass before the remaining explanations wait a pass. */
export const EXPLAIN_BUDGET = 100_000;

/** What changed, as op groups for the engine's placement transactions. */
export interface ReasonPlan {
  groups: OpGroup[];
  /** Some units still need a fresh explanation (budget spent): run another pass soon. */
  more: boolean;
}

interface Stored {
  /** The record without `since`: what "the reason changed" compares. */
  content: string;
  since: string;
}

/** The engine's copy of `P/unscheduled/`, and the writes that keep it in line with the scheduler. */
export class UnscheduledReasons {
  private readonly stored = new Map<string, Stored>();
  /** The scheduler report each unit's stored record was computed from (a new object = re-evaluated). */
  private readonly explained = new Map<string, UnscheduledUnit>();

  constructor(
    private readonly keys: Keys,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Number of records in etcd (as last loaded or written). */
  get size(): number {
    return this.stored.size;
  }

  /** The stored record's content for `unit` (tests, diagnostics). */
  storedContent(unit: string): string | undefined {
    return this.stored.get(unit)?.content;
  }

  /** Replaces the copy with a snapshot read of `P/unscheduled/` (at every resync). */
  load(kvs: readonly StoredKv[]): void {
    this.stored.clear();
    this.explained.clear();
    for (const kv of kvs) {
      const name = kv.key.slice(this.keys.unscheduledAll.length);
      try {
        const record = parseRecord<UnscheduledRecord>(kv.key, kv.value);
        this.stored.set(name, { content: contentOf(record), since: record.since });
      } catch {
        // Unreadable: keep it known with a content nothing matches, so it is rewritten or deleted.
        this.stored.set(name, { content: "", since: "" });
      }
    }
  }

  /**
   * Plans the writes for one pass's `unscheduled` list (the scheduler's full, sorted list of refused
   * units): a record for each re-evaluated unit whose reason changed, a delete for each recorded unit
   * that is no longer refused (placed, destroyed, inactive). `machineCount` prices one explanation.
   */
  plan(unscheduled: readonly UnscheduledUnit[], explain: (unit: string) => MachineExclusion[] | undefined, machineCount: number): ReasonPlan {
    const groups: OpGroup[] = [];
    const current = new Set<string>();
    let budget = EXPLAIN_BUDGET;
    let more = false;
    for (const report of unscheduled) {
      current.add(report.unit);
      if (this.explained.get(report.unit) === report) continue;
      if (budget <= 0) {
        more = true;
        continue;
      }
      budget -= Math.max(1, machineCount);
      const record = buildRecord(report, explain(report.unit) ?? [], "");
      const content = contentOf(record);
      const stored = this.stored.get(report.unit);
      if (stored?.content === content) {
        this.explained.set(report.unit, report);
        continue;
      }
      const since = this.now().toISOString();
      const key = Buffer.from(this.keys.unscheduled(report.unit));
      groups.push({
        unit: report.unit,
        machine: "",
        compares: [],
        ops: [{ request_put: { key, value: Buffer.from(JSON.stringify({ ...record, since })) } }],
        apply: () => {
          this.stored.set(report.unit, { content, since });
          this.explained.set(report.unit, report);
        },
      });
    }
    for (const name of this.explained.keys()) if (!current.has(name)) this.explained.delete(name);
    for (const name of this.stored.keys()) {
      if (current.has(name)) continue;
      groups.push({
        unit: name,
        machine: "",
        compares: [],
        ops: [{ request_delete_range: { key: Buffer.from(this.keys.unscheduled(name)) } }],
        apply: () => {
          this.stored.delete(name);
          this.explained.delete(name);
        },
      });
    }
    return { groups, more };
  }
}

/** The record for a report and its per-machine explanation, bounded in entries and bytes. */
export function buildRecord(report: UnscheduledUnit, exclusions: readonly MachineExclusion[], since: string): UnscheduledRecord {
  const excludedBy: Record<string, number> = {};
  for (const rule of EXCLUSION_RULES) {
    const n = report.excludedBy[rule];
    if (n !== undefined && n > 0) excludedBy[rule] = n;
  }
  const sorted = [...exclusions].sort((a, b) => (a.machineId < b.machineId ? -1 : a.machineId > b.machineId ? 1 : 0));
  const machines: ApiMachineExclusion[] = sorted.slice(0, UNSCHEDULED_MACHINES_SHOWN).map((e) => ({
    machineID: e.machineId,
    rule: e.rule,
    detail: e.detail.length > MAX_DETAIL_CHARS ? `${e.detail.slice(0, MAX_DETAIL_CHARS - 1)}…` : e.detail,
  }));
  const record: UnscheduledRecord = { summary: report.reason, excludedBy, machines, moreMachines: sorted.length - machines.length, since };
  // Long machine IDs or details: drop entries from the end until the record fits.
  while (machines.length > 0 && Buffer.byteLength(JSON.stringify(record)) > MAX_RECORD_BYTES) {
    machines.pop();
    record.moreMachines++;
  }
  return record;
}

function contentOf(record: UnscheduledRecord): string {
  return JSON.stringify([record.summary, record.excludedBy, record.machines, record.moreMachines]);
}
