/**
 * Placement writes applied to a `MemoryScheduleStore` with the batch's compares, only while the
 * session leads: the in-memory counterpart of `EtcdPlacementWriter`. `failNext` makes the next writes
 * fail as etcd would when unreachable.
 */
import type { StoredKv } from "../registry/etcd-store";
import { EtcdUnavailableError } from "../registry/errors";
import type { MemoryLeaderSession } from "./memory-leader-session";
import type { MemoryScheduleStore } from "./memory-schedule-store";
import type { Batch } from "./placement-plan";
import type { PlacementWriter, WriteOutcome } from "./placement-writer";

export class MemoryPlacementWriter implements PlacementWriter {
  /** Batches written, for tests. */
  written = 0;
  private failures = 0;

  constructor(
    private readonly store: MemoryScheduleStore,
    private readonly session: MemoryLeaderSession,
  ) {}

  /** The next `n` writes fail with a retriable error (etcd away). */
  failNext(n: number): void {
    this.failures = n;
  }

  write(batch: Batch, _signal: AbortSignal): Promise<WriteOutcome> {
    if (this.failures > 0) {
      this.failures--;
      return Promise.reject(new EtcdUnavailableError("write placements", { cause: new Error("etcd is unreachable (simulated)") }));
    }
    if (!this.session.isLeader) return Promise.resolve("not-leader");
    if (!this.store.commit(batch.compares, batch.ops)) return Promise.resolve("conflict");
    this.written++;
    return Promise.resolve("written");
  }

  deleteBodies(bodies: readonly StoredKv[], _signal: AbortSignal): Promise<void> {
    if (!this.session.isLeader) return Promise.resolve();
    this.store.commit(
      bodies.map((kv) => ({ key: Buffer.from(kv.key), target: "Mod" as const, result: "Equal" as const, mod_revision: kv.modRevision })),
      bodies.map((kv) => ({ request_delete_range: { key: Buffer.from(kv.key) } })),
    );
    return Promise.resolve();
  }
}
