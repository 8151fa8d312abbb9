/**
 * Rolling deploy of a global unit (fleet#960: "no support for rolling upgrade of global unit"):
 * fleetctl in-process against the real API, a real etcd and four fleetds (engine + agent + deploy
 * controller each) whose in-memory services take 400 ms to start. The unit's machines are rolled a
 * few at a time (max-unavailable), the unit record keeps the others on their body meanwhile
 * (`machineHashes`), a failing body is rolled back machine by machine, and the record ends clean.
 */
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { UnitRecord } from "../../fleetd/registry/keys";
import { parseUnitFile, unitHash } from "../../lib/unit";
import { waitFor } from "../helpers/fleet-cluster";
import { etcdFixture } from "../helpers/fleet-fixture";
import { FleetctlEnv } from "./fleetctl-harness";

const MACHINES = ["e1b2c3d4e5f60718293a4b5c6d7e8f91", "e2b2c3d4e5f60718293a4b5c6d7e8f92", "e3b2c3d4e5f60718293a4b5c6d7e8f93", "e4b2c3d4e5f60718293a4b5c6d7e8f94"];
const SLOW = { startDelayMs: 400 };
const NODE = "[Unit]\nDescription=node agent\n\n[Service]\nEnvironment=image=localhost/node-agent:1\nExecStart=/bin/sleep infinity ${image}\n\n[X-Fleet]\nGlobal=true\n";
const hashOf = (text: string): string => unitHash(parseUnitFile(text));

