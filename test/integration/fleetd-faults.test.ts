import { describe, expect, it } from "vitest";
import { delay } from "../../lib/async/delay";
import { startTcpProxy } from "../helpers/tcp-proxy";
import { fleetFixture } from "../helpers/fleet-fixture";
import { FleetCluster, submit, TEST_AGENT_TTL_SECONDS, unitTable, unitText, waitFor } from "../helpers/fleet-cluster";

async function allLaunched(cluster: FleetCluster, n: number): Promise<Record<string, string>> {
  return waitFor(
    `${n} units launched`,
    async () => {
      const t = await unitTable(cluster);
      return Object.values(t).filter((v) => v.startsWith("launched@")).length === n ? t : undefined;
    },
    { describe: () => cluster.describe(), timeoutMs: 20_000 },
  );
}

function stopsSeen(cluster: FleetCluster): number {
  return [...cluster.instances.values()].reduce((a, i) => a + i.manager.count("stop") + i.manager.count("unload"), 0);
}

describe("fleetd under faults (real etcd)", () => {
  const fx = fleetFixture();

  it("a lost machine (no graceful leave) has its units rescheduled after its lease expires", async () => {
    const cluster = fx.cluster();
    for (const id of ["m1", "m2", "m3"]) await cluster.add(id);
    await cluster.waitMachines();
    for (let i = 1; i <= 3; i++) await submit(cluster, `w${i}.service`, unitText({ Conflicts: "w*.service" }));
    await submit(cluster, "free.service", unitText());
    const before = await allLaunched(cluster, 4);
    const victim = before["w1.service"]!.split("@")[1]!;
    const lostUnits = Object.entries(before).filter(([, v]) => v.endsWith(`@${victim}`)).map(([n]) => n);
    await cluster.crash(victim);
    // Still listed until the TTL runs out: presence is the lease, nothing else.
    expect((await cluster.registry.listMachines()).map((m) => m.id)).toContain(victim);
    await waitFor("the lost machine to disappear", async () => !(await cluster.registry.listMachines()).some((m) => m.id === victim), { timeoutMs: (TEST_AGENT_TTL_SECONDS + 5) * 1000 });
    const after = await waitFor("units off the lost machine", async () => {
      const t = await unitTable(cluster);
      return lostUnits.every((n) => t[n] === "inactive@-" || (t[n]!.startsWith("launched@") && !t[n]!.endsWith(`@${victim}`))) ? t : undefined;
    }, { describe: () => cluster.describe() });
    // Conflicts leaves one w* without a machine (2 machines for 3 units); the free unit moved.
    const ws = ["w1.service", "w2.service", "w3.service"].map((n) => after[n]!);
    expect(ws.filter((v) => v === "inactive@-")).toHaveLength(1);
    expect(new Set(ws.filter((v) => v !== "inactive@-")).size).toBe(2);
    expect(ws.some((v) => v.endsWith(`@${victim}`))).toBe(false);
    expect(after["free.service"]).toMatch(/^launched@m[123]$/);
    expect(after["free.service"]!.endsWith(`@${victim}`)).toBe(false);
    for (const n of Object.keys(after)) expect(cluster.runningOn(n).length).toBeLessThanOrEqual(1);
  });

  it("graceful leave stops and removes its units, vanishes at once, and its units move", async () => {
    const cluster = fx.cluster();
    for (const id of ["m1", "m2"]) await cluster.add(id);
    await cluster.waitMachines();
    // The follower leaves, so the stayer's engine (the leader) is the one that sees it go.
    const leader = await waitFor("a leader", () => [...cluster.instances.values()].find((i) => i.server.engine?.isLeader));
    const stayer = leader.id;
    const leaver = stayer === "m1" ? "m2" : "m1";
    await submit(cluster, "a.service", unitText());
    await submit(cluster, "b.service", unitText());
    const before = await allLaunched(cluster, 2);
    // Least-loaded placement puts one unit on each of the two machines.
    const onLeaver = Object.keys(before).filter((n) => before[n] === `launched@${leaver}`);
    expect(onLeaver).toHaveLength(1);
    const manager = cluster.get(leaver).manager;
    await cluster.leave(leaver);
    expect(manager.count("unload", onLeaver[0])).toBe(1);
    expect(manager.running()).toEqual([]);
    // No TTL wait: the lease was revoked, so presence and states are gone already.
    expect((await cluster.registry.listMachines()).map((m) => m.id)).not.toContain(leaver);
    expect((await cluster.registry.listStates({ machineID: leaver }))).toEqual([]);
    const after = await allLaunched(cluster, 2);
    // A deliberate leave is announced, so the engine does not wait for a comeback.
    expect(cluster.get(stayer).events.map((e) => e.message)).toContain(`Machine ${leaver} left the cluster; moving its units`);
    expect(after).toEqual({ "a.service": `launched@${stayer}`, "b.service": `launched@${stayer}` });
  });

  it("engine failover: another instance takes over when the leader dies and schedules new units", async () => {
    const cluster = fx.cluster();
    for (const id of ["m1", "m2", "m3"]) await cluster.add(id);
    await cluster.waitMachines();
    const leader = await waitFor("a leader", () => [...cluster.instances.values()].find((i) => i.server.engine?.isLeader));
    const others = [...cluster.instances.values()].filter((i) => i !== leader);
    expect(others.some((i) => i.server.engine?.isLeader)).toBe(false);
    // x runs on a follower (pinned), so the failover must leave it exactly where it is.
    const xHost = others[0]!.id;
    await submit(cluster, "x.service", unitText({ MachineID: xHost }));
    await allLaunched(cluster, 1);
    await cluster.crash(leader.id);
    const next = await waitFor("a new leader", () => others.find((i) => i.server.engine?.isLeader), { timeoutMs: 20_000 });
    expect(others.filter((i) => i.server.engine?.isLeader)).toEqual([next]);
    await submit(cluster, "y.service", unitText());
    const t = await waitFor("y launched by the new leader", async () => ((await unitTable(cluster))["y.service"]?.startsWith("launched@") ? unitTable(cluster) : undefined), { timeoutMs: 20_000 });
    expect(t["y.service"]).not.toBe(`launched@${leader.id}`);
    // A failover moves nothing that runs on a live machine, and starts nothing twice.
    expect(cluster.runningOn("x.service")).toEqual([xHost]);
    expect(cluster.get(xHost).manager.count("stop", "x.service")).toBe(0);
  });

  it("an etcd restart and an outage longer than the agent TTL stop no unit", async () => {
    const cluster = fx.cluster();
    for (const id of ["m1", "m2", "m3"]) await cluster.add(id);
    await cluster.waitMachines();
    for (let i = 1; i <= 6; i++) await submit(cluster, `s${i}.service`, unitText());
    const before = await allLaunched(cluster, 6);
    expect(stopsSeen(cluster)).toBe(0);

    await fx.etcd().restart();
    expect(await allLaunched(cluster, 6)).toEqual(before);

    await fx.etcd().stop();
    // The outage itself is the scenario: etcd is away for twice the agent TTL.
    await delay(2 * TEST_AGENT_TTL_SECONDS * 1000);
    await fx.etcd().start();
    expect(await allLaunched(cluster, 6)).toEqual(before);
    await submit(cluster, "after.service", unitText());
    await allLaunched(cluster, 7);
    expect(stopsSeen(cluster)).toBe(0);
    for (let i = 1; i <= 6; i++) expect(cluster.runningOn(`s${i}.service`)).toHaveLength(1);
    expect((await cluster.registry.listMachines()).map((m) => m.id)).toEqual(["m1", "m2", "m3"]);
  });

  it("a second fleetd with the same machine ID does not take over and keeps retrying", async () => {
    const cluster = fx.cluster();
    const first = await cluster.add("dup1");
    await cluster.waitMachines(["dup1"]);
    await submit(cluster, "d.service", unitText());
    await allLaunched(cluster, 1);
    const twin = fx.cluster(cluster.prefix);
    const second = await twin.add("dup1");
    await waitFor("the twin to report the duplicate", () => second.events.some((e) => e.message.includes("another live machine is registered with the same machine ID")));
    expect(second.server.agent.registered).toBe(false);
    expect(second.manager.running()).toEqual([]);
    expect(first.manager.running()).toEqual(["d.service"]);
    // When the first leaves, the twin registers (its retries continue) and takes the unit.
    await cluster.leave("dup1");
    await waitFor("the twin to register and run d.service", () => second.server.agent.registered && second.manager.running().includes("d.service"), { timeoutMs: 20_000, describe: () => `${twin.describe()}\n${JSON.stringify(second.events.slice(-15))}` });
  });
});

