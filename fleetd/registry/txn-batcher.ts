/**
 * Server-side batching of the API's etcd requests: concurrent single-unit reads and guarded writes
 * (what N concurrent `PUT /units/<name>` of fleet's Go client or our fleetctl produce) are coalesced
 * into few transactions, each up to etcd's op limit, a few in flight at once. Each request still gets
 * its own exact answer:
 *   - a write is guarded by one compare on its own key (absent = create-only, or a mod revision = CAS);
 *     the batch transaction compares all of them and, if any fails, writes nothing (etcd transactions
 *     are atomic) and reads every guarded key in its failure branch, at the same revision. Writes whose
 *     compare still held are queued again (they failed only because of another request); the others
 *     are answered "not written" with the key's current value, so a conflict stays that unit's own.
 *   - reads of one request (several ranges) always travel in the same transaction: one consistent
 *     snapshot per request, as before.
 * Flushing: a batch leaves on the next turn of the event loop (`setImmediate`) after the first request
 * arrives, so an idle request waits for nothing; while `maxInFlight` transactions are in flight the
 * queue grows, so batches grow with the load.
 */
import type { ICompare, IRequestOp } from "etcd3";
import { abortReason } from "../../lib/async/delay";
import { decodeKv, type EtcdStore, type StoredKv } from "./etcd-store";
import { prefixEnd } from "./keys";
import { DEFAULT_MAX_TXN_OPS, MAX_TXN_BYTES } from "./txn-limits";

/** A write guarded by one compare on one key (e.g. a unit record). */
export interface GuardedWrite {
  /** The guarded key; two writes of the same key never share a transaction. */
  key: string;
  /** `absent`: create-only (version 0); a number: the key's mod revision must still be this. */
  expect: "absent" | number;
  /** Keys this write puts (the guarded key among them, or deleted with `delete`). */
  puts: readonly { key: string; value: Buffer }[];
  /** Delete the guarded key instead of (or besides) the puts. */
  delete?: boolean;
  /**
   * Content-addressed keys whose value depends only on the key (unit bodies): written once per
   * transaction however many writes carry them.
   */
  shared?: readonly { key: string; value: Buffer }[];
}

/** What became of a guarded write: written, or refused with the key's value at that revision. */
export type GuardedWriteResult = { written: true; revision: number } | { written: false; current: StoredKv | undefined };

/** One range of a read: every key under `prefix`, or exactly the key when `exact`. */
export interface RangeSpec {
  prefix: string;
  exact?: boolean;
}

/** Counters (bench, diagnostics). */
export interface TxnBatcherStats {
  writeTransactions: number;
  writes: number;
  readTransactions: number;
  reads: number;
  /** Answered write transactions' latency, moving average (each new one weighs 0.2), in ms. */
  writeLatencyMs: number;
  /** Pauses between write transactions while etcd was slow (`slowWriteMs`), summed, in ms. */
  heldMs: number;
}

interface Pending<T, R> {
  item: T;
  resolve: (r: R) => void;
  reject: (err: unknown) => void;
  signal: AbortSignal | undefined;
}

type PendingWrite = Pending<GuardedWrite, GuardedWriteResult>;
type PendingRead = Pending<readonly RangeSpec[], { revision: number; results: StoredKv[][] }>;

export interface TxnBatcherOptions {
  /** etcd's `--max-txn-ops` (compares, success ops and failure ops each). Default 128. */
  maxTxnOps?: number;
  /**
   * Key and value bytes per write transaction (etcd refuses requests over `--max-request-bytes`).
   * Default {@link MAX_TXN_BYTES}; a write larger than this goes alone.
   */
  maxTxnBytes?: number;
  /** Transactions in flight at once (reads and writes together). Default 4. */
  maxInFlight?: number;
  /**
   * Back-pressure: while write transactions take longer than this on average (etcd saturated: its
   * apply loop behind), only one write transaction is in flight and the next waits as long again
   * (at most 2 s) after it, so the API takes in units no faster than etcd gets through them and
   * requests wait in the queue instead. etcd 3.4 refuses lease renewals once its apply loop is more
   * than 1 s behind, so a saturated etcd costs machines their leases. Reads are not held.
   * Default 500 ms; 0 = never.
   */
  slowWriteMs?: number;
}

/** Longest pause between two write transactions while etcd is slow. */
const MAX_WRITE_PAUSE_MS = 2_000;

export class TxnBatcher {
  readonly stats: TxnBatcherStats = { writeTransactions: 0, writes: 0, readTransactions: 0, reads: 0, writeLatencyMs: 0, heldMs: 0 };
  private readonly maxOps: number;
  private readonly maxBytes: number;
  private readonly maxInFlight: number;
  private readonly slowWriteMs: number;
  private writesInFlight = 0;
  /** While etcd is slow: no write transaction starts before this time (performance.now()). */
  private writesHeldUntil = 0;
  private resumeTimer: NodeJS.Timeout | undefined;
  private writes: PendingWrite[] = [];
  private reads: PendingRead[] = [];
  private inFlight = 0;
  private scheduled = false;
  private lastWasWrite = false;
  /** Keys of writes in flight: a later write of the same key waits for the answer. */
  private readonly busyKeys = new Set<string>();

