import { request } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryUnitManager } from "../../fleetd/agent/memory-unit-manager";
import { FleetServer } from "../../fleetd/server";
import { submit, testConfig, unitTable, unitText, waitFor } from "../helpers/fleet-cluster";
import { fleetFixture } from "../helpers/fleet-fixture";

function get(socketPath: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("SIGHUP reload (in-process server with its API)", () => {
  const fx = fleetFixture();
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "fleetd-reload-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("applies new metadata, keeps the API socket and every unit running", async () => {
    const cluster = fx.cluster();
    const socket = join(dir, "fleet.sock");
    const manager = new MemoryUnitManager();
    const extra = { api_socket: socket, lease_file: join(dir, "lease") };
    const server = await FleetServer.start({ config: testConfig(fx.etcd(), cluster.prefix, "h1", { metadata: "zone=a", extra }), version: "test", unitManager: manager });
    try {
      await waitFor("the API to answer", async () => (await get(socket, "/fleet/v1/machines")).status === 200);
      await submit(cluster, "u.service", unitText({ MachineMetadata: "zone=a" }));
      await waitFor("u launched", async () => (await unitTable(cluster))["u.service"] === "launched@h1");

      await server.reload(testConfig(fx.etcd(), cluster.prefix, "h1", { metadata: "zone=a,disk=ssd", extra }));
      const machines = await waitFor("the new metadata through the same socket", async () => {
        const r = await get(socket, "/fleet/v1/machines");
        return r.body.includes("ssd") ? r : undefined;
      });
      expect(JSON.parse(machines.body)).toEqual({ machines: [{ id: "h1", primaryIP: expect.any(String) as string, metadata: { disk: "ssd", zone: "a" }, capacity: { cpus: availableParallelism() * 1000, memory: totalmem() } }] });
      expect(await unitTable(cluster)).toEqual({ "u.service": "launched@h1" });
      expect(manager.count("stop") + manager.count("unload")).toBe(0);
      expect(manager.running()).toEqual(["u.service"]);

      // New metadata is a scheduling input like any other: the engine moves what no longer matches.
      await submit(cluster, "v.service", unitText({ MachineMetadata: "zone=b" }));
      await server.reload(testConfig(fx.etcd(), cluster.prefix, "h1", { metadata: "zone=b", extra }));
      await waitFor("v launched after the metadata change", async () => (await unitTable(cluster))["v.service"] === "launched@h1");
      await waitFor("u unscheduled: zone=a is gone", () => !manager.running().includes("u.service"));
    } finally {
      await server.stop({ leave: true });
    }
  });
});
