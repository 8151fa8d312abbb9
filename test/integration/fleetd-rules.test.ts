import { describe, expect, it } from "vitest";
import { fleetFixture } from "../helpers/fleet-fixture";
import { type FleetCluster, submit, unitTable, unitText, waitFor } from "../helpers/fleet-cluster";

/** Placement of every unit once they all reached `state` (or were left unscheduled when listed in `pending`). */
async function settled(cluster: FleetCluster, expected: number, pending: readonly string[] = []): Promise<Record<string, string>> {
  return waitFor(
    `${expected} units settled`,
    async () => {
      const t = await unitTable(cluster);
      const ok = Object.entries(t).filter(([n, v]) => (pending.includes(n) ? v === "inactive@-" : v.startsWith("launched@")));
      return ok.length === expected ? t : undefined;
    },
    { describe: () => cluster.describe() },
  );
}

describe("fleet's scheduling rules across fleetd instances (real etcd)", () => {
  const fx = fleetFixture();

  it("Conflicts keeps conflicting units apart and leaves the surplus unscheduled with a reason", async () => {
    const cluster = fx.cluster();
    for (const id of ["m1", "m2", "m3"]) await cluster.add(id);
    await cluster.waitMachines();
    for (let i = 1; i <= 4; i++) await submit(cluster, `web@${i}.service`, unitText({ Conflicts: "web@*.service" }));
    const t = await settled(cluster, 4, ["web@4.service"]);
    const machines = ["web@1.service", "web@2.service", "web@3.service"].map((n) => t[n]!.split("@")[1]);
    expect(new Set(machines).size).toBe(3);
    const leader = [...cluster.instances.values()].find((i) => i.server.engine?.isLeader);
    await waitFor("the leader to explain web@4", () => leader?.server.engine?.lastResult()?.unscheduled.some((u) => u.unit === "web@4.service"));
    const why = leader!.server.engine!.explain("web@4.service")!;
    expect(why.map((e) => [e.machineId, e.rule]).sort()).toEqual([["m1", "Conflicts"], ["m2", "Conflicts"], ["m3", "Conflicts"]]);
  });

  it("MachineOf places followers with their target and moves them together when the machine is lost", async () => {
    const cluster = fx.cluster();
    for (const id of ["m1", "m2", "m3"]) await cluster.add(id);
    await cluster.waitMachines();
    await submit(cluster, "db.service", unitText());
    await submit(cluster, "db-backup.service", unitText({ MachineOf: "db.service" }));
    let t = await settled(cluster, 2);
    const first = t["db.service"]!.split("@")[1]!;
    expect(t["db-backup.service"]).toBe(`launched@${first}`);
    await cluster.crash(first);
    t = await waitFor("db and its follower to move off the lost machine", async () => {
      const now = await unitTable(cluster);
      const m = now["db.service"]!.split("@")[1];
      return m !== first && now["db.service"]!.startsWith("launched@") && now["db-backup.service"] === `launched@${m}` ? now : undefined;
    }, { describe: () => cluster.describe() });
    expect(cluster.runningOn("db.service")).toEqual([t["db.service"]!.split("@")[1]]);
  });

  it("Global units run on every matching machine, including machines that join later", async () => {
    const cluster = fx.cluster();
    await cluster.add("m1", { metadata: "role=web" });
    await cluster.add("m2", { metadata: "role=db" });
    await cluster.waitMachines();
    await submit(cluster, "agent.service", unitText({ Global: "true" }));
    await submit(cluster, "web-agent.service", unitText({ Global: "true", MachineMetadata: "role=web" }));
    await waitFor("the global unit on both machines", () => cluster.runningOn("agent.service").length === 2 && cluster.runningOn("web-agent.service").length === 1);
    expect(cluster.runningOn("web-agent.service")).toEqual(["m1"]);
    await cluster.add("m3", { metadata: "role=web" });
    await waitFor("the global units on the new machine", () => cluster.runningOn("agent.service").length === 3 && cluster.runningOn("web-agent.service").length === 2, { describe: () => cluster.describe() });
    const units = await cluster.registry.listUnits();
    const agent = units.find((u) => u.name === "agent.service")!;
    expect(agent.machineID).toBeUndefined();
    expect(agent.currentState).toBeUndefined();
    await waitFor("states of the global unit from all three machines", async () => (await cluster.registry.listStates({ unitName: "agent.service" })).map((s) => s.machineID).join() === "m1,m2,m3");
  });

  it("MachineMetadata follows static and dynamic metadata", async () => {
    const cluster = fx.cluster();
    await cluster.add("m1", { metadata: "disk=hdd" });
    await cluster.add("m2", { metadata: "disk=ssd,region=eu" });
    await cluster.waitMachines();
    await submit(cluster, "fast.service", unitText({ MachineMetadata: ['"disk=ssd" "disk=nvme"', "region=eu"] }));
    let t = await settled(cluster, 1);
    expect(t["fast.service"]).toBe("launched@m2");
    // Dynamic metadata hides m2's ssd: the unit can no longer run there and has nowhere else to go.
    await cluster.registry.patchMachineMetadata([{ machineID: "m2", key: "disk", value: null }]);
    await waitFor("fast.service to leave m2", () => cluster.runningOn("fast.service").length === 0, { describe: () => cluster.describe() });
    await cluster.registry.patchMachineMetadata([
      { machineID: "m1", key: "disk", value: "nvme" },
      { machineID: "m1", key: "region", value: "eu" },
    ]);
    t = await settled(cluster, 1);
    expect(t["fast.service"]).toBe("launched@m1");
    expect((await cluster.registry.listMachines()).find((m) => m.id === "m1")?.metadata).toEqual({ disk: "nvme", region: "eu" });
  });

  it("Replaces moves the replaced unit to another machine", async () => {
    const cluster = fx.cluster();
    await cluster.add("m1", { metadata: "role=a" });
    await cluster.add("m2", { metadata: "role=b" });
    await cluster.waitMachines();
    await submit(cluster, "old.service", unitText());
    let t = await settled(cluster, 1);
    expect(t["old.service"]).toBe("launched@m1");
    await submit(cluster, "new.service", unitText({ MachineMetadata: "role=a", Replaces: "old.service" }));
    t = await waitFor("new on m1 and old moved to m2", async () => {
      const now = await unitTable(cluster);
      return now["new.service"] === "launched@m1" && now["old.service"] === "launched@m2" ? now : undefined;
    }, { describe: () => cluster.describe() });
    expect(cluster.runningOn("old.service")).toEqual(["m2"]);
    expect(cluster.runningOn("new.service")).toEqual(["m1"]);
  });

  it("desired states: loaded units are loaded but not started; inactive unschedules; destroy removes", async () => {
    const cluster = fx.cluster();
    const m1 = await cluster.add("m1");
    await submit(cluster, "svc.service", unitText(), "loaded");
    await waitFor("svc loaded", async () => (await unitTable(cluster))["svc.service"] === "loaded@m1");
    expect(m1.manager.running()).toEqual([]);
    await cluster.registry.setDesiredState("svc.service", "launched");
    await waitFor("svc launched", async () => (await unitTable(cluster))["svc.service"] === "launched@m1");
    expect(m1.manager.running()).toEqual(["svc.service"]);
    await cluster.registry.setDesiredState("svc.service", "inactive");
    await waitFor("svc unscheduled", async () => (await unitTable(cluster))["svc.service"] === "inactive@-" && !m1.manager.disk.has("svc.service"));
    await cluster.registry.setDesiredState("svc.service", "launched");
    await waitFor("svc launched again", async () => (await unitTable(cluster))["svc.service"] === "launched@m1");
    await cluster.registry.destroyUnit("svc.service");
    await waitFor("svc gone from the machine", () => !m1.manager.disk.has("svc.service") && m1.manager.running().length === 0);
    expect(await cluster.registry.getUnit("svc.service")).toBeUndefined();
    await waitFor("svc's state to be withdrawn", async () => (await cluster.registry.listStates({ unitName: "svc.service" })).length === 0);
    // Its body is collected by the next full resync (no other unit uses it).
    const bodies = async (): Promise<number> => (await cluster.client.getAll().prefix(`${cluster.prefix}bodies/`).keys()).length;
    expect(await bodies()).toBe(1);
    m1.server.engine!.requestResync();
    await waitFor("the unused body to be deleted", async () => (await bodies()) === 0);
  });

  it("replacing a unit's body reloads it where it runs", async () => {
    const cluster = fx.cluster();
    const m1 = await cluster.add("m1");
    await submit(cluster, "r.service", unitText({}, "/bin/true"));
    await settled(cluster, 1);
    const { parseUnitFile } = await import("../../lib/unit");
    expect(await cluster.registry.createUnit({ name: "r.service", options: parseUnitFile(unitText({}, "/bin/true")) })).toBe("unchanged");
    expect(await cluster.registry.createUnit({ name: "r.service", options: parseUnitFile(unitText({}, "/bin/false")), desiredState: "launched" })).toBe("replaced");
    await waitFor("the new body on disk", () => m1.manager.disk.get("r.service")?.includes("ExecStart=/bin/false"));
    await waitFor("r launched again", async () => (await unitTable(cluster))["r.service"] === "launched@m1");
  });
});
