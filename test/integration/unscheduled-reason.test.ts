/**
 * Invariant 4 end to end: the leading engine records why a unit has no machine (`P/unscheduled/<name>`),
 * the API shows it on the unit, fleetctl `status`, `list-unit-files --fields …,reason` and a blocking
 * `start` that times out say it; a machine that gets matching metadata takes the unit and the reason
 * goes away. Real etcd, fleetd instances (engine + agent, in-memory unit managers), real API and CLI.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiClient } from "../../lib/api/client";
import { unitText, waitFor } from "../helpers/fleet-cluster";
import { etcdFixture } from "../helpers/fleet-fixture";
import { FleetctlEnv } from "./fleetctl-harness";

const M1 = "c1b2c3d4e5f60718293a4b5c6d7e8f91";
const M2 = "d1b2c3d4e5f60718293a4b5c6d7e8f92";
const M3 = "e1b2c3d4e5f60718293a4b5c6d7e8f93";

const METADATA_REMEDY =
  'Give a machine the metadata it requires (metadata in fleet.conf, or dynamic metadata through the API\'s PATCH /fleet/v1/machines; compare with "fleetctl list-machines"), or change the unit\'s [X-Fleet] section and run "fleetctl start --replace nowhere.service".';

describe("why a unit is not scheduled: engine → etcd → API → fleetctl", () => {
  const etcd = etcdFixture();
  let env: FleetctlEnv;
  let api: ApiClient;

  beforeAll(async () => {
    env = await FleetctlEnv.start(etcd(), [M1, M2], { [M1]: { metadata: "role=web" } });
    api = new ApiClient({ endpoint: `unix://${env.socket}` });
    await writeFile(join(env.dir, "nowhere.service"), unitText({ MachineMetadata: "role=nowhere" }));
    await writeFile(join(env.dir, "hello.service"), unitText());
    await writeFile(join(env.dir, "db.service"), unitText({ MachineMetadata: "role=db" }));
    await writeFile(join(env.dir, "tagged.service"), unitText({ MachineMetadata: "tag=x" }));
  });
  afterAll(async () => {
    api?.close();
    await env?.close();
  });

  const reasonKey = (unit: string): string => `${env.cluster.prefix}unscheduled/${unit}`;
  /** The record's mod revision in etcd, or undefined when there is none. */
  const reasonRevision = async (unit: string): Promise<number | undefined> => {
    const res = await env.cluster.client.get(reasonKey(unit)).exec();
    const kv = res.kvs[0];
    return kv ? Number(kv.mod_revision) : undefined;
  };

  it("writes nothing under P/unscheduled/ for a unit that is placed at once", async () => {
    const seen: string[] = [];
    const watcher = await env.cluster.client.watch().prefix(`${env.cluster.prefix}unscheduled/`).create();
    watcher.on("put", (kv) => seen.push(`put ${kv.key.toString()}`));
    watcher.on("delete", (kv) => seen.push(`delete ${kv.key.toString()}`));
    try {
      const r = await env.run(["start", "hello.service"]);
      expect(r.code).toBe(0);
      expect((await api.getUnit("hello.service"))?.unscheduledReason).toBeUndefined();
      // The launch is reported by the agent after the engine's pass: a write from that pass would be here by now.
      await env.run(["list-unit-files"]);
    } finally {
      await watcher.cancel();
    }
    expect(seen).toEqual([]);
  });

  it("a blocking start that times out says why the unit has no machine", async () => {
    const r = await env.run(["start", "--block-attempts", "1", "nowhere.service"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("Unit nowhere.service inactive\n");
    expect(r.stderr).toBe(
      "Error waiting for units: timed out waiting for unit nowhere.service to report state launched: it is not scheduled on any machine: " +
        `no machine can run it (2 machines): 2 excluded by MachineMetadata. ${METADATA_REMEDY} Per-machine reasons: "fleetctl status nowhere.service"\n` +
        "Error waiting for unit states, exit status: 1\n",
    );
  });

  it("the API shows the reason on the unit (one unit and the listing), with each machine's rule", async () => {
    const unit = await api.getUnit("nowhere.service");
    expect(unit?.machineID).toBeUndefined();
    expect(unit?.unscheduledReason).toEqual({
      summary: "no machine can run it (2 machines): 2 excluded by MachineMetadata",
      excludedBy: { MachineMetadata: 2 },
      machines: [
        { machineID: M1, rule: "MachineMetadata", detail: "unit requires role=nowhere, machine has role=web" },
        { machineID: M2, rule: "MachineMetadata", detail: 'unit requires role=nowhere, machine has no "role"' },
      ],
      moreMachines: 0,
      since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as unknown,
    });
    const listed = (await api.listUnits()).find((u) => u.name === "nowhere.service");
    expect(listed?.unscheduledReason).toEqual(unit?.unscheduledReason);
  });

  it("fleetctl status says the unit is not scheduled, why on each machine, and what to do; exit 1", async () => {
    const r = await env.run(["status", "nowhere.service"]);
    expect(r).toEqual({
      code: 1,
      stdout: "",
      stderr: [
        "Unit nowhere.service is not scheduled on any machine: no machine can run it (2 machines): 2 excluded by MachineMetadata",
        "  c1b2c3d4...: MachineMetadata: unit requires role=nowhere, machine has role=web",
        '  d1b2c3d4...: MachineMetadata: unit requires role=nowhere, machine has no "role"',
        METADATA_REMEDY,
        "",
      ].join("\n"),
    });
  });

  it("list-unit-files has a reason field; its default columns are unchanged", async () => {
    const r = await env.run(["list-unit-files", "--fields", "unit,reason"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      "UNIT\t\tREASON\nhello.service\t-\nnowhere.service\tno machine can run it (2 machines): 2 excluded by MachineMetadata\n",
    );
    const json = await env.run(["list-unit-files", "--fields", "unit,reason", "-o", "json"]);
    expect(JSON.parse(json.stdout)).toEqual([
      { unit: "hello.service", reason: "-" },
      { unit: "nowhere.service", reason: "no machine can run it (2 machines): 2 excluded by MachineMetadata" },
    ]);
    const plain = await env.run(["list-unit-files"]);
    expect(plain.stdout.split("\n")[0]?.split(/\t+/)).toEqual(["UNIT", "HASH", "DSTATE", "STATE", "TARGET"]);
  });

  it("rewrites the record only when the reason changes", async () => {
    const before = await reasonRevision("nowhere.service");
    expect(before).toBeDefined();
    // Machine metadata changes (every refused unit is re-evaluated) but the reason stays the same;
    // a unit that needs the new metadata being placed proves the engine has seen the change.
    await api.patchMachines([{ op: "add", path: `/${M1}/metadata/tag`, value: { value: "x" } }]);
    expect((await env.run(["start", "--block-attempts", "5", "tagged.service"])).code).toBe(0);
    expect(await reasonRevision("nowhere.service")).toBe(before);
    // A third machine changes the summary: rewritten.
    await env.cluster.add(M3);
    await waitFor("the reason to count 3 machines", async () => (await api.getUnit("nowhere.service"))?.unscheduledReason?.summary === "no machine can run it (3 machines): 3 excluded by MachineMetadata");
    expect(await reasonRevision("nowhere.service")).toBeGreaterThan(before!);
  });

  it("a resync (what a new leader does) deletes stale records and rewrites none that still hold", async () => {
    const before = await reasonRevision("nowhere.service");
    const stale = { summary: "left by an old leader", excludedBy: {}, machines: [], moreMachines: 0, since: "2020-01-01T00:00:00.000Z" };
    await env.cluster.client.put(reasonKey("ghost.service")).value(JSON.stringify(stale));
    for (const inst of env.cluster.instances.values()) inst.server.engine?.requestResync();
    await waitFor("the stale record deleted", async () => (await reasonRevision("ghost.service")) === undefined);
    expect(await reasonRevision("nowhere.service")).toBe(before);
  });

  it("once a machine gets matching metadata (PATCH), the unit is placed there and the reason disappears", async () => {
    await api.patchMachines([{ op: "add", path: `/${M2}/metadata/role`, value: { value: "nowhere" } }]);
    await waitFor("nowhere.service launched on M2", async () => {
      const u = await api.getUnit("nowhere.service");
      return u?.machineID === M2 && u.currentState === "launched";
    });
    expect((await api.getUnit("nowhere.service"))?.unscheduledReason).toBeUndefined();
    await waitFor("the record deleted from etcd", async () => (await reasonRevision("nowhere.service")) === undefined);
    const r = await env.run(["list-unit-files", "--fields", "unit,reason", "--no-legend"]);
    expect(r.stdout).toContain("nowhere.service\t-\n");
  });

  it("deletes the record when the unit goes inactive or is destroyed", async () => {
    expect((await env.run(["load", "--no-block", "db.service"])).code).toBe(0);
    await waitFor("db.service recorded", async () => (await reasonRevision("db.service")) !== undefined);
    expect((await env.run(["unload", "db.service"])).code).toBe(0);
    await waitFor("record deleted after unload", async () => (await reasonRevision("db.service")) === undefined);
    expect((await api.getUnit("db.service"))?.unscheduledReason).toBeUndefined();
    expect((await env.run(["start", "--no-block", "db.service"])).code).toBe(0);
    await waitFor("db.service recorded again", async () => (await api.getUnit("db.service"))?.unscheduledReason !== undefined);
    expect((await env.run(["destroy", "db.service"])).code).toBe(0);
    await waitFor("record deleted after destroy", async () => (await reasonRevision("db.service")) === undefined);
  });
});
