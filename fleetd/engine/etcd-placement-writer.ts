/**
 * Placement writes as etcd transactions guarded by "the leader key is on my lease" plus each batch's
 * own compares; a failed transaction reads the leader key to tell lost leadership from a conflict.
 */
import type { EtcdStore, StoredKv } from "../registry/etcd-store";
import type { LeaderElection } from "./leader-election";
import type { Batch } from "./placement-plan";
import type { PlacementWriter, WriteOutcome } from "./placement-writer";

export class EtcdPlacementWriter implements PlacementWriter {
  constructor(
    private readonly store: EtcdStore,
    private readonly election: LeaderElection,
  ) {}

  async write(batch: Batch, signal: AbortSignal): Promise<WriteOutcome> {
    const guard = this.election.leaderGuard();
    const res = await this.store.txn(
      `write ${batch.groups.length} placements`,
      { compare: [guard, ...batch.compares], success: batch.ops, failure: [{ request_range: { key: Buffer.from(this.store.keys.leader) } }] },
      signal,
    );
    if (res.succeeded) return "written";
    const holder = res.responses[0]?.response_range.kvs[0];
    return holder?.lease !== guard.lease ? "not-leader" : "conflict";
  }

  async deleteBodies(bodies: readonly StoredKv[], signal: AbortSignal): Promise<void> {
    // One transaction per body would be needed for per-body compares to be independent; a failed
    // batch simply leaves its bodies for the next resync.
    await this.store.txn(
      `delete ${bodies.length} unused unit bodies`,
      {
        compare: [this.election.leaderGuard(), ...bodies.map((kv) => ({ key: Buffer.from(kv.key), target: "Mod" as const, result: "Equal" as const, mod_revision: kv.modRevision }))],
        success: bodies.map((kv) => ({ request_delete_range: { key: Buffer.from(kv.key) } })),
      },
      signal,
    );
  }
}
