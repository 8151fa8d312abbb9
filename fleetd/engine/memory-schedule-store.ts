/**
 * An in-memory key space with etcd's revision semantics, for engine tests: consistent snapshots,
 * watches that deliver every change from a revision (one batch per write, asynchronously, as etcd's
 * watch does), and guarded writes (`commit`) that evaluate etcd-style compares.
 */
import type { ICompare, IRequestOp } from "etcd3";
import type { StoredKv, WatchChange, WatchHandle } from "../registry/etcd-store";
import { Keys } from "../registry/keys";
import type { ScheduleStore } from "./schedule-store";

interface Watch {
  prefix: string;
  from: number;
  onChanges: (changes: WatchChange[], revision: number) => void;
  onError: (err: Error) => void;
}

export class MemoryScheduleStore implements ScheduleStore {
  readonly keys: Keys;
  private rev = 1;
  private readonly kvs = new Map<string, StoredKv>();
  /** Every write, for watches that start from an earlier revision. */
  private readonly history: { revision: number; changes: WatchChange[] }[] = [];
  private readonly watches = new Set<Watch>();

  constructor(prefix = "/fleet/") {
    this.keys = new Keys(prefix);
  }

  get revision(): number {
    return this.rev;
  }

  get(key: string): StoredKv | undefined {
    return this.kvs.get(key);
  }

  /** Keys under `prefix`, sorted as etcd sorts them. */
  list(prefix: string): StoredKv[] {
    return [...this.kvs.values()].filter((kv) => kv.key.startsWith(prefix)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  put(key: string, value: string | Buffer, lease = "0"): number {
    return this.apply([{ type: "put", key, value: Buffer.from(value), lease }]);
  }

  delete(key: string): number {
    return this.apply([{ type: "delete", key }]);
  }

  /** Applies `ops` at one new revision if every compare holds; returns whether it did. */
  commit(compares: readonly ICompare[], ops: readonly IRequestOp[]): boolean {
    if (!compares.every((c) => this.holds(c))) return false;
    const writes: ({ type: "put"; key: string; value: Buffer; lease: string } | { type: "delete"; key: string })[] = [];
    for (const op of ops) {
      if (op.request_put) {
        writes.push({ type: "put", key: String(op.request_put.key ?? ""), value: Buffer.from(op.request_put.value ?? ""), lease: String(op.request_put.lease ?? "0") });
      } else if (op.request_delete_range) {
        if (op.request_delete_range.range_end !== undefined) throw new Error("MemoryScheduleStore.commit: range deletes are not supported");
        writes.push({ type: "delete", key: String(op.request_delete_range.key ?? "") });
      } else {
        throw new Error("MemoryScheduleStore.commit: only puts and single-key deletes are supported");
      }
    }
    this.apply(writes);
    return true;
  }

  /** Ends every watch with `err` (as a compaction or a lost stream would); the engine must resync. */
  failWatches(err: Error): void {
    const all = [...this.watches];
    this.watches.clear();
    for (const w of all) w.onError(err);
  }

  rangeMany(_operation: string, prefixes: readonly { prefix: string; exact?: boolean; keysOnly?: boolean }[]): Promise<{ revision: number; results: StoredKv[][] }> {
    const results = prefixes.map((p) => {
      const kvs = p.exact ? [this.kvs.get(p.prefix)].filter((kv): kv is StoredKv => kv !== undefined) : this.list(p.prefix);
      return kvs.map((kv) => (p.keysOnly ? { ...kv, value: Buffer.alloc(0) } : kv));
    });
    return Promise.resolve({ revision: this.rev, results });
  }

  watch(prefix: string, fromRevision: number, handlers: { onChanges: (changes: WatchChange[], revision: number) => void; onError: (err: Error) => void }): Promise<WatchHandle> {
    const w: Watch = { prefix, from: fromRevision, ...handlers };
    this.watches.add(w);
    for (const h of this.history) if (h.revision >= fromRevision) this.deliver(w, h.revision, h.changes);
    return Promise.resolve({ close: () => Promise.resolve(void this.watches.delete(w)) });
  }

  private holds(c: ICompare): boolean {
    const kv = this.kvs.get(String(c.key ?? ""));
    let actual: string | number;
    let expected: string | number;
    switch (c.target) {
      case "Version":
        actual = kv ? 1 : 0; // presence is all the engine compares versions for
        expected = Number(c.version);
        break;
      case "Value":
        actual = kv?.value.toString() ?? "";
        expected = Buffer.from(c.value ?? "").toString();
        break;
      case "Mod":
        actual = kv?.modRevision ?? 0;
        expected = Number(c.mod_revision);
        break;
      case "Lease":
        actual = kv?.lease ?? "0";
        expected = String(c.lease);
        break;
      default:
        throw new Error(`MemoryScheduleStore: compare target ${String(c.target)} is not supported`);
    }
    if (c.result !== "Equal") throw new Error(`MemoryScheduleStore: compare result ${c.result} is not supported`);
    return actual === expected;
  }

  private apply(writes: readonly ({ type: "put"; key: string; value: Buffer; lease: string } | { type: "delete"; key: string })[]): number {
    const revision = ++this.rev;
    const changes: WatchChange[] = [];
    for (const w of writes) {
      if (w.type === "put") {
        const cur = this.kvs.get(w.key);
        this.kvs.set(w.key, { key: w.key, value: w.value, modRevision: revision, createRevision: cur?.createRevision ?? revision, lease: w.lease });
        changes.push({ type: "put", key: w.key, value: w.value, modRevision: revision });
      } else if (this.kvs.delete(w.key)) {
        changes.push({ type: "delete", key: w.key, value: Buffer.alloc(0), modRevision: revision });
      }
    }
    this.history.push({ revision, changes });
    for (const w of this.watches) this.deliver(w, revision, changes);
    return revision;
  }

  private deliver(w: Watch, revision: number, changes: readonly WatchChange[]): void {
    const mine = changes.filter((c) => c.key.startsWith(w.prefix));
    if (mine.length === 0) return;
    queueMicrotask(() => {
      if (this.watches.has(w)) w.onChanges(mine, revision);
    });
  }
}
