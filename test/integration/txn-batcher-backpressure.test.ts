/**
 * The API's write batcher (`fleetd/registry/txn-batcher.ts`) under a slow etcd: a real etcd behind a
 * store that holds every write transaction for a set time, as a saturated etcd (apply loop behind)
 * answers. While writes take longer than `slowWriteMs` on average, only one write transaction is in
 * flight and the next starts only after a pause; reads are not held; once etcd is fast again, writes
 * go several at a time again.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Etcd3 } from "etcd3";
import { delay } from "../../lib/async/delay";
import { createEtcdClient, EtcdStore } from "../../fleetd/registry/etcd-store";
import { TxnBatcher } from "../../fleetd/registry/txn-batcher";
import { startEtcd, type EtcdInstance } from "../helpers/etcd";

/** Holds each write transaction (one with compares) `holdMs` before sending it; records when each ran. */
class SlowWritesStore extends EtcdStore {
  holdMs = 0;
  inFlight = 0;
  maxInFlight = 0;
  readonly runs: { start: number; end: number }[] = [];
  override async txn(...args: Parameters<EtcdStore["txn"]>): ReturnType<EtcdStore["txn"]> {
    if (!args[1].compare?.length) return super.txn(...args);
    const start = performance.now();
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await delay(this.holdMs);
      return await super.txn(...args);
    } finally {
      this.inFlight--;
      this.runs.push({ start, end: performance.now() });
    }
  }
  reset(): void {
    this.maxInFlight = 0;
    this.runs.length = 0;
  }
}

describe("write back-pressure while etcd is slow (real etcd, held writes)", () => {
  let etcd: EtcdInstance;
  let client: Etcd3;

  beforeAll(async () => {
    etcd = await startEtcd({ maxTxnOps: 8 });
    client = createEtcdClient({ endpoints: [etcd.endpoint] });
  });
  afterAll(async () => {
    client.close();
    await etcd.cleanup();
  });

  it("one write transaction at a time, with a pause after each, while writes are slow; reads go on; several at once when fast again", async () => {
    const prefix = "/backpressure/";
    const store = new SlowWritesStore(client, { prefix });
    const batcher = new TxnBatcher(store, { maxTxnOps: 8, maxInFlight: 4, slowWriteMs: 100 });
    let n = 0;
    const writes = (count: number): Promise<unknown>[] =>
      Array.from({ length: count }, () => {
        const key = `${prefix}units/u-${n++}`;
        return batcher.write({ key, expect: "absent", puts: [{ key, value: Buffer.from("{}") }] });
      });

    // Fast etcd: a burst of 40 writes (5 transactions of 8) goes several transactions at once.
    await Promise.all(writes(40));
    expect(store.maxInFlight).toBeGreaterThan(1);
    expect(batcher.stats.heldMs).toBe(0);

    // etcd slows down: 300 ms a write. The moving average passes 100 ms after a few transactions.
    store.holdMs = 300;
    await Promise.all(writes(48));
    expect(batcher.stats.writeLatencyMs).toBeGreaterThan(100);

    // Now writes are held: one transaction at a time, each starting at least a pause after the last.
    store.reset();
    const slow = Promise.all(writes(32));
    await delay(50);
    // A read while writes wait for their turn is answered at once (reads are not held).
    const readStart = performance.now();
    const read = await batcher.read([{ prefix: `${prefix}units/` }]);
    const readMs = performance.now() - readStart;
    expect(read.results[0]!.length).toBeGreaterThanOrEqual(88);
    await slow;
    expect(readMs).toBeLessThan(300);
    expect(store.maxInFlight).toBe(1);
    expect(store.runs.length).toBe(4);
    const runs = [...store.runs].sort((a, b) => a.start - b.start);
    for (let i = 1; i < runs.length; i++) expect(runs[i]!.start - runs[i - 1]!.end).toBeGreaterThanOrEqual(90);
    expect(batcher.stats.heldMs).toBeGreaterThan(0);

    // etcd is fast again: once the average falls below 100 ms, transactions overlap again.
    store.holdMs = 0;
    store.reset();
    await Promise.all(writes(400));
    expect(batcher.stats.writeLatencyMs).toBeLessThan(100);
    expect(store.maxInFlight).toBeGreaterThan(1);
    expect((await client.getAll().prefix(`${prefix}units/`).keys()).length).toBe(n);
  });
});
