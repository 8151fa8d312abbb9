import { describe, expect, it } from "vitest";
import { fleetFixture } from "../helpers/fleet-fixture";
import { submit, unitTable, unitText, waitFor } from "../helpers/fleet-cluster";

describe("fleetd placement with a real etcd and several instances", () => {
  const fx = fleetFixture();

  it("spreads units over machines, least loaded first, and reports them launched", async () => {
    const cluster = fx.cluster();
    await Promise.all(["m1", "m2", "m3"].map((id) => cluster.add(id)));
    await cluster.waitMachines();
    for (let i = 1; i <= 6; i++) await submit(cluster, `app${i}.service`, unitText());
    const table = await waitFor(
      "6 units launched",
      async () => {
        const t = await unitTable(cluster);
        return Object.values(t).filter((v) => v.startsWith("launched@")).length === 6 ? t : undefined;
      },
      { describe: () => cluster.describe() },
    );
    const perMachine = new Map<string, number>();
    for (const v of Object.values(table)) {
      const machine = v.split("@")[1]!;
      perMachine.set(machine, (perMachine.get(machine) ?? 0) + 1);
    }
    expect([...perMachine.values()]).toEqual([2, 2, 2]);
    for (let i = 1; i <= 6; i++) expect(cluster.runningOn(`app${i}.service`)).toHaveLength(1);
    const states = await cluster.registry.listStates({ unitName: "app1.service" });
    expect(states).toHaveLength(1);
    expect(states[0]).toMatchObject({ systemdLoadState: "loaded", systemdActiveState: "active", systemdSubState: "running" });
  });
});
