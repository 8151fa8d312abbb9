/**
 * fleetctl status and restart of a global unit, as fleet users run them: the real CLI against real etcd
 * and three fleetds, each machine an SSH server of its own on a loopback address (fleetctl-ssh-server.ts).
 * Two machines match the unit's metadata and run it; the third does not and must not be contacted
 * (no connection, no host-key prompt).
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../helpers/fleet-cluster";
import { etcdFixture } from "../helpers/fleet-fixture";
import { FleetctlEnv, type RunOptions } from "./fleetctl-harness";
import { startSshServer, writeClientKey, type TestSshServer } from "./fleetctl-ssh-server";

const M1 = "a1000000000000000000000000000001";
const M2 = "b2000000000000000000000000000002";
const M3 = "c3000000000000000000000000000003";
const IPS: Record<string, string> = { [M1]: "127.0.0.1", [M2]: "127.0.0.2", [M3]: "127.0.0.3" };

describe("fleetctl status and restart of a global unit", () => {
  const etcd = etcdFixture();
  let env: FleetctlEnv;
  const servers = new Map<string, TestSshServer>();
  let port: number;
  let identity: string;
  let knownHosts: string;
  let ssh: (argv: string[], opts?: RunOptions) => ReturnType<FleetctlEnv["run"]>;

  beforeAll(async () => {
    env = await FleetctlEnv.start(etcd(), [M1, M2, M3], {
      [M1]: { metadata: "role=web", extra: { public_ip: IPS[M1]! } },
      [M2]: { metadata: "role=web", extra: { public_ip: IPS[M2]! } },
      [M3]: { metadata: "role=db", extra: { public_ip: IPS[M3]! } },
    });
    const binDir = join(env.dir, "bin");
    await mkdir(binDir);
    await writeFile(join(binDir, "systemctl"), '#!/bin/sh\necho "systemctl $*"\ncase "$*" in *ok*) exit 0;; esac\nexit 3\n');
    await chmod(join(binDir, "systemctl"), 0o755);
    const key = await writeClientKey(env.dir);
    identity = key.identity;
    // One SSH server per machine, all on one port (--ssh-port is one value for every machine).
    const first = await startSshServer({ clientPublicKey: key.publicKey, binDir, host: IPS[M1]! });
    port = first.port;
    servers.set(M1, first);
    servers.set(M2, await startSshServer({ clientPublicKey: key.publicKey, binDir, host: IPS[M2]!, port }));
    servers.set(M3, await startSshServer({ clientPublicKey: key.publicKey, binDir, host: IPS[M3]!, port }));
    // Only the machines running the unit are known: contacting the third would prompt (and fail, no stdin).
    knownHosts = join(env.dir, "known_hosts");
    await writeFile(knownHosts, [M1, M2].map((m) => `[${IPS[m]}]:${port} ${servers.get(m)!.hostPublicKey}\n`).join(""));
    ssh = (argv, opts = {}) =>
      env.run(["--identity-file", identity, "--known-hosts-file", knownHosts, ...argv], {
        ...opts,
        env: { PATH: `${binDir}:${process.env.PATH ?? ""}`, ...opts.env },
      });
    await writeFile(join(env.dir, "ok-web.service"), "[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n");
    expect((await env.run(["start", "ok-web.service"])).code).toBe(0);
    await waitFor("ok-web.service on both web machines", () => env.cluster.runningOn("ok-web.service").join(",") === [M1, M2].join(","), { describe: () => env.cluster.describe() });
    // status finds a global unit's machines by their published states, which follow the start: wait
    // until both states are visible through the API too (CI once ran status in between).
    await waitFor("both states of ok-web.service in list-units", async () => {
      const r = await env.run(["list-units", "--no-legend", "--fields", "unit,machine"]);
      return r.stdout.split("\n").filter((l) => l.startsWith("ok-web.service")).length === 2;
    });
  });

  afterAll(async () => {
    for (const s of servers.values()) await s.close();
    await env?.close();
  });

  const header = (m: string): string => `${m.slice(0, 8)}.../${IPS[m]!}`;

  it("status shows the unit on every machine that runs it, exits 0, and contacts no other machine", async () => {
    const r = await ssh(["status", "--ssh-port", String(port), "ok-web"]);
    expect(r).toEqual({
      code: 0,
      stdout: `ok-web.service on ${header(M1)}:\nsystemctl status -l ok-web.service\n\nok-web.service on ${header(M2)}:\nsystemctl status -l ok-web.service\n`,
      stderr: "",
    });
    expect(servers.get(M1)!.commands).toEqual(["systemctl status -l ok-web.service"]);
    expect(servers.get(M2)!.commands).toEqual(["systemctl status -l ok-web.service"]);
    expect(servers.get(M3)!.commands).toEqual([]);
  });

  it("status of a global unit shows every machine even when one fails, with the first failure's exit code", async () => {
    await writeFile(join(env.dir, "web-agent.service"), "[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n");
    expect((await env.run(["start", "web-agent.service"])).code).toBe(0);
    await waitFor("web-agent.service on both web machines", async () => (await env.cluster.registry.listStates({ unitName: "web-agent.service" })).length === 2);
    const r = await ssh(["status", "--ssh-port", String(port), "web-agent.service", "ok-web.service"]);
    expect(r).toEqual({
      code: 3,
      stdout: `web-agent.service on ${header(M1)}:\nsystemctl status -l web-agent.service\n\nweb-agent.service on ${header(M2)}:\nsystemctl status -l web-agent.service\n`,
      stderr: "",
    });
    expect(servers.get(M3)!.commands).toEqual([]);
  });

  it("status of a global unit that no machine has says so and exits 1", async () => {
    await writeFile(join(env.dir, "ok-gpu.service"), "[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=gpu\n");
    expect((await env.run(["start", "ok-gpu.service"])).code).toBe(0);
    const r = await ssh(["status", "--ssh-port", String(port), "ok-gpu.service"]);
    expect(r).toEqual({
      code: 1,
      stdout: "",
      stderr: 'Global unit ok-gpu.service is on no machine: no machine matches its [X-Fleet] section, or it is inactive ("fleetctl list-units" shows where units run)\n',
    });
  });

  /** The operations machine `id`'s (simulated) systemd ran on `unit`, e.g. ["stop", "start"]. */
  const opsOn = (id: string, unit: string): string[] =>
    env.cluster
      .get(id)
      .manager.operations.filter((o) => o.name === unit)
      .map((o) => o.op);

  it("restart stops and then starts a global unit on every machine that runs it, and nowhere else", async () => {
    const before = new Map([M1, M2, M3].map((m) => [m, opsOn(m, "ok-web.service").length]));
    const r = await env.run(["restart", "ok-web.service"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    for (const m of [M1, M2]) expect(opsOn(m, "ok-web.service").slice(before.get(m))).toEqual(["stop", "start"]);
    expect(opsOn(M3, "ok-web.service")).toEqual([]);
    expect(env.cluster.runningOn("ok-web.service")).toEqual([M1, M2]);
  });

  /** Operations on `unit` across the cluster since `mark` (per machine), e.g. {M1: ["stop", "start"]}. */
  const opsSince = (unit: string, mark: Map<string, number>): Record<string, string[]> =>
    Object.fromEntries([M1, M2, M3].map((m) => [m, opsOn(m, unit).slice(mark.get(`${m} ${unit}`) ?? 0)] as const).filter(([, ops]) => ops.length > 0));
  const mark = (units: string[]): Map<string, number> => new Map([M1, M2, M3].flatMap((m) => units.map((u) => [`${m} ${u}`, opsOn(m, u).length] as const)));

  it("restart of a non-global unit stops and starts it on its machine", async () => {
    await writeFile(join(env.dir, "single.service"), "[Service]\nExecStart=/bin/sleep infinity\n");
    expect((await env.run(["start", "single.service"])).code).toBe(0);
    const before = mark(["single.service"]);
    const r = await env.run(["restart", "single.service"]);
    expect(r.code).toBe(0);
    const where = (await env.cluster.registry.getUnit("single.service"))!.machineID!;
    expect(opsSince("single.service", before)).toEqual({ [where]: ["stop", "start"] });
  });

  it("restart web@.service restarts every instance of the template", async () => {
    await writeFile(join(env.dir, "tpl@.service"), "[Service]\nExecStart=/bin/sleep infinity\n");
    expect((await env.run(["start", "tpl@1.service", "tpl@2.service"])).code).toBe(0);
    const before = mark(["tpl@1.service", "tpl@2.service"]);
    const r = await env.run(["restart", "tpl@.service"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    for (const n of ["tpl@1.service", "tpl@2.service"]) {
      const where = (await env.cluster.registry.getUnit(n))!.machineID!;
      expect(opsSince(n, before)).toEqual({ [where]: ["stop", "start"] });
    }
  });

  it("restart that restarts nothing exits 1: an unknown unit, a template without instances, an inactive unit", async () => {
    expect(await env.run(["restart", "ghost.service"])).toEqual({ code: 1, stdout: "", stderr: "unable to find Unit(ghost.service) in Registry or on filesystem\n" });
    const none = await env.run(["restart", "nothing@.service"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^Units not found in registry \(no instances of nothing@\.service either\)/);
    await writeFile(join(env.dir, "idle.service"), "[Service]\nExecStart=/bin/sleep infinity\n");
    expect((await env.run(["submit", "idle.service"])).code).toBe(0);
    expect(await env.run(["restart", "idle.service"])).toEqual({
      code: 1,
      stdout: "",
      stderr: "Unable to restart unit idle.service in state inactive\nNo unit was restarted: none of the named units is loaded or launched\n",
    });
  });

});
