/**
 * `fleetctl why` and `fleetctl rebalance` end to end: the built CLI (dist/fleetctl.cjs) as its own
 * process, talking to real fleetds (engine + agent + API each, in-memory unit managers) on a real
 * etcd. `why` is answered by any fleetd, also one without an engine; `rebalance` moves units onto a
 * machine that joined, within --max-moves, without breaking Conflicts or Resources.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { socketRequest } from "../helpers/socket-request";
import { ApiClient } from "../../lib/api/client";
import { run } from "../../lib/process/run";
import { submit, unitText, waitFor, type FleetCluster } from "../helpers/fleet-cluster";
import { fleetFixture } from "../helpers/fleet-fixture";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = join(ROOT, "dist", "fleetctl.cjs");

describe("fleetctl why / rebalance (built CLI, real fleetds and etcd)", () => {
  const fx = fleetFixture();
  let dir: string;

  beforeAll(async () => {
    await run(process.execPath, [join(ROOT, "scripts", "bundle.mjs")], { cwd: ROOT, timeoutMs: 180_000 });
    dir = await mkdtemp(join(tmpdir(), "fleetctl-why-"));
  }, 240_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const fleetctl = async (socket: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    const r = await run(process.execPath, [BIN, ...args], { allowFailure: true, timeoutMs: 120_000, env: { PATH: process.env.PATH ?? "", HOME: dir, FLEETCTL_ENDPOINT: `unix://${socket}` } });
    return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
  };

  /** A fleetd with its API on its own socket. */
  const add = async (cluster: FleetCluster, id: string, extra: Record<string, string>, opts: { disableEngine?: boolean } = {}): Promise<string> => {
    const socket = join(dir, `${id}-${Math.random().toString(36).slice(2, 6)}.sock`);
    await cluster.add(id, { api: true, ...opts, extra: { api_socket: socket, capacity_cpus: "4", capacity_memory: "1G", ...extra } });
    return socket;
  };

  const placements = async (cluster: FleetCluster): Promise<Map<string, string>> => new Map((await cluster.registry.listUnits()).flatMap((u) => (u.machineID ? [[u.name, u.machineID] as const] : [])));

  it("why: per machine the rule that excludes it, where the unit is or would go; JSON; clear errors; any fleetd answers", async () => {
    const cluster = fx.cluster();
    const s1 = await add(cluster, "m1", { metadata: "zone=a" });
    await add(cluster, "m2", { metadata: "zone=a" });
    const s3 = await add(cluster, "m3", { metadata: "zone=b,role=db" }, { disableEngine: true });
    await cluster.waitMachines();
    await submit(cluster, "big.service", unitText({ Memory: "2G" }));
    await submit(cluster, "c@1.service", unitText({ Conflicts: "c@*.service", MachineMetadata: "zone=a" }));
    await submit(cluster, "c@2.service", unitText({ Conflicts: "c@*.service", MachineMetadata: "zone=a" }));
    await waitFor("c@1 and c@2 placed", async () => (await placements(cluster)).size === 2, { describe: () => cluster.describe() });
    await submit(cluster, "c@3.service", unitText({ Conflicts: "c@*.service", MachineMetadata: "zone=a" }));
    await submit(cluster, "pinned.service", unitText({ MachineID: "m2" }), "inactive");

    // Resources everywhere; the line says it has no machine.
    await waitFor("big.service's reason recorded", async () => (await cluster.registry.getUnit("big.service"))?.unscheduledReason);
    const big = await fleetctl(s1, ["why", "big.service"]);
    expect(big.stderr).toBe("");
    expect(big.code).toBe(0);
    expect(big.stdout.split("\n")[0]).toBe("big.service (desired launched) has no machine: no machine can run it (3 machines): 3 excluded by Resources");
    expect(big.stdout).toMatch(/^m1\.\.\.\s+excluded\s+Resources\s+unit needs 2 GiB of memory, machine has 1 GiB free of 1 GiB$/m);

    // Conflicts on the zone=a machines, MachineMetadata on m3; asked of m3, which runs no engine.
    const c3 = await fleetctl(s3, ["why", "c@3.service", "--full"]);
    expect(c3.code).toBe(0);
    const rows = c3.stdout.trim().split("\n").slice(2).map((l) => l.split(/\t|\s{2,}/).slice(0, 3));
    expect(rows).toEqual([
      ["m1", "excluded", "Conflicts"],
      ["m2", "excluded", "Conflicts"],
      ["m3", "excluded", "MachineMetadata"],
    ]);
    expect(c3.stdout).toContain("unit requires zone=a, machine has zone=b");

    // A placed unit: current; and the JSON answer for scripts.
    const on = (await placements(cluster)).get("c@1.service")!;
    const json = await fleetctl(s1, ["why", "--output", "json", "c@1.service"]);
    expect(json.code).toBe(0);
    const answer = JSON.parse(json.stdout) as { unit: string; machineID: string; machines: { machineID: string; verdict: string; rule?: string }[] };
    expect(answer.unit).toBe("c@1.service");
    expect(answer.machineID).toBe(on);
    expect(answer.machines.find((m) => m.machineID === on)?.verdict).toBe("current");
    expect(answer.machines.find((m) => m.machineID === "m3")?.rule).toBe("MachineMetadata");

    // An inactive unit: where it would go (MachineID keeps it off the others).
    const pinned = await fleetctl(s1, ["why", "pinned"]);
    expect(pinned.stdout.split("\n")[0]).toBe("pinned.service is inactive: the scheduler places it only once it is loaded or started; it would go to m2.../10.0.0.50");
    expect(pinned.stdout).toMatch(/^m1\.\.\.\s+excluded\s+MachineID\s+unit requires machine m2$/m);

    // Errors: an unknown unit, a template, a bad --output.
    expect(await fleetctl(s1, ["why", "nope.service"])).toEqual({ code: 1, stdout: "", stderr: 'Cannot explain nope.service: no such unit in the cluster; "fleetctl list-unit-files" lists the units\n' });
    const tpl = await fleetctl(s1, ["why", "c@.service"]);
    expect(tpl.code).toBe(1);
    expect(tpl.stderr).toBe("Cannot explain c@.service: it is a template, and templates are never scheduled; ask about an instance, e.g. fleetctl why c@1.service\n");
    expect((await fleetctl(s1, ["why", "-o", "yaml", "big.service"])).stderr).toBe('Invalid --output "yaml": use table or json\n');
  }, 120_000);

  it("rebalance: a machine joins; --dry-run changes nothing; --max-moves bounds the moves; Conflicts and Resources hold", async () => {
    const cluster = fx.cluster();
    const s1 = await add(cluster, "m1", {});
    await add(cluster, "m2", {});
    await cluster.waitMachines();
    const names: string[] = [];
    for (const i of [1, 2, 3, 4]) names.push(`p${i}.service`);
    for (const i of [1, 2]) names.push(`a${i}.service`);
    for (const i of [1, 2]) names.push(`c@${i}.service`);
    for (const n of names) {
      const x: Record<string, string> = n.startsWith("a") ? { Memory: "200M" } : n.startsWith("c@") ? { Conflicts: "c@*.service" } : {};
      await submit(cluster, n, unitText(x));
    }
    await waitFor("8 units running", () => names.every((n) => cluster.runningOn(n).length === 1), { describe: () => cluster.describe() });
    // The newcomer has room for no unit with Memory=200M.
    await add(cluster, "m3", { capacity_memory: "150M" });
    await cluster.waitMachines();
    const before = await placements(cluster);
    expect([...before.values()].filter((m) => m === "m3")).toEqual([]);

    const plan = await fleetctl(s1, ["rebalance", "--dry-run", "--max-moves", "10"]);
    expect(plan.stderr).toBe("");
    expect(plan.code).toBe(0);
    const planned = plan.stdout.split("\n").filter((l) => l.startsWith("Would move "));
    expect(planned.length).toBeGreaterThanOrEqual(2);
    for (const l of planned) expect(l).toMatch(/^Would move (p\d|c@\d)\.service from m[12]\.\.\. to m3\.\.\. \(load: \d units on m[12], \d on m3\)$/);
    expect(plan.stdout).toContain(`Dry run: ${planned.length} unit(s) would move (at most 10), nothing changed\n`);
    expect(await placements(cluster)).toEqual(before);

    // --deadline: a bare number is seconds, as before durations were accepted.
    const one = await fleetctl(s1, ["rebalance", "--max-moves", "1", "--deadline", "120"]);
    expect(one.stderr).toBe("");
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/^Moved (\S+) from m[12]\.\.\. to m3\.\.\. \(load: \d units on m[12], 0 on m3\)\nRebalanced: moved 1 unit\(s\) \(at most 1\)\n$/);
    const movedUnit = /^Moved (\S+)/.exec(one.stdout)![1]!;
    const afterOne = await placements(cluster);
    expect([...afterOne].filter(([n, m]) => before.get(n) !== m)).toEqual([[movedUnit, "m3"]]);
    // Blocking: the unit already runs on its new machine, and only there.
    expect(cluster.runningOn(movedUnit)).toEqual(["m3"]);

    const rest = await fleetctl(s1, ["rebalance", "--max-moves", "10", "--deadline", "90s"]);
    expect(rest.code).toBe(0);
    const movedLines = rest.stdout.split("\n").filter((l) => l.startsWith("Moved "));
    expect(movedLines.length).toBeGreaterThanOrEqual(1);
    expect(rest.stdout).toContain(`Rebalanced: moved ${movedLines.length} unit(s) (at most 10)\n`);
    const after = await placements(cluster);
    const perMachine = (m: string): string[] => [...after].filter(([, on]) => on === m).map(([n]) => n);
    // Never two c@ instances together, never a 200M unit on the 150M machine, loads within one.
    for (const m of ["m1", "m2", "m3"]) expect(perMachine(m).filter((n) => n.startsWith("c@")).length).toBeLessThanOrEqual(1);
    expect(perMachine("m3").filter((n) => n.startsWith("a"))).toEqual([]);
    const loads = ["m1", "m2", "m3"].map((m) => perMachine(m).length);
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(1);
    for (const n of names) expect(cluster.runningOn(n)).toEqual([after.get(n)]);
    expect((await fleetctl(s1, ["rebalance", "--max-moves", "5"])).stdout).toBe("Nothing to move: no move lowers the load or the spread skew\n");

    // --deadline takes durations as deploy does (90s, 2m, 120 = seconds), within the API's 1 s to 1 h.
    expect(await fleetctl(s1, ["rebalance", "--deadline", "2h"])).toEqual({ code: 1, stdout: "", stderr: "error: option '--deadline <duration>' argument '2h' is invalid. \"2h\" is out of range; use from 1s to 1h\n" });
    expect((await fleetctl(s1, ["rebalance", "--deadline", "soon"])).stderr).toBe("error: option '--deadline <duration>' argument 'soon' is invalid. \"soon\" is not a duration; use e.g. 90s, 2m or 120\n");
    expect(await fleetctl(s1, ["rebalance", "--max-moves", "0"])).toEqual({ code: 1, stdout: "", stderr: "Invalid --max-moves 0: use a whole number from 1 to 1000 (the most units moved)\n" });
    // The API checks its input too (scripts call it directly).
    const api = new ApiClient({ endpoint: `unix://${s1}` });
    try {
      await expect(api.rebalance({ maxMoves: 0 })).rejects.toMatchObject({ status: 400, message: "invalid max-moves 0: use a whole number from 1 to 1000" });
      await expect(api.rebalance({ maxMoves: 2, deadlineMs: 10 })).rejects.toMatchObject({ status: 400, message: "invalid deadline 10 ms per move: use from 1 s to 1 h" });
      await expect(api.why("nope.service")).rejects.toMatchObject({ status: 404, message: "unit nope.service does not exist in the cluster (fleetctl list-unit-files lists the units)" });
      expect((await api.rebalance({ maxMoves: 3, dryRun: true })).moves).toEqual([]);
      // A mistyped dry run is refused, not taken as a real rebalance.
      const typo = await socketRequest(s1, "POST", "/fleet/v1/rebalance", '{"maxMoves":5,"dryrun":true}');
      expect([typo.status, (JSON.parse(typo.body) as { error: { message: string } }).error.message]).toEqual([400, 'unknown field "dryrun"; this request takes maxMoves, dryRun, deadlineMs']);
    } finally {
      api.close();
    }
  }, 120_000);
  it("rebalance_interval in fleet.conf: the leader's fleetd rebalances on its own, off by default", async () => {
    const auto = { rebalance_interval: "1s", rebalance_max_moves: "1" };
    const cluster = fx.cluster();
    await add(cluster, "m1", auto);
    await add(cluster, "m2", auto);
    await cluster.waitMachines();
    const names = [1, 2, 3, 4, 5, 6].map((i) => `p${i}.service`);
    for (const n of names) await submit(cluster, n, unitText());
    await waitFor("6 units running", () => names.every((n) => cluster.runningOn(n).length === 1), { describe: () => cluster.describe() });
    await add(cluster, "m3", {});
    await waitFor("two units moved to m3 without a command", async () => [...(await placements(cluster)).values()].filter((m) => m === "m3").length === 2, { timeoutMs: 30_000, describe: () => cluster.describe() });
    await waitFor("both running on m3", () => cluster.get("m3").manager.running().length === 2, { describe: () => cluster.describe() });
    const leader = [...cluster.instances.values()].find((i) => i.server.engine?.isLeader)!;
    expect(leader.events.filter((e) => e.message.startsWith("Rebalance: ") && e.message.endsWith(": moved")).length).toBeGreaterThanOrEqual(1);

    // Without the option (the default) nothing moves onto a newcomer.
    const quiet = fx.cluster();
    await add(quiet, "q1", {});
    for (const n of names) await submit(quiet, n, unitText());
    await waitFor("6 units running on q1", () => names.every((n) => quiet.runningOn(n).length === 1), { describe: () => quiet.describe() });
    await add(quiet, "q2", {});
    await quiet.waitMachines();
    await new Promise((r) => setTimeout(r, 2_500));
    expect(quiet.get("q2").manager.running()).toEqual([]);
  }, 120_000);
});
