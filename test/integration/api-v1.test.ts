/**
 * fleetd's HTTP API v1 against a real etcd and the real EtcdRegistry: routes, status codes, fleet's
 * messages, paging, metadata PATCH, the 503 while unregistered and the TCP listener's bearer token.
 */
import { request } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Etcd3 } from "etcd3";
import { ApiClient } from "../../lib/api/client";
import { createApiServer, registryBackend, type ApiServer } from "../../fleetd/api";
import { createEtcdClient, EtcdStore } from "../../fleetd/registry/etcd-store";
import { EtcdRegistry } from "../../fleetd/registry/etcd-registry";
import { MachineSession } from "../../fleetd/registry/machine-session";
import { etcdFixture } from "../helpers/fleet-fixture";

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: () => unknown;
}

function call(target: { socketPath: string } | { port: number }, method: string, path: string, opts: { body?: string; headers?: Record<string, string> } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request({ ...target, host: "127.0.0.1", method, path, headers: opts.headers ?? {} }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) as unknown }));
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

const json = { "Content-Type": "application/json" };
const hello = [
  { section: "Unit", name: "Description", value: "Hello" },
  { section: "Service", name: "ExecStart", value: "/bin/sleep 1000" },
];

describe("HTTP API v1 on a real etcd", () => {
  const etcd = etcdFixture();
  let client: Etcd3;
  let api: ApiServer;
  let dir: string;
  let sock: { socketPath: string };
  let tcpPort: number;
  let registered = true;
  let session: MachineSession;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "api-v1-"));
    client = createEtcdClient({ endpoints: [etcd().endpoint] });
    const store = new EtcdStore(client, { prefix: "/fleet-test/" });
    const registry = new EtcdRegistry(store, { isRegistered: () => registered });
    session = new MachineSession(store, {
      machine: { id: "0123456789abcdef0123456789abcdef", publicIP: "10.0.0.2", metadata: { role: "web" }, version: "0.1.0", disableEngine: false },
      ttlSeconds: 10,
    });
    await session.register();
    api = createApiServer({ backend: registryBackend(registry), version: "0.1.0", tokenLimit: 2 });
    await api.listen({ kind: "unix", path: join(dir, "fleet.sock") });
    const tcp = await api.listen({ kind: "tcp", host: "127.0.0.1", port: 0, token: "s3cret" });
    tcpPort = Number(new URL(tcp.address).port);
    sock = { socketPath: join(dir, "fleet.sock") };
  });

  afterAll(async () => {
    await api?.close();
    await session?.leave().catch(() => undefined);
    client?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("answers / with 405, unknown paths with 404, and names itself in the Server header", async () => {
    const root = await call(sock, "GET", "/");
    expect(root.status).toBe(405);
    expect(root.headers.server).toBe("fleetd/0.1.0");
    expect((root.json() as { error: { code: number } }).error.code).toBe(405);
    expect((await call(sock, "GET", "/nope")).status).toBe(404);
    expect((await call(sock, "GET", "/fleet/v1/nope")).status).toBe(404);
  });

  it("serves the discovery document under both prefixes", async () => {
    for (const prefix of ["/fleet/v1", "/v1-alpha"]) {
      const res = await call(sock, "GET", `${prefix}/discovery`);
      expect(res.status).toBe(200);
      expect((res.json() as { id: string }).id).toBe("fleet:v1");
    }
    expect((await call(sock, "POST", "/fleet/v1/discovery")).status).toBe(400);
  });

  it("creates, reads, changes and deletes units with fleet's status codes and messages", async () => {
    const put = (name: string, body: unknown, headers: Record<string, string> = json): Promise<Res> =>
      call(sock, "PUT", `/fleet/v1/units/${name}`, { body: JSON.stringify(body), headers });
    expect((await put("hello.service", { name: "hello.service", options: hello }, {})).status).toBe(415);
    const differs = await put("hello.service", { name: "other.service", options: hello });
    expect(differs.status).toBe(400);
    expect(differs.json()).toEqual({ error: { code: 400, message: 'name in URL "hello.service" differs from unit name in request body "other.service"' } });
    const badName = await put("hello.bogus", { options: hello });
    expect(badName.json()).toEqual({ error: { code: 400, message: "invalid unit type: bogus" } });
    const noOptions = await put("hello.service", { desiredState: "launched" });
    expect(noOptions.json()).toEqual({ error: { code: 409, message: "unit does not exist and options field empty" } });
    const conflicting = await put("bad.service", {
      options: [...hello, { section: "X-Fleet", name: "MachineID", value: "abc" }, { section: "X-Fleet", name: "Global", value: "true" }],
    });
    expect(conflicting.json()).toEqual({ error: { code: 400, message: "MachineID cannot be used with Global" } });

    const created = await put("hello.service", { name: "hello.service", options: hello });
    expect(created.status).toBe(201);
    expect(created.headers["content-type"]).toBe("application/json");
    const got = await call(sock, "GET", "/fleet/v1/units/hello.service");
    expect(got.json()).toEqual({ name: "hello.service", options: hello, desiredState: "inactive", currentState: "inactive" });
    expect((await put("hello.service", { name: "hello.service" })).json()).toEqual({
      error: { code: 409, message: "must provide DesiredState to update existing unit" },
    });
    expect((await put("hello.service", { desiredState: "loaded" })).status).toBe(204);
    expect(((await call(sock, "GET", "/fleet/v1/units/hello.service")).json() as { desiredState: string }).desiredState).toBe("loaded");
    // Same options again: no replacement, only the desired state changes.
    expect((await put("hello.service", { options: hello, desiredState: "launched" })).status).toBe(204);

    expect((await put("web@.service", { options: hello })).status).toBe(201);
    expect((await put("web@.service", { desiredState: "launched" })).json()).toEqual({
      error: { code: 400, message: 'cannot activate template "web@.service"' },
    });

    expect((await call(sock, "DELETE", "/fleet/v1/units/web@.service")).status).toBe(204);
    expect((await call(sock, "DELETE", "/fleet/v1/units/web@.service")).json()).toEqual({ error: { code: 404, message: "unit does not exist" } });
    expect((await call(sock, "GET", "/fleet/v1/units/web@.service")).status).toBe(404);
  });

  it("replaces a unit whose body changed (201) and resets it to inactive", async () => {
    const changed = [hello[0]!, { section: "Service", name: "ExecStart", value: "/bin/sleep 2000" }];
    const res = await call(sock, "PUT", "/fleet/v1/units/hello.service", { body: JSON.stringify({ options: changed }), headers: json });
    expect(res.status).toBe(201);
    const got = (await call(sock, "GET", "/fleet/v1/units/hello.service")).json() as { options: unknown; desiredState: string };
    expect(got.options).toEqual(changed);
    expect(got.desiredState).toBe("inactive");
  });

  it("pages lists with fleet's tokens (token_limit 2 here) and accepts a larger pageSize", async () => {
    const c = new ApiClient({ endpoint: `unix://${sock.socketPath}` });
    for (const n of ["a", "b", "c", "d", "e"]) await c.createUnit({ name: `${n}.service`, options: hello });
    const first = (await call(sock, "GET", "/fleet/v1/units")).json() as { units: { name: string }[]; nextPageToken: string };
    expect(first.units.map((u) => u.name)).toEqual(["a.service", "b.service"]);
    expect(first.nextPageToken).toBe("AgACAA==");
    const second = (await call(sock, "GET", `/fleet/v1/units?nextPageToken=${first.nextPageToken}`)).json() as { units: { name: string }[] };
    expect(second.units.map((u) => u.name)).toEqual(["c.service", "d.service"]);
    // fleet's message first (its clients and scripts), then what to do.
    const hint = ": send the nextPageToken of the previous answer of this same listing once, as it was and with the same pageSize (a token carries the page size), or leave it out to list from the first page";
    expect((await call(sock, "GET", "/fleet/v1/units?nextPageToken=ZAACAA==")).json()).toEqual({ error: { code: 400, message: `token limit must be 2${hint}` } });
    expect((await call(sock, "GET", "/fleet/v1/units?nextPageToken=garbage")).json()).toEqual({ error: { code: 400, message: `unable to decode token${hint}` } });
    expect((await call(sock, "GET", "/fleet/v1/units?nextPageToken=AgACAA==&nextPageToken=AgACAA==")).json()).toEqual({ error: { code: 400, message: `too many values for nextPageToken${hint}` } });
    expect((await call(sock, "GET", "/fleet/v1/units?nextPageToken=garbage")).status).toBe(400);
    const big = (await call(sock, "GET", "/fleet/v1/units?pageSize=100")).json() as { units: unknown[]; nextPageToken?: string };
    expect(big.units).toHaveLength(6);
    expect(big.nextPageToken).toBeUndefined();
    // The client follows tokens whatever the page size.
    const small = new ApiClient({ endpoint: `unix://${sock.socketPath}`, pageSize: 2 });
    expect((await small.listUnits()).map((u) => u.name)).toEqual(["a.service", "b.service", "c.service", "d.service", "e.service", "hello.service"]);
    c.close();
    small.close();
  });

  it("lists machines and patches dynamic metadata with fleet's validation", async () => {
    const list = (await call(sock, "GET", "/fleet/v1/machines")).json();
    expect(list).toEqual({ machines: [{ id: "0123456789abcdef0123456789abcdef", primaryIP: "10.0.0.2", metadata: { role: "web" } }] });
    const patch = (ops: unknown): Promise<Res> => call(sock, "PATCH", "/fleet/v1/machines", { body: JSON.stringify(ops) });
    expect((await patch([{ op: "add", path: "/x/meta/k", value: { value: "v" } }])).json()).toEqual({
      error: { code: 400, message: "machine metadata path invalid" },
    });
    const ok = await patch([
      { op: "add", path: "/0123456789abcdef0123456789abcdef/metadata/zone", value: { value: "a" } },
      { op: "remove", path: "/0123456789abcdef0123456789abcdef/metadata/role" },
    ]);
    expect(ok.status).toBe(204);
    const after = (await call(sock, "GET", "/fleet/v1/machines")).json() as { machines: { metadata?: unknown }[] };
    expect(after.machines[0]!.metadata).toEqual({ zone: "a" });
  });

  it("serves /state with filters and /state/<name> 404s for units without state", async () => {
    const res = (await call(sock, "GET", "/fleet/v1/state?unitName=hello.service")).json();
    expect(res).toEqual({ states: [] });
    expect((await call(sock, "GET", "/fleet/v1/state/hello.service")).json()).toEqual({ error: { code: 404, message: "unit state does not exist" } });
  });

  it("answers 503 with fleet's message while not registered", async () => {
    registered = false;
    try {
      const res = await call(sock, "GET", "/fleet/v1/units");
      expect(res.status).toBe(503);
      expect(res.json()).toEqual({ error: { code: 503, message: "fleet server unable to communicate with etcd" } });
    } finally {
      registered = true;
    }
  });

  it("refuses TCP requests without the bearer token", async () => {
    const tcp = { port: tcpPort };
    const anonymous = await call(tcp, "GET", "/fleet/v1/machines");
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers["www-authenticate"]).toBe('Bearer realm="fleet"');
    expect((await call(tcp, "GET", "/fleet/v1/machines", { headers: { Authorization: "Bearer wrong" } })).status).toBe(401);
    expect((await call(tcp, "GET", "/fleet/v1/machines", { headers: { Authorization: "Bearer s3cret" } })).status).toBe(200);
    const c = new ApiClient({ endpoint: `http://127.0.0.1:${tcpPort}`, token: "s3cret" });
    expect((await c.listMachines()).length).toBe(1);
    c.close();
  });
});
