/**
 * The dashboard's routes on the real API server over a real etcd reached through a TCP proxy: its
 * live feed answers like every API route while etcd cannot be reached (503, fleet's message), and a
 * method other than GET or HEAD on its page, script or stylesheet is 405 with `Allow`, not 404; a
 * request target starting with "//" is a path, and one that does not parse a 400, not a crash.
 */
import { request } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Etcd3 } from "etcd3";
import { createApiServer, registryBackend, type ApiServer } from "../../fleetd/api";
import { ClusterFeed, createDashboardRoutes } from "../../fleetd/dashboard";
import { createEtcdClient, EtcdStore } from "../../fleetd/registry/etcd-store";
import { EtcdRegistry } from "../../fleetd/registry/etcd-registry";
import { etcdFixture } from "../helpers/fleet-fixture";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy";

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(socketPath: string, method: string, path: string, headers: Record<string, string> = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

const ASSETS = { html: "<title>fleet dashboard</title>", js: "void 0;", css: "body{}", etag: '"test"' };

describe("dashboard routes on the API server", () => {
  const etcd = etcdFixture();
  let proxy: TcpProxy;
  let client: Etcd3;
  let feed: ClusterFeed;
  let api: ApiServer;
  let dir: string;
  let sock: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "dashboard-routes-"));
    const url = new URL(etcd().endpoint);
    proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    client = createEtcdClient({ endpoints: [proxy.endpoint], requestTimeoutMs: 1_000 });
    const store = new EtcdStore(client, { prefix: "/dashboard-routes/", requestTimeoutMs: 1_000 });
    // Registered all along: the case of an etcd lost since fleetd registered (its lease not yet expired).
    const registry = new EtcdRegistry(store, { isRegistered: () => true });
    feed = new ClusterFeed({ store: () => store, lingerMs: 0 });
    api = createApiServer({ backend: registryBackend(registry), version: "0.1.0", dashboard: createDashboardRoutes({ feed, assets: () => Promise.resolve(ASSETS) }) });
    sock = join(dir, "fleet.sock");
    await api.listen({ kind: "unix", path: sock });
  });

  afterAll(async () => {
    await api?.close();
    await feed?.close();
    client?.close();
    await proxy?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("answers GET and HEAD of the page, script and stylesheet, and 405 with Allow for other methods", async () => {
    for (const path of ["/", "/dashboard/app.js", "/dashboard/app.css"]) {
      expect((await call(sock, "GET", path)).status).toBe(200);
      expect((await call(sock, "HEAD", path)).status).toBe(200);
      for (const method of ["DELETE", "POST", "PUT", "PATCH"]) {
        const res = await call(sock, method, path);
        expect([path, method, res.status, res.headers.allow, res.headers["content-type"]]).toEqual([path, method, 405, "GET, HEAD", "application/json"]);
        expect(JSON.parse(res.body)).toEqual({ error: { code: 405, message: `method ${method} not allowed on ${path}: use GET or HEAD` } });
      }
    }
    // Paths beside the assets are still unknown.
    expect((await call(sock, "DELETE", "/dashboard/nope.js")).status).toBe(404);
  });

  it("takes a target starting with // for a path and answers one that does not parse 400 (GET // stopped fleetd)", async () => {
    // "//…" is a path, not a host: named as sent, not as "/v1/units" of a host "fleet".
    for (const target of ["//", "//:99999/x", "//fleet/v1/units"]) {
      const res = await call(sock, "GET", target);
      expect([res.status, res.headers.server, JSON.parse(res.body)]).toEqual([404, "fleetd/0.1.0", { error: { code: 404, message: `no such resource: ${target}` } }]);
    }
    for (const target of ["*", "http://[bad/x"]) {
      const res = await call(sock, "GET", target);
      expect([res.status, JSON.parse(res.body)]).toEqual([400, { error: { code: 400, message: `malformed request target ${JSON.stringify(target)}: send a path such as /fleet/v1/units` } }]);
    }
    expect((await call(sock, "GET", "/dashboard/app.js")).status).toBe(200);
  });

  it("answers the live feed 503 with fleet's message while etcd cannot be reached, as the API's routes do", async () => {
    proxy.reset();
    await proxy.close();
    const units = await call(sock, "GET", "/fleet/v1/units");
    expect([units.status, JSON.parse(units.body)]).toEqual([503, { error: { code: 503, message: "fleet server unable to communicate with etcd" } }]);
    const events = await call(sock, "GET", "/dashboard/v1/events");
    expect([events.status, events.headers["content-type"], JSON.parse(events.body)]).toEqual([
      503,
      "application/json",
      { error: { code: 503, message: "fleet server unable to communicate with etcd" } },
    ]);
  });
});
