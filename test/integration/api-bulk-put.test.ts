/**
 * `POST /fleet/v1/units` (many unit PUTs in one request, what our fleetctl sends) on a real etcd:
 * each item is answered exactly as its own `PUT /units/<name>` would be, the writes share etcd
 * transactions, a malformed request applies nothing; the client sends units answered 503 again after a
 * back-off, and falls back to one PUT per unit against a server that answers 405 as fleet's does (our
 * API behind a proxy that refuses the POST).
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Etcd3 } from "etcd3";
import { createApiServer, registryBackend, type ApiServer } from "../../fleetd/api";
import { EtcdRegistry } from "../../fleetd/registry/etcd-registry";
import { createEtcdClient, EtcdStore } from "../../fleetd/registry/etcd-store";
import { ApiClient, ApiError } from "../../lib/api/client";
import { startEtcd, type EtcdInstance } from "../helpers/etcd";
import { socketRequest } from "../helpers/socket-request";

const body = (what: string): { section: string; name: string; value: string }[] => [
  { section: "Unit", name: "Description", value: what },
  { section: "Service", name: "ExecStart", value: "/bin/sleep 1000" },
];

async function post(socketPath: string, payload: string, contentType = "application/json"): Promise<{ status: number; json: unknown }> {
  const { status, body: text } = await socketRequest(socketPath, "POST", "/fleet/v1/units", payload, contentType);
  return { status, json: text ? (JSON.parse(text) as unknown) : undefined };
}

describe("POST /fleet/v1/units on a real etcd", () => {
  let etcd: EtcdInstance;
  let client: Etcd3;
  let dir: string;
  let registry: EtcdRegistry;
  let api: ApiServer;
  let socketPath: string;

  beforeAll(async () => {
    etcd = await startEtcd();
    client = createEtcdClient({ endpoints: [etcd.endpoint] });
    dir = await mkdtemp(join(tmpdir(), "api-bulk-"));
    registry = new EtcdRegistry(new EtcdStore(client, { prefix: "/bulk/" }), { isRegistered: () => true });
    api = createApiServer({ backend: registryBackend(registry), version: "test" });
    socketPath = join(dir, "api.sock");
    await api.listen({ kind: "unix", path: socketPath });
  });
  afterAll(async () => {
    await api?.close();
    client?.close();
    await etcd?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("answers every item as its own PUT would (201, 204, 409, 400), in input order, from shared transactions", async () => {
    await registry.createUnit({ name: "old.service", options: body("old") });
    const before = { ...registry.batcher.stats };
    const news = Array.from({ length: 300 }, (_, i) => ({ name: `n-${i}.service`, options: body("n"), desiredState: "launched" }));
    const items = [
      ...news,
      { name: "old.service", desiredState: "loaded" },
      { name: "old.service", options: body("old"), desiredState: "launched" },
      { name: "ghost.service", desiredState: "launched" },
      { name: "t@.service", options: body("t"), desiredState: "launched" },
      { name: "bad name", options: body("x") },
      { options: body("no name") },
      { name: "conflicted.service", options: [...body("c"), { section: "X-Fleet", name: "MachineID", value: "abc" }, { section: "X-Fleet", name: "Global", value: "true" }] },
    ];
    const { status, json } = await post(socketPath, JSON.stringify({ units: items }));
    expect(status).toBe(200);
    const results = (json as { results: { name: string; code: number; message?: string }[] }).results;
    expect(results.slice(0, 300)).toEqual(news.map((n) => ({ name: n.name, code: 201 })));
    expect(results.slice(300)).toEqual([
      { name: "old.service", code: 204 },
      { name: "old.service", code: 204 },
      { name: "ghost.service", code: 409, message: "unit does not exist and options field empty" },
      { name: "t@.service", code: 400, message: 'cannot activate template "t@.service"' },
      { name: "bad name", code: 400, message: 'unit name must contain "."' },
      { name: "#305", code: 400, message: "unable to decode body: units[305] needs a name" },
      { name: "conflicted.service", code: 400, message: "MachineID cannot be used with Global" },
    ]);
    const units = await registry.listUnits();
    expect(units.filter((u) => u.name.startsWith("n-")).every((u) => u.desiredState === "launched")).toBe(true);
    expect(units.filter((u) => u.name.startsWith("n-"))).toHaveLength(300);
    expect(units.find((u) => u.name === "old.service")?.desiredState).toBe("launched");
    expect(units.map((u) => u.name)).not.toContain("ghost.service");
    expect(units.map((u) => u.name)).not.toContain("t@.service");
    // 300 creates in one request share transactions (up to 127 per transaction).
    expect(registry.batcher.stats.writeTransactions - before.writeTransactions).toBeLessThan(30);
  });

  it("refuses a request that is not a list of units, or too long, and applies nothing", async () => {
    const count = async (): Promise<number> => (await registry.listUnits()).length;
    const n = await count();
    expect(await post(socketPath, JSON.stringify([{ name: "a.service" }]))).toMatchObject({ status: 400, json: { error: { code: 400, message: expect.stringContaining('expected {"units":') as unknown } } });
    expect(await post(socketPath, "{not json")).toMatchObject({ status: 400 });
    expect(await post(socketPath, JSON.stringify({ units: [] }), "text/plain")).toMatchObject({ status: 415 });
    const many = Array.from({ length: 10_001 }, (_, i) => ({ name: `m-${i}.service`, options: body("m") }));
    expect(await post(socketPath, JSON.stringify({ units: many }))).toMatchObject({ status: 400, json: { error: { message: "too many units in one request: 10001; send at most 10000 per POST" } } });
    expect(await count()).toBe(n);
  });

  it("refuses a field it does not know (a dryRun it does not have) and writes nothing", async () => {
    const count = async (): Promise<number> => (await registry.listUnits()).length;
    const n = await count();
    const units = [{ name: "dry-1.service", options: body("d"), desiredState: "launched" }];
    expect(await post(socketPath, JSON.stringify({ units, dryRun: true }))).toEqual({
      status: 400,
      json: { error: { code: 400, message: 'unknown field "dryRun"; POST /units takes only "units" (the units to write, each as its PUT body with its name); nothing was written' } },
    });
    expect(await count()).toBe(n);
    // The list's key is matched case-insensitively, as fleet's decoder matches a PUT body's.
    expect(await post(socketPath, JSON.stringify({ Units: [] }))).toEqual({ status: 200, json: { results: [] } });
  });

  it("ApiClient.putUnits sends POSTs and throws the first failure as that PUT's ApiError, after applying the rest", async () => {
    const c = new ApiClient({ endpoint: `unix://${socketPath}` });
    try {
      const items = Array.from({ length: 2_500 }, (_, i) => ({ name: `c-${i}.service`, options: body("c"), desiredState: "loaded" as const }));
      await c.putUnits(items);
      expect((await c.listUnits()).filter((u) => u.name.startsWith("c-") && u.desiredState === "loaded")).toHaveLength(2_500);
      const err = await c.putUnits([{ name: "c-1.service", desiredState: "launched" }, { name: "nobody.service", desiredState: "launched" }]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect(err).toMatchObject({ status: 409, method: "PUT", path: "units/nobody.service", message: "unit does not exist and options field empty" });
      expect((await c.getUnit("c-1.service"))?.desiredState).toBe("launched");
    } finally {
      c.close();
    }
  });

  it("against a server that answers POST /units with 405 (fleet), the client falls back to one PUT per unit", async () => {
    const seen: string[] = [];
    const proxySocket = join(dir, "fleet-like.sock");
    const proxy: Server = createServer((req: IncomingMessage, res) => {
      seen.push(`${req.method} ${req.url?.split("?")[0]}`);
      if (req.method === "POST") {
        req.resume();
        res.writeHead(405, { "Content-Type": "application/json" }).end(JSON.stringify({ error: { code: 405, message: "" } }));
        return;
      }
      api.handle(req, res);
    });
    await new Promise<void>((r) => proxy.listen(proxySocket, r));
    const c = new ApiClient({ endpoint: `unix://${proxySocket}` });
    try {
      await c.putUnits(Array.from({ length: 40 }, (_, i) => ({ name: `f-${i}.service`, options: body("f") })));
      await c.putUnits(Array.from({ length: 40 }, (_, i) => ({ name: `f-${i}.service`, desiredState: "loaded" as const })));
      expect(seen.filter((s) => s.startsWith("POST"))).toEqual(["POST /fleet/v1/units"]);
      expect(seen.filter((s) => s.startsWith("PUT"))).toHaveLength(80);
      expect((await registry.listUnits()).filter((u) => u.name.startsWith("f-") && u.desiredState === "loaded")).toHaveLength(40);
    } finally {
      c.close();
      await new Promise<void>((r) => proxy.close(() => r()));
    }
  });

  it("sends units answered 503 again after a back-off (the whole request, or some of its items), until they land", async () => {
    const seen: string[] = [];
    const proxySocket = join(dir, "busy.sock");
    let posts = 0;
    const proxy: Server = createServer((req: IncomingMessage, res) => {
      if (req.method !== "POST") return void api.handle(req, res);
      posts++;
      if (posts > 2) return void api.handle(req, res);
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const names = (JSON.parse(Buffer.concat(chunks).toString()) as { units: { name: string }[] }).units.map((u) => u.name);
        seen.push(`POST ${names.length}`);
        const unavailable = { code: 503, message: "fleet server unable to communicate with etcd" };
        res.writeHead(posts === 1 ? 503 : 200, { "Content-Type": "application/json" });
        // First a busy server; then one that applied only the first item (etcd failed the others' transactions).
        if (posts === 1) return void res.end(JSON.stringify({ error: unavailable }));
        void registry.createUnit({ name: names[0]!, options: body("b") }).then(() =>
          res.end(JSON.stringify({ results: names.map((name, i) => (i === 0 ? { name, code: 201 } : { name, ...unavailable })) })),
        );
      });
    });
    await new Promise<void>((r) => proxy.listen(proxySocket, r));
    const c = new ApiClient({ endpoint: `unix://${proxySocket}` });
    try {
      await c.putUnits(Array.from({ length: 30 }, (_, i) => ({ name: `b-${i}.service`, options: body("b") })));
      expect(seen).toEqual(["POST 30", "POST 30"]);
      expect(posts).toBe(3);
      expect((await registry.listUnits()).filter((u) => u.name.startsWith("b-"))).toHaveLength(30);
    } finally {
      c.close();
      await new Promise<void>((r) => proxy.close(() => r()));
    }
  });
});
