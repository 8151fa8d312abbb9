/**
 * The engine election on a real etcd when etcd has expired the leader's lease but the lease's
 * keepalives have not said so (a saturated etcd: its keepalive stream stuck, revocation lagging).
 */
import { describe, expect, it } from "vitest";
import { LeaderElection } from "../../fleetd/engine/leader-election";
import { createEtcdClient } from "../../fleetd/registry/etcd-store";
import { waitFor } from "../helpers/fleet-cluster";
import { etcdFixture } from "../helpers/fleet-fixture";
import { LostReplyStore } from "../helpers/lost-reply-store";

describe("engine election (real etcd)", () => {
  const etcd = etcdFixture();

  it("campaigns on a new lease when etcd refuses its expired one, instead of retrying the dead lease forever", async () => {
    const client = createEtcdClient({ endpoints: [etcd().endpoint] });
    const store = new LostReplyStore(client, { prefix: "/election-expired/" });
    const events: string[] = [];
    const election = new LeaderElection(store, { machineId: "m1", ttlSeconds: 30, retryMs: 100, onEvent: (e) => events.push(e.message) });
    const stop = new AbortController();
    const running = election.run(stop.signal);
    try {
      await waitFor("m1 leads", () => election.isLeader);
      const first = election.leaseId;
      expect(first).toBeDefined();
      // etcd expired the lease: puts on it fail, and the leader key goes (revocation caught up).
      store.expiredLease = first;
      await client.delete().key(store.keys.leader);
      const second = await waitFor("m1 leads on a new lease", () => election.isLeader && election.leaseId !== first && election.leaseId, {
        describe: () => events.join("\n"),
      });
      const { kvs } = await store.range("read", store.keys.leader, { exact: true });
      expect(kvs[0]?.lease).toBe(second);
      expect(kvs[0]?.value.toString()).toBe("m1");
      expect(store.refusedOnExpiredLease).toBe(1);
      expect(events).toContain(`Engine election: lease ${first} expired; campaigning on a new lease`);
    } finally {
      stop.abort();
      await running;
      await election.resign();
      client.close();
    }
  });
});