describe("fleetd restart after a crash (real etcd)", () => {
  const fx = fleetFixture();

  it("resumes its lease and adopts units on disk: scheduled ones keep running, others are unloaded", async () => {
    const cluster = fx.cluster();
    const first = await cluster.add("r1");
    await cluster.add("r2");
    await cluster.waitMachines();
    await submit(cluster, "keep.service", unitText({ MachineID: "r1" }));
    await allLaunched(cluster, 1);
    const disk = first.manager.disk;
    // A file fleet no longer schedules here (left over from an earlier run).
    disk.set("stale.service", unitText());
    await cluster.crash("r1");
    // systemd kept running what fleetd had started; fleetd comes back well within the TTL.
    const again = await cluster.add("r1", { disk, running: ["keep.service", "stale.service"] });
    await waitFor("the restarted agent to register", () => again.server.agent.registered, { describe: () => cluster.describe() });
    expect(again.events.some((e) => e.message.includes("resumed"))).toBe(true);
    await waitFor("stale.service unloaded", () => again.manager.count("unload", "stale.service") === 1, { describe: () => cluster.describe() });
    expect(again.manager.count("stop", "keep.service") + again.manager.count("unload", "keep.service")).toBe(0);
    expect(again.manager.running()).toEqual(["keep.service"]);
    // The machine never looked dead: it was never unscheduled.
    expect(await unitTable(cluster)).toEqual({ "keep.service": "launched@r1" });
    await delay((TEST_AGENT_TTL_SECONDS + 1) * 1000);
    expect(await unitTable(cluster)).toEqual({ "keep.service": "launched@r1" });
    expect((await cluster.registry.listMachines()).map((m) => m.id)).toEqual(["r1", "r2"]);
  });
});

