/**
 * Packs one rollout step's writes into transactions etcd accepts: at most `--max-txn-ops` compares and
 * as many operations, about 1 MiB of keys and values, and no key twice. The controller sends them in
 * order, each behind the step's guards (the leader key, the rollout record's revision), and stops at
 * the first that fails. Only the last carries the rollout record (and, when the rollout ends, the
 * template), so an earlier one that landed without it leaves instances on their new body and not yet
 * marked pending: the next step marks them, with a fresh deadline, as it does after a leader change
 * in the middle of a step.
 */
import type { ICompare, IRequestOp } from "etcd3";
import { compareBytes, DEFAULT_MAX_TXN_OPS, MAX_TXN_BYTES, opBytes } from "../registry/txn-limits";

/** One write of a step: a unit's record and the compare that guards it, and the body it points to. */
export interface StepWrite {
  op: IRequestOp;
  compare?: ICompare;
  /** `P/bodies/<hash>`, written in the same transaction (once per transaction). */
  body?: { hash: string; op: IRequestOp };
}

export interface StepTransaction {
  /** The writes' compares (the step's guards come on top). */
  compares: ICompare[];
  ops: IRequestOp[];
}

export interface StepLimits {
  /** etcd's `--max-txn-ops`, for compares and for operations. */
  maxOps: number;
  /** Bytes of keys and values. */
  maxBytes: number;
  /** The step's guards: compares every transaction carries besides the writes'. */
  guards: ICompare[];
}

interface Open extends StepTransaction {
  bytes: number;
  bodies: Set<string>;
}

/**
 * The step's transactions: `writes` in order, then `last` (the rollout record, what ends the
 * rollout) in the last transaction. Never empty.
 */
export function packStep(writes: readonly StepWrite[], last: readonly StepWrite[], limits: Partial<StepLimits> = {}): StepTransaction[] {
  const maxOps = limits.maxOps ?? DEFAULT_MAX_TXN_OPS;
  const maxBytes = limits.maxBytes ?? MAX_TXN_BYTES;
  const guards = limits.guards ?? [];
  const guardBytes = guards.reduce((n, c) => n + compareBytes(c), 0);
  const open = (): Open => ({ compares: [], ops: [], bytes: guardBytes, bodies: new Set() });
  const txns: StepTransaction[] = [];
  let cur = open();
  const opsOf = (bodies: ReadonlySet<string>, w: StepWrite): IRequestOp[] => (w.body && !bodies.has(w.body.hash) ? [w.body.op, w.op] : [w.op]);
  const bytesOf = (ops: IRequestOp[], w: StepWrite): number => ops.reduce((n, op) => n + opBytes(op), 0) + (w.compare ? compareBytes(w.compare) : 0);
  /** Whether `ws` fit in `t` with their bodies. */
  const fits = (t: Open, ws: readonly StepWrite[]): boolean => {
    const bodies = new Set(t.bodies);
    let ops = t.ops.length;
    let compares = guards.length + t.compares.length;
    let bytes = t.bytes;
    for (const w of ws) {
      const list = opsOf(bodies, w);
      if (w.body) bodies.add(w.body.hash);
      ops += list.length;
      compares += w.compare ? 1 : 0;
      bytes += bytesOf(list, w);
    }
    return ops <= maxOps && compares <= maxOps && bytes <= maxBytes;
  };
  const close = (): void => {
    txns.push({ compares: cur.compares, ops: cur.ops });
    cur = open();
  };
  const append = (w: StepWrite): void => {
    const ops = opsOf(cur.bodies, w);
    if (w.body) cur.bodies.add(w.body.hash);
    cur.ops.push(...ops);
    if (w.compare) cur.compares.push(w.compare);
    cur.bytes += bytesOf(ops, w);
  };
  // A write larger than the budget still goes, alone (etcd's own limit is half as large again).
  for (const w of writes) {
    if (cur.ops.length > 0 && !fits(cur, [w])) close();
    append(w);
  }
  // The last writes stay together, after all the others.
  if (last.length > 0 && cur.ops.length > 0 && !fits(cur, last)) close();
  for (const w of last) append(w);
  txns.push({ compares: cur.compares, ops: cur.ops });
  return txns;
}