describe("fleetctl deploy of a global unit against real fleetds", () => {
  const etcd = etcdFixture();
  let env: FleetctlEnv;

  beforeAll(async () => {
    env = await FleetctlEnv.start(etcd(), MACHINES, Object.fromEntries(MACHINES.map((m) => [m, SLOW])));
    await writeFile(join(env.dir, "plain.service"), "[Service]\nExecStart=/bin/sleep infinity\n");
    expect((await env.run(["start", "plain.service"])).code).toBe(0);
    await writeFile(join(env.dir, "node.service"), NODE);
    const r = await env.run(["start", "--no-block", "node.service"]);
    expect(r.code, r.stderr).toBe(0);
    // Gone from the working folder: deploy takes the body from the cluster (and --set).
    await rm(join(env.dir, "node.service"));
  });
  afterAll(async () => {
    await env?.close();
  });

  /** Machine → hash of node.service it runs (loaded body), for the machines that run it. */
  const running = (): Map<string, string> => {
    const out = new Map<string, string>();
    for (const [id, i] of env.cluster.instances) if (i.manager.running().includes("node.service")) out.set(id, hashOf(i.manager.disk.get("node.service") ?? ""));
    return out;
  };
  /** The unit record as stored in etcd (P/units/node.service). */
  const record = async (): Promise<UnitRecord | undefined> => {
    const value = await env.cluster.client.get(`${env.cluster.prefix}units/node.service`).string();
    return value === null ? undefined : (JSON.parse(value) as UnitRecord);
  };

  it("is refused for a unit that is not global, for an instance, and with --max-surge", async () => {
    // Active in the agents' states (what the rollout reads), not only started: a machine whose unit is
    // not active yet costs no availability, so the rollout would switch it at once.
    await waitFor("node.service active on every machine", async () => {
      const rows = (await env.run(["list-units", "--no-legend", "--fields", "unit,active"])).stdout.split("\n");
      return rows.filter((l) => l === "node.service\tactive").length === MACHINES.length;
    });
    expect((await env.run(["deploy", "--set", "image=x", "plain.service"])).stderr).toBe(
      "Error starting the deploy of plain.service: cannot deploy plain.service: it is neither a template nor a global unit; deploy rolls the instances of a template (web@.service) or the machines of a global unit ([X-Fleet] Global=true); to change a single unit, use fleetctl start --replace (HTTP 400)\n",
    );
    expect((await env.run(["deploy", "--set", "image=x", "web@1.service"])).stderr).toBe(
      "Cannot deploy web@1.service: it is an instance; deploy works on its template web@.service (all instances together) or on a global unit\n",
    );
    expect((await env.run(["deploy", "--set", "image=x", "--max-surge", "1", "node.service"])).stderr).toBe(
      "Error starting the deploy of node.service: cannot deploy node.service: max-surge does not apply to a global unit (it runs once on each machine, so there is no extra copy to start first); leave --max-surge out (HTTP 400)\n",
    );
    expect((await env.run(["deploy", "--set", "image=x", "gone.service"])).stderr).toBe(
      "Error starting the deploy of gone.service: cannot deploy gone.service: the unit is not in the cluster; submit it first (fleetctl submit gone.service) (HTTP 404)\n",
    );
    expect((await record())?.hash).toBe(hashOf(NODE));
  });

  it("rolls the unit one machine at a time: never more than one machine without it, every machine on the new body at the end", async () => {
    const v2 = NODE.replace("node-agent:1", "node-agent:2");
    const dry = await env.run(["deploy", "--dry-run", "--set", "image=localhost/node-agent:2", "node.service"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain("Would roll node.service from revision 1 to revision 2 (deploy --set image=localhost/node-agent:2, hash ");
    expect(dry.stdout).toContain(`4 machine(s) to update: ${MACHINES.map((m) => `${m.slice(0, 8)}...`).join(", ")}; max unavailable 1, max surge 0, deadline 120 s per machine\n`);
    expect(dry.stdout).toContain("  - Environment=image=localhost/node-agent:1\n  + Environment=image=localhost/node-agent:2\n");

    let maxDown = 0;
    let mixed = false;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const now = running();
        maxDown = Math.max(maxDown, MACHINES.length - now.size);
        if (new Set(now.values()).size > 1) mixed = true;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const r = await env.run(["deploy", "--set", "image=localhost/node-agent:2", "node.service"]);
    sampling = false;
    await sampler;
    expect(r.stderr, env.cluster.describe()).toBe("");
    expect(r.stdout).toMatch(/Rollout of node\.service to revision 2 succeeded in [\d.]+ s \(most machines unavailable at once: 1\)\n$/);
    expect(maxDown).toBe(1); // restarts were seen, one machine at a time
    expect(mixed).toBe(true); // old and new bodies ran side by side: not all at once
    const now = running();
    expect([...now.keys()].sort()).toEqual([...MACHINES].sort());
    expect(new Set(now.values())).toEqual(new Set([hashOf(v2)]));
    const rec = await record();
    expect(rec?.hash).toBe(hashOf(v2));
    expect(rec?.machineHashes).toBeUndefined();
    const h = await env.run(["history", "node.service"]);
    expect(h.stdout).toMatch(/\n1\t+[0-9a-f]{7}\t\S+\tsucceeded\tinitial\n2\t+[0-9a-f]{7}\t\S+\tsucceeded\tdeploy --set image=localhost\/node-agent:2\n/);
    // The revision column looks a global unit up in its own history; a plain unit has none.
    const files = await env.run(["list-unit-files", "--no-legend", "--fields", "unit,revision"]);
    expect(files.stdout).toContain("node.service\t2\n");
    expect(files.stdout).toContain("plain.service\t-\n");
    const rows = (await env.run(["list-units", "--no-legend", "--fields", "unit,revision"])).stdout.split("\n").filter((l) => l.startsWith("node.service"));
    expect(rows).toEqual(MACHINES.map(() => "node.service\t2"));
  });

  it("rolls a body that never becomes active back on the machines it reached, and the unit keeps the body that works", async () => {
    const good = (await record())?.hash;
    expect(good).toBeDefined();
    // A local file is the new body: its start fails on every machine.
    await writeFile(join(env.dir, "node.service"), NODE.replace("/bin/sleep infinity", "/bin/false"));
    const r = await env.run(["deploy", "--deadline", "2s", "node.service"]);
    expect(r.code).toBe(1);
    const failedOn = MACHINES.find((m) => r.stderr.includes(m));
    expect(failedOn, r.stderr).toBeDefined();
    expect(r.stderr).toBe(
      `Rollout of node.service to revision 3 failed and was rolled back: on machine ${failedOn}, node.service not active within 2 s of getting its new body; see "fleetctl ssh ${failedOn} systemctl status node.service" and fix the body before deploying again\n`,
    );
    await waitFor("every machine back on the body that works", () => {
      const now = running();
      return now.size === MACHINES.length && [...now.values()].every((h) => h === good);
    });
    const rec = await record();
    expect(rec?.hash).toBe(good);
    expect(rec?.machineHashes).toBeUndefined();
    const h = await env.run(["history", "node.service"]);
    expect(h.stdout).toMatch(/\n3\t+[0-9a-f]{7}\t\S+\trolled-back\tdeploy \(new body\)\n/);
  });

  it("destroying the unit removes its history: started again, it starts a new one", async () => {
    expect((await env.run(["destroy", "node.service"])).code).toBe(0);
    expect((await env.run(["history", "node.service"])).stderr).toBe(
      "Error reading the history of node.service: cannot read the history of node.service: the unit is not in the cluster (HTTP 404)\n",
    );
  });
});
