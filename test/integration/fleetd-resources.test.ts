import { describe, expect, it } from "vitest";
import { fleetFixture } from "../helpers/fleet-fixture";
import { submit, unitTable, waitFor } from "../helpers/fleet-cluster";

/** A unit asking for resources through its own systemd settings, as a fleet user's unit would. */
function needing(memory: string): string {
  return ["[Unit]", "Description=needs memory", "", "[Service]", "ExecStart=/bin/sleep infinity", `MemoryMax=${memory}`].join("\n");
}

describe("resource-aware placement across fleetd instances (real etcd)", () => {
  const fx = fleetFixture();

  it("machines publish capacity; units with MemoryMax= are placed without overcommitting, the surplus stays unscheduled", async () => {
    const cluster = fx.cluster();
    await cluster.add("m1", { extra: { capacity_memory: "1G", capacity_cpus: "2" } });
    await cluster.add("m2", { extra: { capacity_memory: "1G", capacity_cpus: "2" } });
    await cluster.waitMachines();
    // 600M each: one fits per machine, the third fits nowhere.
    for (const n of ["a", "b", "c"]) await submit(cluster, `${n}.service`, needing("600M"));
    const t = await waitFor(
      "two units launched and one left unscheduled",
      async () => {
        const now = await unitTable(cluster);
        const launched = Object.values(now).filter((v) => v.startsWith("launched@"));
        return launched.length === 2 && Object.values(now).filter((v) => v === "inactive@-").length === 1 ? now : undefined;
      },
      { describe: () => cluster.describe() },
    );
    const machines = Object.values(t).filter((v) => v.startsWith("launched@")).map((v) => v.split("@")[1]);
    expect(new Set(machines)).toEqual(new Set(["m1", "m2"]));
    const left = Object.entries(t).find(([, v]) => v === "inactive@-")![0];
    const leader = [...cluster.instances.values()].find((i) => i.server.engine?.isLeader);
    await waitFor(`the leader to explain ${left}`, () => leader?.server.engine?.lastResult()?.unscheduled.some((u) => u.unit === left));
    const why = leader!.server.engine!.explain(left)!;
    expect(why.map((e) => [e.machineId, e.rule]).sort()).toEqual([["m1", "Resources"], ["m2", "Resources"]]);
    // The recorded reason (P/unscheduled/, what list-unit-files and status show) counts Resources like the other rules.
    const reason = await waitFor(`the recorded reason of ${left}`, async () => (await cluster.registry.getUnit(left))?.unscheduledReason);
    expect(reason.summary).toBe("no machine can run it (2 machines): 2 excluded by Resources");
    expect(reason.excludedBy).toEqual({ Resources: 2 });
    expect(reason.machines.map((m) => [m.machineID, m.rule])).toEqual([["m1", "Resources"], ["m2", "Resources"]]);
    expect(reason.machines[0]!.detail).toMatch(/^unit needs 600 MiB of memory, machine has 4\d\d(\.\d+)? MiB free of 1 GiB$/);
  });

  it("a unit with MemoryLimit= is placed on a machine that publishes the host's capacity by default", async () => {
    const cluster = fx.cluster();
    await cluster.add("m1");
    await cluster.waitMachines();
    await submit(cluster, "small.service", needing("1M").replace("MemoryMax", "MemoryLimit"));
    await waitFor("small.service launched on m1", async () => (await unitTable(cluster))["small.service"] === "launched@m1", { describe: () => cluster.describe() });
  });
});
