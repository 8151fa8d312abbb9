/**
 * What the engine writes: batches of placement/schedule operations and deletions of unused bodies,
 * each applied only while this engine leads and only if what it decided from is unchanged.
 * `EtcdPlacementWriter` (./etcd-placement-writer) writes guarded etcd transactions;
 * `MemoryPlacementWriter` (./memory-placement-writer) applies them to a `MemoryScheduleStore`.
 */
import type { StoredKv } from "../registry/etcd-store";
import type { Batch } from "./placement-plan";

/** written: applied; conflict: a compare failed (something changed); not-leader: we no longer lead. */
export type WriteOutcome = "written" | "conflict" | "not-leader";

export interface PlacementWriter {
  write(batch: Batch, signal: AbortSignal): Promise<WriteOutcome>;
  /** Deletes these bodies, each only if still at its revision (a body that gained a user survives). */
  deleteBodies(bodies: readonly StoredKv[], signal: AbortSignal): Promise<void>;
}
