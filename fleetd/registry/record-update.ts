/**
 * Read-modify-write of one JSON record in etcd with compare on its revision: the one way both the
 * registry (API writes, through the TxnBatcher) and a machine's session (an agent's completion record,
 * straight to the store) change a record another writer may be changing too.
 */
import { ConflictError } from "./errors";
import { decodeKv, type EtcdStore, type StoredKv } from "./etcd-store";
import { parseRecord } from "./keys";
import type { GuardedWriteResult, TxnBatcher } from "./txn-batcher";

/** How a record is read and written under a compare on its revision (a TxnBatcher, or the store itself). */
export interface RecordIo {
  read(key: string, signal?: AbortSignal): Promise<StoredKv | undefined>;
  /** Writes `value` if the key is still at `expect`; otherwise answers with its current value. */
  write(key: string, expect: number, value: Buffer, signal?: AbortSignal): Promise<GuardedWriteResult>;
}

/** What became of an update: no record, `change` declined (the record as read), or written. */
export type RecordUpdate<T> = { found: false } | { found: true; written: false; record: T } | { found: true; written: true; record: T };

/**
 * Applies `change` to the record at `key` until a write holds: on a lost compare it decides again on
 * the value the refused write read. `change` returns undefined to leave the record as it is.
 * Throws ConflictError (retriable) after `attempts` lost compares.
 */
export async function updateRecord<T>(
  io: RecordIo,
  key: string,
  what: string,
  change: (record: T) => T | undefined,
  options: { attempts: number; signal?: AbortSignal },
): Promise<RecordUpdate<T>> {
  let kv = await io.read(key, options.signal);
  for (let attempt = 0; attempt < options.attempts; attempt++) {
    if (!kv) return { found: false };
    const record = parseRecord<T>(key, kv.value);
    const next = change(record);
    if (next === undefined) return { found: true, written: false, record };
    const res = await io.write(key, kv.modRevision, Buffer.from(JSON.stringify(next)), options.signal);
    if (res.written) return { found: true, written: true, record: next };
    kv = res.current;
  }
  throw new ConflictError(what);
}

/** {@link RecordIo} straight on the store: one range, one transaction per write (its failure branch reads the key). */
export function storeRecordIo(store: EtcdStore): RecordIo {
  return {
    async read(key, signal) {
      const { kvs } = await store.range(`read ${key}`, key, { exact: true, ...(signal ? { signal } : {}) });
      return kvs[0];
    },
    async write(key, expect, value, signal) {
      const k = Buffer.from(key);
      const res = await store.txn(
        `write ${key}`,
        {
          compare: [{ key: k, target: "Mod", result: "Equal", mod_revision: expect }],
          success: [{ request_put: { key: k, value } }],
          failure: [{ request_range: { key: k } }],
        },
        signal,
      );
      if (res.succeeded) return { written: true, revision: Number(res.header.revision) };
      const current = res.responses[0]?.response_range.kvs[0];
      return { written: false, current: current ? decodeKv(current) : undefined };
    },
  };
}

/** {@link RecordIo} through a TxnBatcher: reads and writes share transactions with concurrent ones. */
export function batcherRecordIo(batcher: TxnBatcher): RecordIo {
  return {
    async read(key, signal) {
      const {
        results: [[kv] = []],
      } = await batcher.read([{ prefix: key, exact: true }], signal);
      return kv;
    },
    write: (key, expect, value, signal) => batcher.write({ key, expect, puts: [{ key, value }] }, signal),
  };
}
