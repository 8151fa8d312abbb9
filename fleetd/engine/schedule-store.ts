/**
 * What the engine reads: consistent snapshots of key prefixes and watches from a revision. `EtcdStore`
 * is one; `MemoryScheduleStore` (./memory-schedule-store) is the in-memory one for tests.
 */
import type { StoredKv, WatchChange, WatchHandle } from "../registry/etcd-store";
import type { Keys } from "../registry/keys";

export interface ScheduleStore {
  readonly keys: Keys;
  /** Several prefix ranges read atomically (one snapshot), with the revision they were read at. */
  rangeMany(operation: string, prefixes: readonly { prefix: string; exact?: boolean; keysOnly?: boolean }[], signal?: AbortSignal): Promise<{ revision: number; results: StoredKv[][] }>;
  /** Every change under `prefix` from `fromRevision` on; `onError` when it cannot continue (re-read then). */
  watch(prefix: string, fromRevision: number, handlers: { onChanges: (changes: WatchChange[], revision: number) => void; onError: (err: Error) => void }): Promise<WatchHandle>;
}
