/**
 * Turns the scheduler model's view (where each unit should be) into guarded etcd operations, one
 * group per unit so a unit's placement and its schedule entries always change in the same
 * transaction, and packs the groups into as few transactions as etcd's op limit allows.
 */
import type { ICompare, IRequestOp } from "etcd3";
import { hashOn, type ScheduleRecord } from "../registry/keys";
import { compareBytes, MAX_TXN_BYTES, opBytes } from "../registry/txn-limits";
import type { ClusterMirror, ScheduleEntry } from "./cluster-mirror";

/** Everything that must change for one unit, and how to record it in the mirror once written. */
export interface OpGroup {
  unit: string;
  /** The machine the group mostly concerns (for ordering batches by machine). */
  machine: string;
  compares: ICompare[];
  ops: IRequestOp[];
  /** Mirror updates to apply when the transaction succeeded. */
  apply: () => void;
}

/** Where the model wants a unit: its placement (non-global) and the machines that must have an entry. */
export interface Target {
  placement: string | undefined;
  machines: readonly string[];
}

/**
 * The group for one unit: placement change guarded by create-only / compare-on-value (a unit is never
 * placed twice), the unit record's revision (we decided from that version), and schedule entries.
 * Returns undefined when etcd already matches.
 */
export function planUnit(mirror: ClusterMirror, name: string, target: Target, textOf: (hash: string) => string | undefined): OpGroup | undefined {
  const k = mirror.keys;
  const unit = mirror.units.get(name);
  const compares: ICompare[] = [];
  const ops: IRequestOp[] = [];
  const effects: (() => void)[] = [];
  const current = mirror.placements.get(name);
  const placementKey = Buffer.from(k.placement(name));
  if (target.placement !== current) {
    if (current === undefined) compares.push({ key: placementKey, target: "Version", result: "Equal", version: 0 });
    else compares.push({ key: placementKey, target: "Value", result: "Equal", value: Buffer.from(current) });
    if (target.placement === undefined) ops.push({ request_delete_range: { key: placementKey } });
    else {
      ops.push({ request_put: { key: placementKey, value: Buffer.from(target.placement) } });
      // Place only the version of the unit we decided from; a concurrent change re-runs the decision.
      if (unit) compares.push({ key: Buffer.from(k.unit(name)), target: "Mod", result: "Equal", mod_revision: unit.modRevision });
    }
    const placement = target.placement;
    effects.push(() => mirror.setPlacement(name, placement));
  }
  const scheduled = unit && unit.record.desiredState !== "inactive" ? unit.record : undefined;
  const wanted = new Set(scheduled ? target.machines : []);
  if (scheduled) {
    for (const m of wanted) {
      // A global unit being rolled keeps some machines on their old body (`machineHashes`).
      const want: ScheduleEntry = { hash: hashOn(scheduled, m), desiredState: scheduled.desiredState };
      const have = mirror.schedule.get(m)?.get(name);
      if (have && have.hash === want.hash && have.desiredState === want.desiredState) continue;
      const text = textOf(want.hash);
      if (text === undefined) continue; // body not loaded yet: the engine loads it and retries
      const record: ScheduleRecord = { hash: want.hash, desiredState: scheduled.desiredState, text };
      ops.push({ request_put: { key: Buffer.from(k.schedule(m, name)), value: Buffer.from(JSON.stringify(record)) } });
      effects.push(() => mirror.setSchedule(m, name, want));
    }
  }
  for (const m of mirror.scheduledOn.get(name) ?? []) {
    if (wanted.has(m)) continue;
    ops.push({ request_delete_range: { key: Buffer.from(k.schedule(m, name)) } });
    effects.push(() => mirror.setSchedule(m, name, undefined));
  }
  if (ops.length === 0) return undefined;
  const machine = target.placement ?? target.machines[0] ?? current ?? "";
  return { unit: name, machine, compares, ops, apply: () => effects.forEach((e) => e()) };
}

/** A transaction's worth of groups. */
export interface Batch {
  groups: OpGroup[];
  compares: ICompare[];
  ops: IRequestOp[];
}

/**
 * Packs groups into batches of at most `maxOps` compares and `maxOps` operations, counting the
 * leader guard, and at most `maxBytes` of keys and values (schedule entries carry the unit's text:
 * 64 entries of a 30 KB unit are more than etcd accepts in one request). A group too big for one
 * transaction (a global unit on many machines: it has no compares) is split into several groups
 * first; a single operation larger than `maxBytes` goes in a batch of its own.
 */
export function packBatches(groups: readonly OpGroup[], maxOps: number, reservedCompares = 1, maxBytes = MAX_TXN_BYTES): Batch[] {
  const batches: Batch[] = [];
  let cur: Batch = { groups: [], compares: [], ops: [] };
  let bytes = 0;
  const flush = (): void => {
    if (cur.groups.length > 0) batches.push(cur);
    cur = { groups: [], compares: [], ops: [] };
    bytes = 0;
  };
  for (const g of groups.flatMap((g) => splitGroup(g, maxOps, maxBytes))) {
    const size = groupBytes(g);
    if (cur.ops.length + g.ops.length > maxOps || cur.compares.length + g.compares.length + reservedCompares > maxOps || bytes + size > maxBytes) flush();
    cur.groups.push(g);
    cur.compares.push(...g.compares);
    cur.ops.push(...g.ops);
    bytes += size;
  }
  flush();
  return batches;
}

function groupBytes(g: OpGroup): number {
  let n = 0;
  for (const c of g.compares) n += compareBytes(c);
  for (const op of g.ops) n += opBytes(op);
  return n;
}

function splitGroup(g: OpGroup, maxOps: number, maxBytes: number): OpGroup[] {
  // A group with compares (a placement and its schedule entries: a few operations) must stay in one
  // transaction, however large. Only compare-free groups (a global unit's entries) get big enough to
  // split; each chunk applies the whole group's effects, harmlessly repeated (mirror updates are
  // idempotent), once the last is written.
  if (g.compares.length > 0 || (g.ops.length <= maxOps && groupBytes(g) <= maxBytes)) return [g];
  const chunks: IRequestOp[][] = [];
  let chunk: IRequestOp[] = [];
  let bytes = 0;
  for (const op of g.ops) {
    const size = opBytes(op);
    if (chunk.length > 0 && (chunk.length + 1 > maxOps || bytes + size > maxBytes)) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(op);
    bytes += size;
  }
  chunks.push(chunk);
  return chunks.map((ops, i) => ({ unit: g.unit, machine: g.machine, compares: [], ops, apply: i === chunks.length - 1 ? g.apply : () => undefined }));
}
