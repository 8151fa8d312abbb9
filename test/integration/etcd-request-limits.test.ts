/**
 * etcd's limits on one request, at its defaults (`--max-request-bytes` 1.5 MiB, `--max-txn-ops` 128),
 * which etcd enforces by refusing the whole transaction.
 * - Batching packed units by operation count alone: 100 units of 30 KB made one 3 MB request, and
 *   every unit in it failed (a bulk POST answered 500 for all of them) though each fitted on its own;
 *   the engine's placement transactions (each schedule entry carries the unit's text) were refused
 *   the same way, and those units were never placed. Transactions are now bounded in bytes too, and
 *   a unit too large for any transaction is refused by the API with a 400, before anything is written.
 * - A rolling deploy records the template's revision texts in one key: ten of 200 KB did not fit; it
 *   keeps as many as do.
 * - `scale` to more than ~126 new instances was refused ("too many operations in txn request") though
 *   the API promised up to 10,000; it now writes several transactions.
 * - A rollout step that changed more than ~120 instances (max-unavailable 100 % of 200) was refused
 *   and retried forever; steps now make at most 100 changes.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createApiServer, registryBackend } from "../../fleetd/api";
import { DeployOperations } from "../../fleetd/deploy/deploy-operations";
import { deploymentKey } from "../../fleetd/deploy/records";
import { EtcdRegistry } from "../../fleetd/registry/etcd-registry";
import { createEtcdClient, EtcdStore } from "../../fleetd/registry/etcd-store";
import { Keys } from "../../fleetd/registry/keys";
import { MAX_TXN_BYTES } from "../../fleetd/registry/txn-limits";
import { ApiClient, ApiError } from "../../lib/api/client";
import { summarizeDeployment } from "../../lib/api/deploy-types";
import type { UnitOption } from "../../lib/api/types";
import { MAX_UNIT_TEXT_BYTES, parseUnitFile } from "../../lib/unit";
import { etcdFixture, fleetFixture } from "../helpers/fleet-fixture";
import { unitTable, waitFor } from "../helpers/fleet-cluster";

/** A unit of about `bytes` bytes of text, distinct per `id` (no shared body). */
function bigUnit(id: string, bytes: number): UnitOption[] {
  const line = (j: number): UnitOption => ({ section: "Service", name: "ExecStartPre", value: `/bin/echo ${id} ${j} ${"x".repeat(970)}` });
  return [
    { section: "Unit", name: "Description", value: `large unit ${id}` },
    ...Array.from({ length: Math.ceil(bytes / 1_000) }, (_, j) => line(j)),
    { section: "Service", name: "ExecStart", value: "/bin/sleep infinity" },
  ];
}

