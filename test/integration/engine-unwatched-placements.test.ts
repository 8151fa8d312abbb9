/**
 * The leading engine does not watch `placement/` and `schedule/` (only it writes them): it applies
 * its own writes to its mirror, and a transaction that fails a compare reads that batch's keys back
 * before deciding again. Here etcd moves ahead of the engine without an event for it (a unit moved
 * behind its back, as after a write whose answer was lost): stopping the unit must still remove it
 * from the machine etcd names, long before the engine's full resync (60 s here). Real etcd and real
 * fleetd instances; the same logic on in-memory parts: fleetd/engine/engine-holds.test.ts.
 */
import { describe, expect, it } from "vitest";
import { Keys } from "../../fleetd/registry/keys";
import { fleetFixture } from "../helpers/fleet-fixture";
import { submit, unitTable, unitText, waitFor } from "../helpers/fleet-cluster";

describe("placements the engine does not watch (real etcd)", () => {
  const fx = fleetFixture();

  it("unschedules a unit that was moved behind the engine's back, from where etcd says it is", async () => {
    const cluster = fx.cluster();
    await Promise.all(["m1", "m2"].map((id) => cluster.add(id)));
    await cluster.waitMachines();
    await submit(cluster, "web.service", unitText());
    const first = await waitFor("web.service launched", async () => {
      const v = (await unitTable(cluster))["web.service"];
      return v?.startsWith("launched@") ? v.split("@")[1] : undefined;
    });
    const other = first === "m1" ? "m2" : "m1";
    const k = new Keys(cluster.prefix);
    const entry = await cluster.client.get(k.schedule(first, "web.service")).buffer();
    expect(entry).not.toBeNull();
    // Move it in one transaction, as a lost write of an earlier leader could have: placement, the
    // new machine's schedule entry, the old one's removed. The engine hears nothing of it.
    await cluster.client
      .if(k.placement("web.service"), "Value", "==", first)
      .then(cluster.client.put(k.placement("web.service")).value(other), cluster.client.put(k.schedule(other, "web.service")).value(entry!), cluster.client.delete().key(k.schedule(first, "web.service")))
      .commit();
    await waitFor(`web.service running on ${other} only`, () => cluster.runningOn("web.service").join(",") === other, { describe: () => cluster.describe() });

    // Stopping it: the engine deletes the placement compared on the machine it believes (first),
    // which fails; it must read etcd's placement back and remove the unit from `other`.
    await cluster.registry.setDesiredState("web.service", "inactive");
    await waitFor("web.service stopped everywhere, its placement and schedule entries gone", async () => {
      const placement = await cluster.client.get(k.placement("web.service")).string();
      const entries = await cluster.client.getAll().prefix(k.scheduleAll).keys();
      return placement === null && !entries.some((key) => key.endsWith("/web.service")) && cluster.runningOn("web.service").length === 0;
    }, { timeoutMs: 20_000, describe: () => cluster.describe() });
    expect((await unitTable(cluster))["web.service"]).toBe("inactive@-");
  });
});