describe("a host cut off from etcd (real etcd behind a fault-injecting proxy)", () => {
  const fx = fleetFixture();

  it("keeps its units when it is back within the grace after its lease expired: nothing stops, nothing runs twice", async () => {
    const cluster = fx.cluster();
    const proxy = await startTcpProxy({ host: "127.0.0.1", port: fx.etcd().clientPort });
    try {
      const ttl = { agent_ttl: "4s", machine_loss_grace: "10s" };
      await cluster.add("c1", { extra: ttl });
      const victim = await cluster.add("c2", { extra: ttl, endpoint: proxy.endpoint });
      await cluster.waitMachines();
      await submit(cluster, "pinned.service", unitText({ MachineID: "c2" }));
      await submit(cluster, "movable.service", unitText({ Conflicts: "other.service" }));
      await submit(cluster, "other.service", unitText());
      const before = await allLaunched(cluster, 3);
      expect(before["pinned.service"]).toBe("launched@c2");

      proxy.block();
      // The scenario proper: the victim's lease expires while it cannot reach etcd.
      await waitFor("the cut-off machine's presence to expire", async () => !(await cluster.registry.listMachines()).some((m) => m.id === "c2"), { timeoutMs: 15_000 });
      expect(victim.manager.running().sort()).toEqual(Object.entries(before).filter(([, v]) => v === "launched@c2").map(([n]) => n).sort());
      proxy.unblock();

      await waitFor("the machine back", async () => (await cluster.registry.listMachines()).some((m) => m.id === "c2"), { timeoutMs: 15_000, describe: () => cluster.describe() });
      expect(await allLaunched(cluster, 3)).toEqual(before);
      expect(victim.manager.count("stop") + victim.manager.count("unload")).toBe(0);
      for (const n of Object.keys(before)) expect(cluster.runningOn(n), n).toHaveLength(1);
      expect(cluster.get("c1").manager.count("stop") + cluster.get("c1").manager.count("unload")).toBe(0);
    } finally {
      // Before the proxies: instances cut off from etcd do not stop in time.
      await cluster.close();
      await proxy.close();
    }
  });
});

