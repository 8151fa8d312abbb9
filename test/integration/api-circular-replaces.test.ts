/**
 * PUT /units/<name> refuses a unit that would replace, and be replaced by, a unit already in the
 * cluster (the scheduler ignores such pairs, so accepting them would silently not honour Replaces).
 * Real etcd, real EtcdRegistry, real API over a unix socket, the shared API client.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Etcd3 } from "etcd3";
import { ApiClient, ApiError } from "../../lib/api/client";
import { parseUnitFile } from "../../lib/unit";
import { createApiServer, registryBackend, type ApiServer } from "../../fleetd/api";
import { EtcdRegistry } from "../../fleetd/registry/etcd-registry";
import { createEtcdClient, EtcdStore } from "../../fleetd/registry/etcd-store";
import { etcdFixture } from "../helpers/fleet-fixture";
import { unitText } from "../helpers/fleet-cluster";

describe("PUT /units refuses circular Replaces", () => {
  const etcd = etcdFixture();
  let client: Etcd3;
  let api: ApiServer;
  let dir: string;
  let fleet: ApiClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "api-replaces-"));
    client = createEtcdClient({ endpoints: [etcd().endpoint] });
    const registry = new EtcdRegistry(new EtcdStore(client, { prefix: "/replaces-test/" }), { isRegistered: () => true });
    api = createApiServer({ backend: registryBackend(registry), version: "0.1.0" });
    await api.listen({ kind: "unix", path: join(dir, "fleet.sock") });
    fleet = new ApiClient({ endpoint: `unix://${join(dir, "fleet.sock")}` });
  });

  afterAll(async () => {
    fleet?.close();
    await api?.close();
    client?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const put = (name: string, replaces: string[]): Promise<void> =>
    fleet.createUnit({ name, options: parseUnitFile(unitText(replaces.length > 0 ? { Replaces: replaces } : {})), desiredState: "launched" });

  it("accepts a one-way Replaces and refuses the unit that would close the circle, naming both", async () => {
    await put("old.service", ["new*.service"]);
    await put("other.service", ["old.service"]);
    const err = await put("new-1.service", ["old.service"]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(400);
    expect((err as ApiError).message).toMatch(/^circular Replaces between new-1\.service and old\.service: .*remove the matching Replaces pattern from one of them/);
    expect(await fleet.getUnit("new-1.service")).toBeUndefined();
  });

  it("refuses replacing a unit's body with one that closes the circle, and keeps the old body", async () => {
    await put("b.service", []);
    await put("a.service", ["b.service"]);
    const before = await fleet.getUnit("b.service");
    await expect(put("b.service", ["a.service"])).rejects.toThrow(/circular Replaces between b\.service and a\.service/);
    expect((await fleet.getUnit("b.service"))?.options).toEqual(before?.options);
  });

  it("does not refuse a unit whose Replaces matches itself or units that do not replace it", async () => {
    await put("self.service", ["self.service", "other.service"]);
    expect((await fleet.getUnit("self.service"))?.name).toBe("self.service");
  });
});