  constructor(
    private readonly store: EtcdStore,
    options: TxnBatcherOptions = {},
  ) {
    this.maxOps = options.maxTxnOps ?? DEFAULT_MAX_TXN_OPS;
    this.maxBytes = options.maxTxnBytes ?? MAX_TXN_BYTES;
    this.maxInFlight = options.maxInFlight ?? 4;
    this.slowWriteMs = options.slowWriteMs ?? 500;
  }

  /** etcd answers writes slower than `slowWriteMs`: writes go one at a time, with a pause between. */
  private get etcdSlow(): boolean {
    return this.slowWriteMs > 0 && this.stats.writeLatencyMs > this.slowWriteMs;
  }

  /** Whether a write transaction may not start now (back-pressure while etcd is slow). */
  private writesHeld(now: number): boolean {
    return this.etcdSlow && (this.writesInFlight > 0 || now < this.writesHeldUntil);
  }

  /** Flushes again once the pause between writes is over. */
  private resumeWritesLater(now: number): void {
    if (this.resumeTimer || this.writesInFlight > 0) return;
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = undefined;
      this.schedule();
    }, Math.max(1, this.writesHeldUntil - now));
    this.resumeTimer.unref();
  }

  /** Performs one guarded write, batched with concurrent ones. Rejects with the store's typed errors. */
  write(item: GuardedWrite, signal?: AbortSignal): Promise<GuardedWriteResult> {
    if (item.puts.length + (item.shared?.length ?? 0) + (item.delete ? 1 : 0) > this.maxOps) {
      return Promise.reject(new Error(`Cannot write ${item.key}: ${item.puts.length} puts exceed etcd's limit of ${this.maxOps} operations per transaction`));
    }
    return this.enqueue(this.writes, item, signal);
  }

  /** Reads the ranges in one consistent snapshot, batched with concurrent reads. */
  read(ranges: readonly RangeSpec[], signal?: AbortSignal): Promise<{ revision: number; results: StoredKv[][] }> {
    if (ranges.length > this.maxOps) return this.store.rangeMany(`read ${ranges.length} ranges`, ranges, signal);
    return this.enqueue(this.reads, ranges, signal);
  }

  private enqueue<T, R>(queue: Pending<T, R>[], item: T, signal: AbortSignal | undefined): Promise<R> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise<R>((resolve, reject) => {
      queue.push({ item, resolve, reject, signal });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight) return;
    if (this.writes.length === 0 && this.reads.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.inFlight < this.maxInFlight && (this.writes.length > 0 || this.reads.length > 0)) {
      const now = performance.now();
      const held = this.writesHeld(now);
      const canWrite = !held && this.writes.length > 0;
      // Alternate when both kinds wait, so neither starves the other. Each take is synchronous.
      let writeBatch = canWrite && (this.reads.length === 0 || !this.lastWasWrite) ? this.takeWrites() : [];
      const readBatch = writeBatch.length === 0 ? this.takeReads() : [];
      if (writeBatch.length === 0 && readBatch.length === 0 && canWrite) writeBatch = this.takeWrites();
      if (writeBatch.length === 0 && readBatch.length === 0) {
        // Writes held back by a slow etcd go when the pause is over; anything else left waits for a
        // key already in flight, and the end of that transaction flushes again.
        if (held && this.writes.length > 0) this.resumeWritesLater(now);
        return;
      }
      this.lastWasWrite = writeBatch.length > 0;
      const run = writeBatch.length > 0 ? this.sendWrites(writeBatch) : this.sendReads(readBatch);
      this.inFlight++;
      void run.finally(() => {
        this.inFlight--;
        this.schedule();
      });
    }
  }

  /** Drops requests whose caller gave up before they were sent. */
  private live<T, R>(queue: Pending<T, R>[]): Pending<T, R>[] {
    return queue.filter((p) => {
      if (!p.signal?.aborted) return true;
      p.reject(abortReason(p.signal));
      return false;
    });
  }

  /**
   * Takes the next write batch off the queue: distinct keys, none already in flight (so writes of one
   * key stay in order), within the op and byte limits with shared keys counted once.
   */
  private takeWrites(): PendingWrite[] {
    this.writes = this.live(this.writes);
    const batch: PendingWrite[] = [];
    const rest: PendingWrite[] = [];
    const guarded = new Set<string>();
    const shared = new Map<string, Buffer>();
    let ops = 0;
    let bytes = 0;
    let i = 0;
    for (; i < this.writes.length && batch.length < this.maxOps && ops < this.maxOps && bytes < this.maxBytes; i++) {
      const p = this.writes[i]!;
      const w = p.item;
      const newShared = (w.shared ?? []).filter((s) => !shared.has(s.key));
      const need = w.puts.length + (w.delete ? 1 : 0) + newShared.length;
      const needBytes = writeBytes(w, newShared);
      const tooBig = batch.length > 0 && bytes + needBytes > this.maxBytes;
      if (guarded.has(w.key) || this.busyKeys.has(w.key) || batch.length + 1 > this.maxOps || ops + need > this.maxOps || tooBig) {
        rest.push(p);
        continue;
      }
      guarded.add(w.key);
      for (const s of newShared) shared.set(s.key, s.value);
      ops += need;
      bytes += needBytes;
      batch.push(p);
    }
    this.writes = i < this.writes.length ? rest.concat(this.writes.slice(i)) : rest;
    for (const p of batch) this.busyKeys.add(p.item.key);
    return batch;
  }

  private async sendWrites(batch: PendingWrite[]): Promise<void> {
    this.writesInFlight++;
    try {
      await this.writeBatch(batch);
    } finally {
      this.writesInFlight--;
      for (const p of batch) this.busyKeys.delete(p.item.key);
      if (this.etcdSlow) {
        const now = performance.now();
        const pause = Math.min(this.stats.writeLatencyMs, MAX_WRITE_PAUSE_MS);
        this.writesHeldUntil = now + pause;
        this.stats.heldMs += pause;
      }
    }
  }

  private async writeBatch(batch: PendingWrite[]): Promise<void> {
    const shared = new Map<string, Buffer>();
    for (const { item } of batch) for (const s of item.shared ?? []) shared.set(s.key, s.value);
    const compare: ICompare[] = batch.map(({ item: w }) =>
      w.expect === "absent"
        ? { key: Buffer.from(w.key), target: "Version", result: "Equal", version: 0 }
        : { key: Buffer.from(w.key), target: "Mod", result: "Equal", mod_revision: w.expect },
    );
    const success: IRequestOp[] = [];
    for (const { item: w } of batch) {
      if (w.delete) success.push({ request_delete_range: { key: Buffer.from(w.key) } });
      for (const put of w.puts) success.push({ request_put: { key: Buffer.from(put.key), value: put.value } });
    }
    for (const [key, value] of shared) success.push({ request_put: { key: Buffer.from(key), value } });
    const failure: IRequestOp[] = batch.map(({ item: w }) => ({ request_range: { key: Buffer.from(w.key) } }));
    this.stats.writeTransactions++;
    this.stats.writes += batch.length;
    let res;
    const started = performance.now();
    try {
      res = await this.store.txn(batch.length === 1 ? `write ${batch[0]!.item.key}` : `write ${batch.length} keys (${batch[0]!.item.key} …)`, { compare, success, failure });
    } catch (err) {
      // Not counted in the average: an etcd that was away (deadline, refused) is not a slow one,
      // and would otherwise have its writes held for a while after it is back.
      for (const p of batch) p.reject(err);
      return;
    }
    this.stats.writeLatencyMs += 0.2 * (performance.now() - started - this.stats.writeLatencyMs);
    if (res.succeeded) {
      const revision = Number(res.header.revision);
      for (const p of batch) p.resolve({ written: true, revision });
      return;
    }
    // Nothing was written. Answer the writes whose compare failed; queue the others again, first.
    const again: PendingWrite[] = [];
    batch.forEach((p, i) => {
      const kv = res.responses[i]?.response_range.kvs[0];
      const current = kv ? decodeKv(kv) : undefined;
      const holds = p.item.expect === "absent" ? current === undefined : current?.modRevision === p.item.expect;
      if (holds) again.push(p);
      else p.resolve({ written: false, current });
    });
    this.writes = [...again, ...this.writes];
  }

  private takeReads(): PendingRead[] {
    this.reads = this.live(this.reads);
    const batch: PendingRead[] = [];
    let ops = 0;
    while (this.reads.length > 0 && ops + this.reads[0]!.item.length <= this.maxOps) {
      const p = this.reads.shift()!;
      ops += p.item.length;
      batch.push(p);
    }
    return batch;
  }

  private async sendReads(batch: PendingRead[]): Promise<void> {
    const success: IRequestOp[] = [];
    for (const p of batch) {
      for (const r of p.item) success.push({ request_range: { key: Buffer.from(r.prefix), ...(r.exact ? {} : { range_end: prefixEnd(r.prefix) }) } });
    }
    this.stats.readTransactions++;
    this.stats.reads += batch.length;
    let res;
    try {
      res = await this.store.txn(batch.length === 1 ? "read" : `read for ${batch.length} requests`, { success });
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    const revision = Number(res.header.revision);
    let at = 0;
    for (const p of batch) {
      const results = p.item.map((_, j) => (res.responses[at + j]?.response_range.kvs ?? []).map(decodeKv));
      at += p.item.length;
      p.resolve({ revision, results });
    }
  }
}

/** Key and value bytes a write adds to a transaction: compare, failure read and delete of its key, its puts, its new shared keys. */
function writeBytes(w: GuardedWrite, newShared: readonly { key: string; value: Buffer }[]): number {
  let n = (w.delete ? 3 : 2) * Buffer.byteLength(w.key);
  for (const p of [...w.puts, ...newShared]) n += Buffer.byteLength(p.key) + p.value.length;
  return n;
}
