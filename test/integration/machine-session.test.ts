/**
 * Registration when etcd's answer is lost (a slow etcd: the create lands, the reply misses its
 * deadline). Real etcd; the store below performs every request for real and only withholds one reply.
 */
import type { ITxnRequest, ITxnResponse } from "etcd3";
import { describe, expect, it } from "vitest";
import { DuplicateMachineError, EtcdUnavailableError } from "../../fleetd/registry/errors";
import { createEtcdClient, EtcdStore } from "../../fleetd/registry/etcd-store";
import { MachineSession } from "../../fleetd/registry/machine-session";
import { etcdFixture } from "../helpers/fleet-fixture";

/** An EtcdStore whose next `txn` is carried out by etcd but answered with a timeout. */
class LostReplyStore extends EtcdStore {
  loseNextTxnReply = false;
  override async txn(operation: string, req: ITxnRequest, signal?: AbortSignal): Promise<ITxnResponse> {
    const res = await super.txn(operation, req, signal);
    if (!this.loseNextTxnReply) return res;
    this.loseNextTxnReply = false;
    throw new EtcdUnavailableError(operation, { cause: new Error("4 DEADLINE_EXCEEDED: the reply was lost (test)") });
  }
}

const machine = (id: string) => ({ id, publicIP: "10.0.0.7", metadata: {}, version: "0.1.0", disableEngine: false });

describe("machine registration with a lost etcd reply (real etcd)", () => {
  const etcd = etcdFixture();

  it("adopts its own presence key on the retry instead of waiting out the TTL as a duplicate", async () => {
    const client = createEtcdClient({ endpoints: [etcd().endpoint] });
    const store = new LostReplyStore(client, { prefix: "/lost-reply/" });
    const id = "0123456789abcdef0123456789abcdef";
    const session = new MachineSession(store, { machine: machine(id), ttlSeconds: 30 });
    try {
      store.loseNextTxnReply = true;
      await expect(session.register()).rejects.toBeInstanceOf(EtcdUnavailableError);
      // The create landed: the key exists, on the lease of the failed attempt.
      const { kvs } = await store.range("read", store.keys.machine(id), { exact: true });
      expect(kvs).toHaveLength(1);
      const landedOn = kvs[0]?.lease;

      await session.register();
      expect(session.registered).toBe(true);
      expect(session.leaseId).toBe(landedOn);
      // A different fleetd with the same ID is still refused.
      const twin = new MachineSession(new EtcdStore(client, { prefix: "/lost-reply/" }), { machine: machine(id), ttlSeconds: 30 });
      await expect(twin.register()).rejects.toBeInstanceOf(DuplicateMachineError);
    } finally {
      await session.leave().catch(() => undefined);
      client.close();
    }
  });
});