describe("a host cut off from etcd for longer than the agent TTL (the e2e scenario, real etcd behind a proxy)", () => {
  const fx = fleetFixture();

  const TTL_S = 4;
  // Longer than the TTL, shorter than TTL + grace minus a keepalive period and the reconnect.
  const CUT_S = TTL_S + 2;
  const GRACE_S = 8;
  const ops = ["load", "unload", "start", "stop"] as const;
  const counts = (i: { manager: { count(op: (typeof ops)[number]): number } }): Record<string, number> => Object.fromEntries(ops.map((op) => [op, i.manager.count(op)]));

  // The victim is once the engine leader (its engine is cut off too) and once a follower; the cut is
  // either the proxy stalling its sockets or the kernel dropping its packets (as tc does in the e2e VMs:
  // SYNs unanswered, TCP and gRPC back off).
  it.each([
    ["leader", "stall"],
    ["follower", "stall"],
    ["leader", "drop"],
    ["follower", "drop"],
  ] as const)("cut off for longer than the TTL as the %s (%s): re-registers, and no unit anywhere is stopped, unloaded, reloaded or started again", async (role, how) => {
    const cluster = fx.cluster();
    const proxies = await Promise.all(["k1", "k2", "k3"].map(() => startTcpProxy({ host: "127.0.0.1", port: fx.etcd().clientPort })));
    try {
      // Every host reaches etcd through its own proxy, so any of them can be cut off.
      const ids = ["k1", "k2", "k3"];
      for (const [n, id] of ids.entries()) await cluster.add(id, { extra: { agent_ttl: `${TTL_S}s`, machine_loss_grace: `${GRACE_S}s` }, endpoint: proxies[n]!.endpoint });
      await cluster.waitMachines();
      for (let i = 1; i <= 6; i++) await submit(cluster, `p${i}.service`, unitText());
      await submit(cluster, "g.service", unitText({ Global: "true" }));
      await submit(cluster, "pin.service", unitText({ MachineID: "k2" }));
      await waitFor("8 units launched and g running on 3 machines", async () => {
        const t = await unitTable(cluster);
        return Object.values(t).filter((v) => v.startsWith("launched@")).length === 7 && cluster.runningOn("g.service").length === 3 ? t : undefined;
      }, { describe: () => cluster.describe(), timeoutMs: 20_000 });
      const leader = await waitFor("a leader", () => [...cluster.instances.values()].find((i) => i.server.engine?.isLeader));
      const victim = role === "leader" ? leader : [...cluster.instances.values()].find((i) => i !== leader && i.manager.running().length > 1)!;
      const proxy = proxies[ids.indexOf(victim.id)]!;
      const runningBefore = victim.manager.running().sort();
      expect(runningBefore.length).toBeGreaterThan(1);
      const before = new Map([...cluster.instances.values()].map((i) => [i.id, counts(i)]));

      if (how === "drop") await proxy.drop();
      else proxy.block();
      const cutAt = Date.now();
      // The scenario proper: etcd unreachable for longer than the agent TTL (the lease expires meanwhile).
      await delay(CUT_S * 1000);
      expect(victim.manager.running().sort()).toEqual(runningBefore);
      expect((await cluster.registry.listMachines()).map((m) => m.id)).not.toContain(victim.id);
      if (how === "drop") await proxy.undrop();
      else proxy.unblock();

      await waitFor("the machine back", async () => (await cluster.registry.listMachines()).some((m) => m.id === victim.id), { timeoutMs: 15_000, describe: () => cluster.describe() });
      process.stderr.write(`[fleetd-faults] ${role}/${how}: cut ${CUT_S} s, machine back ${((Date.now() - cutAt) / 1000).toFixed(1)} s after the cut\n`);
      await waitFor("its states republished", async () => (await cluster.registry.listStates({ machineID: victim.id })).length === runningBefore.length, { timeoutMs: 15_000, describe: () => cluster.describe() });
      // Let the engines and agents settle: anything they would still do to the units happens now.
      await delay(2_000);
      expect(victim.manager.running().sort()).toEqual(runningBefore);
      for (const i of cluster.instances.values()) expect(counts(i), `operations on ${i.id}`).toEqual(before.get(i.id));
      for (let n = 1; n <= 6; n++) expect(cluster.runningOn(`p${n}.service`), `p${n}`).toHaveLength(1);
      expect(cluster.runningOn("g.service")).toEqual(ids);
      expect(victim.server.agent.registered).toBe(true);
    } finally {
      // Before the proxies: instances cut off from etcd do not stop in time.
      await cluster.close();
      await Promise.all(proxies.map((p) => p.close()));
    }
  }, 60_000);
});

