/**
 * `POST /deployments/<template>` (extension) on a real etcd with the real DeployOperations: a request
 * whose fields have the wrong shape is refused with a message naming the field, and nothing is written.
 */
import { request } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Etcd3 } from "etcd3";
import { createApiServer, operationsBackend, registryBackend, type ApiServer } from "../../fleetd/api";
import { DeployOperations } from "../../fleetd/deploy/deploy-operations";
import { createEtcdClient, EtcdStore } from "../../fleetd/registry/etcd-store";
import { EtcdRegistry } from "../../fleetd/registry/etcd-registry";
import { etcdFixture } from "../helpers/fleet-fixture";

function call(socketPath: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { "Content-Type": "application/json" };
    const req = request({ socketPath, method, path, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, json: text === "" ? undefined : (JSON.parse(text) as unknown) }));
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe("POST /deployments/<template> on a real etcd", () => {
  const etcd = etcdFixture();
  let client: Etcd3;
  let api: ApiServer;
  let dir: string;
  let sock: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "api-deployments-"));
    client = createEtcdClient({ endpoints: [etcd().endpoint] });
    const store = new EtcdStore(client, { prefix: "/api-deployments/" });
    const registry = new EtcdRegistry(store, { isRegistered: () => true });
    api = createApiServer({ backend: registryBackend(registry), operations: operationsBackend(new DeployOperations(store)), version: "0.1.0" });
    sock = join(dir, "fleet.sock");
    await api.listen({ kind: "unix", path: sock });
    const options = [
      { section: "Service", name: "Environment", value: "image=a" },
      { section: "Service", name: "ExecStart", value: "/bin/echo ${image}" },
    ];
    expect((await call(sock, "PUT", "/fleet/v1/units/web@.service", { options })).status).toBe(201);
    expect((await call(sock, "POST", "/fleet/v1/scale/web@.service", { instances: 2 })).status).toBe(200);
  });

  afterAll(async () => {
    await api?.close();
    client?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("refuses set given as a list of KEY=VALUE (not an object) by naming the field, and deploys nothing", async () => {
    const res = await call(sock, "POST", "/fleet/v1/deployments/web@.service", { set: ["image=b"] });
    expect(res).toEqual({
      status: 400,
      json: { error: { code: 400, message: 'field set must be an object of strings (KEY: VALUE) such as {"image":"registry.cluster:5000/web:2"}, not a list' } },
    });
    expect(await call(sock, "GET", "/fleet/v1/deployments/web@.service")).toEqual({ status: 200, json: { template: "web@.service", revisions: [] } });
    // The object form is the request that works (planned only here).
    const plan = await call(sock, "POST", "/fleet/v1/deployments/web@.service", { set: { image: "b" }, dryRun: true });
    expect(plan.status).toBe(200);
    expect(plan.json).toMatchObject({ template: "web@.service", dryRun: true, instances: ["web@1.service", "web@2.service"] });
  });
});
