/**
 * Registration when etcd's answer is lost (a slow etcd: the create lands, the reply misses its
 * deadline), or a lease etcd has expired but not revoked yet. Real etcd, through `LostReplyStore`.
 */
import { describe, expect, it } from "vitest";
import { DuplicateMachineError, EtcdUnavailableError, LeaseLostError } from "../../fleetd/registry/errors";
import { createEtcdClient, EtcdStore } from "../../fleetd/registry/etcd-store";
import { MachineSession } from "../../fleetd/registry/machine-session";
import { etcdFixture } from "../helpers/fleet-fixture";
import { LostReplyStore } from "../helpers/lost-reply-store";

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

  it("knows while a duplicate machine ID keeps it out (for the API's 503), and forgets it once etcd fails or it registers", async () => {
    const client = createEtcdClient({ endpoints: [etcd().endpoint] });
    const id = "00112233445566778899aabbccddeeff";
    const session = new MachineSession(new EtcdStore(client, { prefix: "/dup-id/" }), { machine: machine(id), ttlSeconds: 30 });
    const twinStore = new LostReplyStore(client, { prefix: "/dup-id/" });
    const twin = new MachineSession(twinStore, { machine: machine(id), ttlSeconds: 30 });
    try {
      await session.register();
      expect(session.duplicateId).toBe(false);
      await expect(twin.register()).rejects.toBeInstanceOf(DuplicateMachineError);
      expect(twin.duplicateId).toBe(true);
      // etcd did not answer this attempt: the cause is etcd now, not the other machine.
      twinStore.loseNextTxnReply = true;
      await expect(twin.register()).rejects.toBeInstanceOf(EtcdUnavailableError);
      expect(twin.duplicateId).toBe(false);
      await expect(twin.register()).rejects.toBeInstanceOf(DuplicateMachineError);
      expect(twin.duplicateId).toBe(true);
      await session.leave();
      await twin.register();
      expect(twin.registered).toBe(true);
      expect(twin.duplicateId).toBe(false);
    } finally {
      await twin.leave().catch(() => undefined);
      await session.leave().catch(() => undefined);
      client.close();
    }
  });

  it("takes its presence key back from its own lost lease that etcd has not revoked yet, keeping duplicates out", async () => {
    const client = createEtcdClient({ endpoints: [etcd().endpoint] });
    const store = new LostReplyStore(client, { prefix: "/lost-lease/" });
    const id = "fedcba9876543210fedcba9876543210";
    const session = new MachineSession(store, { machine: machine(id), ttlSeconds: 30 });
    const lost: LeaseLostError[] = [];
    session.onLost((err) => lost.push(err));
    try {
      await session.register();
      const first = session.leaseId;
      store.expiredLease = first;
      await expect(session.publishStates(new Map([["a.service", { hash: "0", loadState: "loaded", activeState: "active", subState: "running", launched: true }]]))).rejects.toBeInstanceOf(LeaseLostError);
      expect(lost).toHaveLength(1);
      expect(session.registered).toBe(false);
      // etcd still holds the key on the expired lease; a new registration is not a duplicate's.
      expect((await store.range("read", store.keys.machine(id), { exact: true })).kvs[0]?.lease).toBe(first);

      await session.register();
      expect(session.registered).toBe(true);
      expect(session.leaseId).not.toBe(first);
      const { kvs } = await store.range("read", store.keys.machine(id), { exact: true });
      expect(kvs[0]?.lease).toBe(session.leaseId);
      const twin = new MachineSession(new EtcdStore(client, { prefix: "/lost-lease/" }), { machine: machine(id), ttlSeconds: 30 });
      await expect(twin.register()).rejects.toBeInstanceOf(DuplicateMachineError);
    } finally {
      await session.leave().catch(() => undefined);
      client.close();
    }
  });

  it("publishes one state as a put on its lease and several in one transaction; both fail as lease loss once etcd revoked the lease", async () => {
    const client = createEtcdClient({ endpoints: [etcd().endpoint] });
    const store = new EtcdStore(client, { prefix: "/publish/" });
    const id = "00112233445566778899aabbccddeeff";
    const session = new MachineSession(store, { machine: machine(id), ttlSeconds: 30 });
    const state = (hash: string) => ({ hash, loadState: "loaded", activeState: "active", subState: "running", launched: true });
    try {
      await session.register();
      await session.publishStates(new Map([["a.service", state("1")]]));
      await session.publishStates(new Map([["b.service", state("2")], ["c.service", state("3")]]));
      const { kvs } = await store.range("read", store.keys.statesAll);
      expect(kvs.map((kv) => [kv.key.slice(store.keys.statesAll.length), kv.lease])).toEqual([
        [`a.service/${id}`, session.leaseId],
        [`b.service/${id}`, session.leaseId],
        [`c.service/${id}`, session.leaseId],
      ]);
      await session.publishStates(new Map([["a.service", undefined]]));
      expect((await store.range("read", store.keys.statesAll)).kvs).toHaveLength(2);

      // Revoked behind the session's back (its keepalives have not noticed yet): one state, then two.
      await client.leaseClient.leaseRevoke({ ID: session.leaseId! });
      await expect(session.publishStates(new Map([["d.service", state("4")]]))).rejects.toBeInstanceOf(LeaseLostError);
      await session.register();
      const second = session.leaseId!;
      await client.leaseClient.leaseRevoke({ ID: second });
      await expect(session.publishStates(new Map([["d.service", state("4")], ["e.service", state("5")]]))).rejects.toBeInstanceOf(LeaseLostError);
      expect((await store.range("read", store.keys.statesAll)).kvs).toHaveLength(0);
    } finally {
      await session.leave().catch(() => undefined);
      client.close();
    }
  });
});