describe("a host cut off for longer than agent TTL + machine_loss_grace (the other side of the trade-off)", () => {
  const fx = fleetFixture();

  it("has its units unscheduled after the grace (kept running while cut off); back, it runs them again and nothing runs twice", async () => {
    const cluster = fx.cluster();
    const proxy = await startTcpProxy({ host: "127.0.0.1", port: fx.etcd().clientPort });
    try {
      const extra = { agent_ttl: "4s", machine_loss_grace: "2s" };
      await cluster.add("e1", { extra });
      const victim = await cluster.add("e2", { extra, endpoint: proxy.endpoint });
      await cluster.waitMachines();
      await submit(cluster, "a.service", unitText({ MachineID: "e2" }));
      await submit(cluster, "b.service", unitText({ Conflicts: "a.service" }));
      await allLaunched(cluster, 2);
      // c follows a (MachineOf): both can run only on e2.
      await submit(cluster, "c.service", unitText({ MachineOf: "a.service" }));
      await allLaunched(cluster, 3);
      expect(victim.manager.running().sort()).toEqual(["a.service", "c.service"]);

      proxy.block();
      await waitFor("the machine's presence to expire", async () => !(await cluster.registry.listMachines()).some((m) => m.id === "e2"), { timeoutMs: 15_000 });
      // After the grace the engine unschedules its units (a and c can go nowhere else: MachineID, MachineOf).
      await waitFor("a and c unscheduled", async () => {
        const t = await unitTable(cluster);
        return t["a.service"] === "inactive@-" && t["c.service"] === "inactive@-" ? t : undefined;
      }, { timeoutMs: 15_000, describe: () => cluster.describe() });
      // Cut off, the host keeps running them: only a schedule change read from etcd stops a unit.
      expect(victim.manager.count("stop") + victim.manager.count("unload")).toBe(0);
      proxy.unblock();

      await waitFor("the machine back", async () => (await cluster.registry.listMachines()).some((m) => m.id === "e2"), { timeoutMs: 15_000, describe: () => cluster.describe() });
      // Back, it reads the changed schedule (taken off it, then placed on it again, possibly seen as one
      // change when the watch resumes after the new placement).
      expect(await allLaunched(cluster, 3)).toEqual({ "a.service": "launched@e2", "b.service": "launched@e1", "c.service": "launched@e2" });
      await waitFor("a and c running on e2 again", () => victim.manager.running().sort().join() === "a.service,c.service", { describe: () => cluster.describe() });
      for (const n of ["a.service", "b.service", "c.service"]) expect(cluster.runningOn(n), n).toHaveLength(1);
    } finally {
      // Before the proxies: instances cut off from etcd do not stop in time.
      await cluster.close();
      await proxy.close();
    }
  }, 60_000);
});