describe("large unit files (real etcd, default request limit)", () => {
  const fx = fleetFixture();

  async function withApi<T>(fn: (api: ApiClient, cluster: ReturnType<typeof fx.cluster>) => Promise<T>): Promise<T> {
    const cluster = fx.cluster();
    const dir = await mkdtemp(join(tmpdir(), "large-units-"));
    const server = createApiServer({ backend: registryBackend(cluster.registry), version: "test" });
    const socket = join(dir, "api.sock");
    await server.listen({ kind: "unix", path: socket });
    const api = new ApiClient({ endpoint: `unix://${socket}`, maxSockets: 64 });
    try {
      return await fn(api, cluster);
    } finally {
      api.close();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  }

  it("creates 100 units of 30 KB sent at once, one PUT each and in one POST, in transactions etcd accepts", async () => {
    await withApi(async (api, cluster) => {
      const before = { ...cluster.registry.batcher.stats };
      await Promise.all(Array.from({ length: 100 }, (_, i) => api.createUnit({ name: `put${i}.service`, options: bigUnit(`put${i}`, 30_000), desiredState: "loaded" })));
      await api.putUnits(Array.from({ length: 100 }, (_, i) => ({ name: `post${i}.service`, options: bigUnit(`post${i}`, 30_000), desiredState: "loaded" as const })));
      const units = await cluster.registry.listUnits();
      expect(units.filter((u) => u.name.startsWith("put")).length).toBe(100);
      expect(units.filter((u) => u.name.startsWith("post")).length).toBe(100);
      // 200 units of 30 KB are 6 MB: several transactions, however the requests arrived.
      expect(cluster.registry.batcher.stats.writeTransactions - before.writeTransactions).toBeGreaterThanOrEqual(5);
    });
  });

  it("refuses a unit too large for etcd with a 400 that says so, and writes nothing", async () => {
    await withApi(async (api, cluster) => {
      const err = await api.createUnit({ name: "huge.service", options: bigUnit("huge", MAX_UNIT_TEXT_BYTES + 10_000), desiredState: "launched" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).status).toBe(400);
      expect((err as ApiError).message).toMatch(/unit file too large: \d+ bytes; at most 524288/);
      const k = new Keys(cluster.prefix);
      expect(await cluster.client.getAll().prefix(k.units).keys()).toEqual([]);
      expect(await cluster.client.getAll().prefix(k.bodies).keys()).toEqual([]);
      // A unit just under the limit is stored.
      await api.createUnit({ name: "largest.service", options: bigUnit("largest", MAX_UNIT_TEXT_BYTES - 20_000), desiredState: "loaded" });
      expect((await cluster.registry.getUnit("largest.service"))?.name).toBe("largest.service");
    });
  });

  it("places and starts 120 units of 30 KB and one of 500 KB on two machines (placement transactions bounded in bytes)", async () => {
    const cluster = fx.cluster();
    await Promise.all(["m1", "m2"].map((id) => cluster.add(id)));
    await cluster.waitMachines();
    const units = Array.from({ length: 120 }, (_, i) => ({ name: `big${i}.service`, options: bigUnit(`big${i}`, 30_000), desiredState: "launched" as const }));
    units.push({ name: "largest.service", options: bigUnit("largest", MAX_UNIT_TEXT_BYTES - 20_000), desiredState: "launched" });
    await cluster.registry.createUnits(units);
    await waitFor(
      "121 large units launched",
      async () => Object.values(await unitTable(cluster)).filter((v) => v.startsWith("launched@")).length === 121,
      { timeoutMs: 30_000, describe: () => cluster.describe() },
    );
    expect(cluster.get("m1").manager.running().length + cluster.get("m2").manager.running().length).toBe(121);
  });
});

describe("rolling deploys of a large template (real etcd and fleetd)", () => {
  const fx = fleetFixture();

  it("keeps as many revisions as fit in one etcd request: 8 deploys of a 200 KB template, then a rollback", async () => {
    const cluster = fx.cluster();
    await cluster.add("m1");
    await cluster.waitMachines();
    const text = ["[Unit]", "Description=large template %i", "", "[Service]", "Environment=image=v0", ...Array.from({ length: 200 }, (_, j) => `ExecStartPre=/bin/echo ${j} ${"x".repeat(990)}`), "ExecStart=/bin/sleep infinity ${image}", ""].join("\n");
    await cluster.registry.createUnit({ name: "big@.service", options: parseUnitFile(text), desiredState: "inactive" });
    const ops = new DeployOperations(new EtcdStore(cluster.client, { prefix: cluster.prefix }));
    const done = (what: string) => waitFor(what, async () => (await ops.getDeployment("big@.service"))?.rollout?.phase === "done", { describe: () => cluster.describe() });
    for (let i = 1; i <= 8; i++) {
      const plan = await ops.deploy("big@.service", { set: { image: `v${i}` } });
      expect(plan.revision).toBe(i + 1);
      await done(`the rollout of revision ${i + 1}`);
    }
    const k = new Keys(cluster.prefix);
    const stored = await cluster.client.get(deploymentKey(k, "big@.service")).buffer();
    expect(stored!.length).toBeLessThanOrEqual(MAX_TXN_BYTES);
    const history = (await ops.getDeployment("big@.service"))!.revisions;
    // 200 KB each: three revisions, the new body and room for a rollout step's writes fill the 1 MiB
    // budget; the newest are kept.
    expect(history.map((r) => r.revision)).toEqual([7, 8, 9]);
    await ops.deploy("big@.service", { toRevision: 8 });
    await done("the rollback to revision 8");
    expect((await ops.getDeployment("big@.service"))!.revisions.at(-1)).toMatchObject({ revision: 10, hash: history[1]!.hash, change: "rollback to 8" });
  });
});

describe("a rolling deploy that changes more instances at once than one transaction holds (real etcd and fleetds)", () => {
  const fx = fleetFixture();

  it("rolls 200 instances at max-unavailable 100 %, in steps etcd accepts", async () => {
    const cluster = fx.cluster();
    await Promise.all(["m1", "m2"].map((id) => cluster.add(id)));
    await cluster.waitMachines();
    await cluster.registry.createUnit({ name: "app@.service", options: parseUnitFile("[Service]\nEnvironment=image=v0\nExecStart=/bin/sleep infinity ${image}\n"), desiredState: "inactive" });
    const ops = new DeployOperations(new EtcdStore(cluster.client, { prefix: cluster.prefix }));
    await ops.scale("app@.service", { instances: 200 });
    const launched = async (): Promise<number> => Object.entries(await unitTable(cluster)).filter(([n, v]) => /^app@\d+\.service$/.test(n) && v.startsWith("launched@")).length;
    await waitFor("200 instances launched", async () => (await launched()) === 200, { timeoutMs: 30_000, describe: () => cluster.describe() });
    const plan = await ops.deploy("app@.service", { set: { image: "v1" }, maxUnavailable: "100%" });
    expect(plan.instances.length).toBe(200);
    const rollout = await waitFor("the rollout done", async () => {
      const r = (await ops.getDeployment("app@.service"))?.rollout;
      return r?.phase === "done" ? r : undefined;
    }, { timeoutMs: 30_000, describe: () => cluster.describe() });
    expect(rollout.outcome).toBe("succeeded");
    const running = [...cluster.instances.values()].flatMap((i) => i.manager.running().filter((n) => n.startsWith("app@")).map((n) => i.manager.disk.get(n) ?? ""));
    expect(running.length).toBe(200);
    expect(running.every((text) => text.includes("Environment=image=v1"))).toBe(true);
  });
});

describe("scaling by more instances than one transaction holds (real etcd)", () => {
  const etcd = etcdFixture();

  it("creates 300 instances and destroys 280 of them, highest first, across transactions", async () => {
    const client = createEtcdClient({ endpoints: [etcd().endpoint] });
    try {
      const store = new EtcdStore(client, { prefix: "/scale/" });
      const registry = new EtcdRegistry(store, { isRegistered: () => true });
      await registry.createUnit({ name: "web@.service", options: parseUnitFile("[Service]\nExecStart=/bin/sleep infinity\n"), desiredState: "inactive" });
      const ops = new DeployOperations(store);
      const instances = async (): Promise<string[]> => (await registry.listUnits()).map((u) => u.name).filter((n) => /^web@\d+\.service$/.test(n));
      expect((await ops.scale("web@.service", { instances: 300 })).create.length).toBe(300);
      expect((await instances()).length).toBe(300);
      const down = await ops.scale("web@.service", { instances: 20 });
      expect(down.destroy[0]).toBe("web@300.service");
      expect((await instances()).sort((a, b) => parseInt(a.slice(4)) - parseInt(b.slice(4)))).toEqual(Array.from({ length: 20 }, (_, i) => `web@${i + 1}.service`));
    } finally {
      client.close();
    }
  });
});

describe("a rolling deploy of the most instances scale makes (real etcd and fleetds)", () => {
  const fx = fleetFixture();

  it("rolls 10,000 instances of a template with a long name at max-unavailable 100 %, its record small in etcd", async () => {
    const cluster = fx.cluster();
    await Promise.all(["m1", "m2"].map((id) => cluster.add(id)));
    await cluster.waitMachines();
    // Stored name by name, this rollout's record was 1.6 MB: the deploy was refused (400) as too large for etcd.
    const template = "payments-reconciliation-worker-eu-west-1@.service";
    const instance = /^payments-reconciliation-worker-eu-west-1@\d+\.service$/;
    await cluster.registry.createUnit({ name: template, options: parseUnitFile("[Service]\nEnvironment=image=v0\nExecStart=/bin/sleep infinity ${image}\n"), desiredState: "inactive" });
    const ops = new DeployOperations(new EtcdStore(cluster.client, { prefix: cluster.prefix }));
    await ops.scale(template, { instances: 10_000 });
    const launched = async (): Promise<number> => Object.entries(await unitTable(cluster)).filter(([n, v]) => instance.test(n) && v.startsWith("launched@")).length;
    await waitFor("10,000 instances launched", async () => (await launched()) === 10_000, { timeoutMs: 120_000, describe: () => cluster.describe() });
    const plan = await ops.deploy(template, { set: { image: "v1" }, maxUnavailable: "100%" });
    expect(plan.instances.length).toBe(10_000);
    const k = new Keys(cluster.prefix);
    let largest = 0;
    const rollout = await waitFor("the rollout done", async () => {
      largest = Math.max(largest, (await cluster.client.get(deploymentKey(k, template)).buffer())?.length ?? 0);
      const r = (await ops.getDeployment(template))?.rollout;
      return r?.phase === "done" ? r : undefined;
    }, { timeoutMs: 180_000, describe: () => cluster.describe() });
    expect(rollout.outcome).toBe("succeeded");
    // The API still answers the whole rollout: every instance, with the hash it had before.
    expect(rollout.instances.length).toBe(10_000);
    expect(Object.keys(rollout.previous).length).toBe(10_000);
    // What fleetctl polls while following (`?brief=true`): a few hundred bytes, not the 1.6 MB of names.
    const full = (await ops.getDeployment(template))!;
    expect(JSON.stringify(full).length).toBeGreaterThan(1_000_000);
    expect(JSON.stringify(summarizeDeployment(full)).length).toBeLessThan(2_048);
    expect(new Set(Object.values(rollout.previous))).toEqual(new Set([rollout.fromHash]));
    // Stored as runs of instance numbers: every step rewrites this key (every 100 ms while rolling).
    expect(largest).toBeLessThan(16 * 1024);
    const running = [...cluster.instances.values()].flatMap((i) => i.manager.running().filter((n) => instance.test(n)).map((n) => i.manager.disk.get(n) ?? ""));
    expect(running.length).toBe(10_000);
    expect(running.every((text) => text.includes("Environment=image=v1"))).toBe(true);
  });
});
