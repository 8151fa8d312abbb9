import type { ICompare, IRequestOp } from "etcd3";
import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_TXN_OPS, MAX_TXN_BYTES } from "../registry/txn-limits";
import { packStep, type StepTransaction, type StepWrite } from "./step-transactions";

const put = (key: string, bytes = 100): IRequestOp => ({ request_put: { key: Buffer.from(key), value: Buffer.alloc(bytes, 120) } });
const compare = (key: string): ICompare => ({ key: Buffer.from(key), target: "Mod", result: "Equal", mod_revision: 7 });
const body = (hash: string, bytes = 500): NonNullable<StepWrite["body"]> => ({ hash, op: put(`/b/${hash}`, bytes) });
const update = (i: number, hash = "h1", bytes = 500): StepWrite => ({ op: put(`/u/web@${i}.service`), compare: compare(`/u/web@${i}.service`), body: body(hash, bytes) });
const guards = [compare("/leader"), compare("/deployments/web@.service")];
const keyOf = (op: IRequestOp): string => String((op.request_put ?? op.request_delete_range)?.key ?? "");
const sizeOf = (op: IRequestOp): number => Buffer.byteLength(keyOf(op)) + (op.request_put?.value?.length ?? 0);
const keysOf = (t: StepTransaction): string[] => t.ops.map(keyOf);

/** What etcd checks of each transaction, and that every write went out once, in order. */
function expectValid(txns: StepTransaction[], writes: StepWrite[], last: StepWrite[]): void {
  for (const t of txns) {
    expect(t.ops.length).toBeLessThanOrEqual(DEFAULT_MAX_TXN_OPS);
    expect(guards.length + t.compares.length).toBeLessThanOrEqual(DEFAULT_MAX_TXN_OPS);
    expect(new Set(keysOf(t)).size, "no key twice in one transaction").toBe(t.ops.length);
    // Each write's body is in the transaction that writes it.
    for (const w of [...writes, ...last]) if (w.body && t.ops.includes(w.op)) expect(keysOf(t)).toContain(`/b/${w.body.hash}`);
  }
  const unitOps = txns.flatMap((t) => t.ops).filter((op) => !keyOf(op).startsWith("/b/"));
  expect(unitOps).toEqual([...writes, ...last].map((w) => w.op));
  expect(txns.flatMap((t) => t.compares)).toEqual([...writes, ...last].flatMap((w) => (w.compare ? [w.compare] : [])));
  // The record (the last of `last`) is in the last transaction.
  expect(txns.at(-1)!.ops.at(-1)).toBe(last.at(-1)!.op);
}

describe("packStep", () => {
  it("writes a step of 300 updates in three transactions (126 compares each beside the 2 guards) within etcd's 128 compares and operations, the record last", () => {
    const writes = Array.from({ length: 300 }, (_, i) => update(i + 1));
    const last = [{ op: put("/deployments/web@.service", 2_000) }];
    const txns = packStep(writes, last, { guards });
    expect(txns.length).toBe(3);
    expectValid(txns, writes, last);
    // One body per transaction, written with the first unit that needs it there.
    expect(txns.map((t) => keysOf(t).filter((k) => k.startsWith("/b/")))).toEqual([["/b/h1"], ["/b/h1"], ["/b/h1"]]);
  });

  it("counts each distinct body of a rollback (one per previous hash) as an operation", () => {
    const writes = Array.from({ length: 100 }, (_, i) => update(i + 1, `h${i}`));
    const last = [{ op: put("/deployments/web@.service") }];
    const txns = packStep(writes, last, { guards });
    expectValid(txns, writes, last);
    // 100 updates and 100 bodies: 200 operations, more than one transaction takes.
    expect(txns.length).toBe(2);
  });

  it("splits by bytes: bodies of 400 KB each", () => {
    const writes = Array.from({ length: 6 }, (_, i) => update(i + 1, `big${i}`, 400_000));
    const last = [{ op: put("/deployments/web@.service", 100_000) }];
    const txns = packStep(writes, last, { guards });
    expectValid(txns, writes, last);
    for (const t of txns) expect(t.ops.reduce((n, op) => n + sizeOf(op), 0)).toBeLessThanOrEqual(MAX_TXN_BYTES);
    expect(txns.length).toBe(3);
  });

  it("keeps the last writes together, in a transaction of their own when they do not fit after the others", () => {
    const writes = Array.from({ length: 126 }, (_, i) => update(i + 1));
    // The template back on its previous body, with that body, and the record.
    const last: StepWrite[] = [{ op: put("/u/web@.service"), body: body("h0") }, { op: put("/deployments/web@.service") }];
    const txns = packStep(writes, last, { guards });
    expectValid(txns, writes, last);
    expect(txns.length).toBe(2);
    expect(keysOf(txns[1]!)).toEqual(["/b/h0", "/u/web@.service", "/deployments/web@.service"]);
  });

  it("does not write a body twice in one transaction when the last writes need the same one", () => {
    const writes = [update(1, "h0")];
    const last: StepWrite[] = [{ op: put("/u/web@.service"), body: body("h0") }, { op: put("/deployments/web@.service") }];
    const txns = packStep(writes, last, { guards });
    expect(txns.length).toBe(1);
    expectValid(txns, writes, last);
    expect(keysOf(txns[0]!)).toEqual(["/b/h0", "/u/web@1.service", "/u/web@.service", "/deployments/web@.service"]);
  });

  it("is one transaction with the record alone when the step changes no unit", () => {
    const last = [{ op: put("/deployments/web@.service") }];
    expect(packStep([], last, { guards })).toEqual([{ compares: [], ops: [last[0]!.op] }]);
  });
});
