/**
 * Server-side batching of concurrent unit writes (`fleetd/registry/txn-batcher.ts`) against a real etcd
 * started with a small op limit (`--max-txn-ops 8`), so batches really split: concurrent PUTs through
 * the HTTP API each get their own answer, a conflict stays that unit's own, and a batch etcd refuses
 * leaves nothing written.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Etcd3 } from "etcd3";
import { createApiServer, registryBackend, type ApiServer } from "../../fleetd/api";
import { createEtcdClient, EtcdStore } from "../../fleetd/registry/etcd-store";
import { EtcdRegistry } from "../../fleetd/registry/etcd-registry";
import { parseRecord, type UnitRecord } from "../../fleetd/registry/keys";
import { TxnBatcher } from "../../fleetd/registry/txn-batcher";
import { startEtcd, type EtcdInstance } from "../helpers/etcd";
import { socketRequest } from "../helpers/socket-request";

const MAX_OPS = 8;
const body = (what: string): { section: string; name: string; value: string }[] => [
  { section: "Unit", name: "Description", value: what },
  { section: "Service", name: "ExecStart", value: "/bin/sleep 1000" },
];

function put(socketPath: string, name: string, payload: unknown): Promise<{ status: number; body: string }> {
  return socketRequest(socketPath, "PUT", `/fleet/v1/units/${encodeURIComponent(name)}`, JSON.stringify(payload));
}

describe("batched unit writes on a real etcd (--max-txn-ops 8)", () => {
  let etcd: EtcdInstance;
  let client: Etcd3;
  let dir: string;

  beforeAll(async () => {
    etcd = await startEtcd({ maxTxnOps: MAX_OPS });
    client = createEtcdClient({ endpoints: [etcd.endpoint] });
    dir = await mkdtemp(join(tmpdir(), "api-batching-"));
  });
  afterAll(async () => {
    client?.close();
    await etcd?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const record = async (prefix: string, name: string): Promise<UnitRecord | undefined> => {
    const value = await client.get(`${prefix}units/${name}`).buffer();
    return value ? parseRecord<UnitRecord>(name, value) : undefined;
  };

  it("answers 60 concurrent PUTs each on its own (201, 204, 409, 400) from fewer transactions than requests", async () => {
    const prefix = "/batch-http/";
    const registry = new EtcdRegistry(new EtcdStore(client, { prefix }), { isRegistered: () => true, maxTxnOps: MAX_OPS });
    const api: ApiServer = createApiServer({ backend: registryBackend(registry), version: "test" });
    const socketPath = join(dir, "http.sock");
    await api.listen({ kind: "unix", path: socketPath });
    try {
      for (let i = 0; i < 5; i++) expect(await registry.createUnit({ name: `old-${i}.service`, options: body("old") })).toBe("created");
      const news = Array.from({ length: 50 }, (_, i) => `new-${i}.service`);
      const [created, changed, missing, template] = await Promise.all([
        Promise.all(news.map((n) => put(socketPath, n, { name: n, options: body(n), desiredState: "launched" }))),
        Promise.all(Array.from({ length: 5 }, (_, i) => put(socketPath, `old-${i}.service`, { desiredState: "loaded" }))),
        Promise.all(Array.from({ length: 3 }, (_, i) => put(socketPath, `ghost-${i}.service`, { desiredState: "launched" }))),
        Promise.all(Array.from({ length: 2 }, (_, i) => put(socketPath, `tmpl${i}@.service`, { options: body("t"), desiredState: "launched" }))),
      ]);
      expect(created.map((r) => r.status)).toEqual(news.map(() => 201));
      expect(changed.map((r) => r.status)).toEqual([204, 204, 204, 204, 204]);
      expect(missing.map((r) => [r.status, JSON.parse(r.body) as unknown])).toEqual(
        missing.map(() => [409, { error: { code: 409, message: "unit does not exist and options field empty" } }]),
      );
      expect(template.map((r) => r.status)).toEqual([400, 400]);
      for (const n of news) expect(await record(prefix, n)).toMatchObject({ name: n, desiredState: "launched" });
      for (let i = 0; i < 5; i++) expect((await record(prefix, `old-${i}.service`))?.desiredState).toBe("loaded");
      for (let i = 0; i < 3; i++) expect(await record(prefix, `ghost-${i}.service`)).toBeUndefined();
      for (let i = 0; i < 2; i++) expect(await record(prefix, `tmpl${i}@.service`)).toBeUndefined();
    } finally {
      await api.close();
    }
  });

  it("packs creates issued together into full transactions (7 units + their shared body per 8 ops)", async () => {
    const prefix = "/batch-pack/";
    const registry = new EtcdRegistry(new EtcdStore(client, { prefix }), { isRegistered: () => true, maxTxnOps: MAX_OPS });
    const outcomes = await Promise.all(Array.from({ length: 40 }, (_, i) => registry.createUnit({ name: `p-${i}.service`, options: body("packed"), desiredState: "launched" })));
    expect(outcomes).toEqual(outcomes.map(() => "created"));
    expect(registry.batcher.stats).toMatchObject({ writeTransactions: Math.ceil(40 / (MAX_OPS - 1)), writes: 40 });
    expect((await client.getAll().prefix(`${prefix}units/`).keys()).length).toBe(40);
    expect((await client.getAll().prefix(`${prefix}bodies/`).keys()).length).toBe(1);
  });

  it("isolates conflicts: an existing unit in a batch of creates is answered alone and left untouched", async () => {
    const prefix = "/batch-conflict/";
    const registry = new EtcdRegistry(new EtcdStore(client, { prefix }), { isRegistered: () => true, maxTxnOps: MAX_OPS });
    expect(await registry.createUnit({ name: "same.service", options: body("same"), desiredState: "launched" })).toBe("created");
    expect(await registry.createUnit({ name: "other.service", options: body("v1"), desiredState: "launched" })).toBe("created");
    const sameBefore = await client.get(`${prefix}units/same.service`).exec();
    const outcomes = await Promise.all([
      ...Array.from({ length: 6 }, (_, i) => registry.createUnit({ name: `fresh-${i}.service`, options: body("fresh"), desiredState: "launched" })),
      registry.createUnit({ name: "same.service", options: body("same"), desiredState: "inactive" }),
      registry.createUnit({ name: "other.service", options: body("v2"), desiredState: "loaded" }),
      // Two creates of one new name in the same burst: never in one transaction; the second replaces.
      registry.createUnit({ name: "twice.service", options: body("first") }),
      registry.createUnit({ name: "twice.service", options: body("second"), desiredState: "loaded" }),
    ]);
    expect(outcomes).toEqual(["created", "created", "created", "created", "created", "created", "unchanged", "replaced", "created", "replaced"]);
    const sameAfter = await client.get(`${prefix}units/same.service`).exec();
    expect(sameAfter.kvs[0]?.mod_revision).toBe(sameBefore.kvs[0]?.mod_revision);
    expect(await record(prefix, "other.service")).toMatchObject({ desiredState: "loaded" });
    expect(await record(prefix, "twice.service")).toMatchObject({ desiredState: "loaded" });
    const twice = (await registry.getUnit("twice.service"))!;
    expect(twice.options.find((o) => o.name === "Description")?.value).toBe("second");
    for (let i = 0; i < 6; i++) expect(await record(prefix, `fresh-${i}.service`)).toMatchObject({ desiredState: "launched" });
  });

  it("a desired-state change of a missing unit fails alone (404) while the others in its burst apply", async () => {
    const prefix = "/batch-state/";
    const registry = new EtcdRegistry(new EtcdStore(client, { prefix }), { isRegistered: () => true, maxTxnOps: MAX_OPS });
    for (let i = 0; i < 10; i++) await registry.createUnit({ name: `s-${i}.service`, options: body("s") });
    const results = await Promise.allSettled([
      ...Array.from({ length: 10 }, (_, i) => registry.setDesiredState(`s-${i}.service`, "launched")),
      registry.setDesiredState("nobody.service", "launched"),
    ]);
    expect(results.slice(0, 10).every((r) => r.status === "fulfilled")).toBe(true);
    expect(results[10]).toMatchObject({ status: "rejected", reason: { name: "UnitNotFoundError" } });
    for (let i = 0; i < 10; i++) expect((await record(prefix, `s-${i}.service`))?.desiredState).toBe("launched");
  });

  it("a batch that etcd refuses writes nothing and fails every request in it", async () => {
    const prefix = "/batch-refused/";
    const store = new EtcdStore(client, { prefix });
    // Batches of up to 128 against an etcd that accepts 8: the first transaction is refused whole.
    const batcher = new TxnBatcher(store, { maxTxnOps: 128, maxInFlight: 1 });
    const writes = Array.from({ length: 20 }, (_, i) =>
      batcher.write({ key: `${prefix}units/r-${i}`, expect: "absent", puts: [{ key: `${prefix}units/r-${i}`, value: Buffer.from("{}") }] }),
    );
    const settled = await Promise.allSettled(writes);
    expect(settled.every((s) => s.status === "rejected")).toBe(true);
    expect(String((settled[0] as PromiseRejectedResult).reason)).toMatch(/too many operations/i);
    expect((await client.getAll().prefix(prefix).keys()).length).toBe(0);
  });
});
