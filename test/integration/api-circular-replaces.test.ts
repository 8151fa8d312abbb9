/**
 * Circular Replaces (A replaces B, B replaces A), as fleet accepted them: PUT /units accepts both, and
 * at most one of the two ever runs. The one running stays; the other stays unscheduled with the reason
 * shown by the API and `fleetctl status`, and is scheduled once the first is gone. Real etcd, two
 * fleetds (engine + agent, in-memory unit managers), the real API over a unix socket and the real CLI.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiClient } from "../../lib/api/client";
import { parseUnitFile } from "../../lib/unit";
import { unitText, waitFor } from "../helpers/fleet-cluster";
import { etcdFixture } from "../helpers/fleet-fixture";
import { FleetctlEnv } from "./fleetctl-harness";

const M1 = "f1b2c3d4e5f60718293a4b5c6d7e8f91";
const M2 = "f2b2c3d4e5f60718293a4b5c6d7e8f92";

describe("circular Replaces: both accepted, one runs", () => {
  const etcd = etcdFixture();
  let env: FleetctlEnv;
  let fleet: ApiClient;

  beforeAll(async () => {
    env = await FleetctlEnv.start(etcd(), [M1, M2]);
    fleet = new ApiClient({ endpoint: `unix://${env.socket}` });
  });

  afterAll(async () => {
    fleet?.close();
    await env?.close();
  });

  const put = (name: string, replaces: string[]): Promise<void> =>
    fleet.createUnit({ name, options: parseUnitFile(unitText(replaces.length > 0 ? { Replaces: replaces } : {})), desiredState: "launched" });
  const running = (): string[] => [M1, M2].flatMap((m) => env.cluster.get(m).manager.running().filter((u) => u === "old.service" || u === "new-1.service"));

  it("accepts the unit closing the circle, keeps the running one, and explains why the other waits", async () => {
    await put("old.service", ["new*.service"]);
    await waitFor("old.service running", () => running().join(",") === "old.service", { describe: () => env.cluster.describe() });
    await put("new-1.service", ["old.service"]);
    const waiting = await waitFor("new-1.service's unscheduled reason", async () => (await fleet.getUnit("new-1.service"))?.unscheduledReason);
    expect(waiting.summary).toBe("no machine can run it (2 machines): 2 excluded by Replaces");
    const where = (await fleet.getUnit("old.service"))?.machineID;
    const detail = `it and "old.service" (on machine ${where}) replace each other (circular Replaces): only one of the two runs, and "old.service" was scheduled first`;
    expect(waiting.machines).toEqual([M1, M2].map((machineID) => ({ machineID, rule: "Replaces", detail })));
    expect(running()).toEqual(["old.service"]);
    const status = await env.run(["status", "new-1.service"]);
    expect(status.code).toBe(1);
    expect(status.stderr).toContain("Unit new-1.service is not scheduled on any machine: no machine can run it (2 machines): 2 excluded by Replaces\n");
    expect(status.stderr).toContain("replace each other (circular Replaces)");
  });

  it("schedules the waiting unit once the running one is destroyed, and never runs both", async () => {
    const both: string[][] = [];
    const sample = setInterval(() => {
      const now = running();
      if (now.length > 1) both.push(now);
    }, 5);
    try {
      expect(await fleet.destroyUnit("old.service")).toBe(true);
      await waitFor("new-1.service running", () => running().join(",") === "new-1.service", { describe: () => env.cluster.describe() });
    } finally {
      clearInterval(sample);
    }
    expect(both).toEqual([]);
    expect((await fleet.getUnit("new-1.service"))?.unscheduledReason).toBeUndefined();
  });
});
