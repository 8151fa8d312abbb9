/**
 * Listings bigger than gRPC's default 4 MiB message, on a real etcd: grpc-js refuses such an answer
 * (RESOURCE_EXHAUSTED) unless the client raises its receive limit, which stopped `GET /state` and the
 * engine's resync at about 20,000 units. 24,000 states of a realistic size (~6 MiB in one range) must
 * list whole, through the registry and through the HTTP API; and the engine's snapshot read
 * (`rangeMany`) comes in pages of 2,000 keys at one revision, so no answer is that big.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Etcd3 } from "etcd3";
import { createApiServer, registryBackend, type ApiServer } from "../../fleetd/api";
import { EtcdRegistry } from "../../fleetd/registry/etcd-registry";
import { createEtcdClient, EtcdStore } from "../../fleetd/registry/etcd-store";
import { Keys, type StateRecord } from "../../fleetd/registry/keys";
import { ApiClient } from "../../lib/api/client";
import { startEtcd, type EtcdInstance } from "../helpers/etcd";

const PREFIX = "/big/";
const STATES = 24_000;
const MACHINE = "9f1c2d3e4b5a69788796a5b4c3d2e1f0";

describe("listings over 4 MiB on a real etcd", () => {
  let etcd: EtcdInstance;
  let client: Etcd3;
  let api: ApiServer;
  let dir: string;
  let bytes = 0;

  beforeAll(async () => {
    etcd = await startEtcd();
    client = createEtcdClient({ endpoints: [etcd.endpoint], requestTimeoutMs: 30_000 });
    dir = await mkdtemp(join(tmpdir(), "large-listings-"));
    const keys = new Keys(PREFIX);
    for (let i = 0; i < STATES; i += 100) {
      const txn = client.if(keys.unit("x"), "Version", "==", 0);
      const puts = [];
      for (let j = i; j < i + 100; j++) {
        const state: StateRecord = { hash: "3f786850e387550fdab836ed7e6dc881de23001b".repeat(4), loadState: "loaded", activeState: "active", subState: "running", launched: true };
        const value = JSON.stringify(state);
        bytes += value.length + keys.state(`big-${j}.service`, MACHINE).length;
        puts.push(client.put(keys.state(`big-${j}.service`, MACHINE)).value(value));
      }
      await txn.then(...puts).commit();
    }
    const registry = new EtcdRegistry(new EtcdStore(client, { prefix: PREFIX, requestTimeoutMs: 30_000 }), { isRegistered: () => true });
    api = createApiServer({ backend: registryBackend(registry), version: "test" });
    await api.listen({ kind: "unix", path: join(dir, "api.sock") });
  }, 120_000);
  afterAll(async () => {
    await api?.close();
    client?.close();
    await etcd?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("the data is really over gRPC's default 4 MiB", () => {
    expect(bytes).toBeGreaterThan(4 * 1024 * 1024 + 1);
  });

  it("the registry lists every state in one range", async () => {
    const registry = new EtcdRegistry(new EtcdStore(client, { prefix: PREFIX, requestTimeoutMs: 30_000 }), { isRegistered: () => true });
    const states = await registry.listStates();
    expect(states).toHaveLength(STATES);
    expect(new Set(states.map((s) => s.name)).size).toBe(STATES);
  });

  it("a snapshot read of several prefixes comes in pages at one revision, whole and consistent under concurrent writes", async () => {
    const store = new EtcdStore(client, { prefix: PREFIX, requestTimeoutMs: 30_000 });
    const keys = new Keys(PREFIX);
    for (let i = 0; i < 5; i++) await client.put(keys.machine(`m${i}`)).value("{}");
    // Writers add states (and machines) while the read pages through 24,000 states.
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) await client.put(keys.state(`late-${written++}.service`, MACHINE)).value("{}");
    })();
    const ranges = async (): Promise<number> => {
      const text = await (await fetch(`${etcd.endpoint}/metrics`)).text();
      return Number(/^grpc_server_started_total\{[^}]*grpc_method="Range"[^}]*\} (\S+)/m.exec(text)?.[1] ?? 0);
    };
    const rangesBefore = await ranges();
    const { revision, results } = await store.rangeMany("read", [{ prefix: keys.statesAll }, { prefix: keys.machines }]);
    // One transaction for the first page of each prefix, then one range per further 2,000 states.
    expect((await ranges()) - rangesBefore).toBeGreaterThanOrEqual(Math.floor(STATES / 2_000));
    writing = false;
    await writer;
    expect(written).toBeGreaterThan(0);
    const [states = [], machines = []] = results;
    expect(machines).toHaveLength(5);
    expect(states.every((kv) => kv.modRevision <= revision)).toBe(true);
    expect(states.filter((kv) => kv.key.includes("/big-"))).toHaveLength(STATES);
    // Nothing written after the snapshot's revision, nothing twice, in key order.
    const late = states.filter((kv) => kv.key.includes("/late-")).length;
    const atRevision = await client.getAll().prefix(keys.statesAll).exec();
    expect(states.length).toBe(STATES + late);
    expect(new Set(states.map((kv) => kv.key)).size).toBe(states.length);
    expect(states.map((kv) => kv.key)).toEqual([...states.map((kv) => kv.key)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    expect(Number(atRevision.header.revision)).toBeGreaterThan(revision);
    await client.delete().prefix(`${keys.statesAll}late-`).exec();
  });

  it("GET /fleet/v1/state pages through all of them", async () => {
    const c = new ApiClient({ endpoint: `unix://${join(dir, "api.sock")}`, requestTimeoutMs: 30_000 });
    try {
      const states = await c.listUnitStates();
      expect(states).toHaveLength(STATES);
      expect(states.every((s) => s.machineID === MACHINE && s.systemdActiveState === "active")).toBe(true);
    } finally {
      c.close();
    }
  });
});
