import { request } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run, type RunResult } from "../../lib/process/run";
import { waitFor } from "../helpers/fleet-cluster";
import { etcdFixture } from "../helpers/fleet-fixture";
import { fleetctl } from "./fleetctl-harness";

const TSX = join(process.cwd(), "node_modules/.bin/tsx");

function get(socketPath: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: "GET" }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the fleetd process", () => {
  const etcd = etcdFixture();
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "fleetd-main-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function startFleetd(id: string, socket: string, prefix: string, env: NodeJS.ProcessEnv = {}): { done: Promise<RunResult>; stop: () => void; log: () => string } {
    const controller = new AbortController();
    let log = "";
    const done = run(TSX, ["fleetd/main.ts"], {
      env: {
        ...process.env,
        FLEET_ETCD_SERVERS: etcd().endpoint,
        FLEET_ETCD_KEY_PREFIX: prefix,
        FLEET_MACHINE_ID: id,
        FLEET_UNIT_MANAGER: "memory",
        FLEET_API_SOCKET: socket,
        FLEET_LEASE_FILE: `${socket}.lease`,
        FLEET_AGENT_TTL: "2s",
        FLEET_PUBLIC_IP: "10.1.2.3",
        FLEET_METADATA: "role=test",
        ...env,
      },
      signal: controller.signal,
      allowFailure: true,
      onStderr: (c) => (log += c),
    }).catch((err: unknown) => {
      // Aborting sends SIGTERM; run() then rejects with the result of the process, which we want.
      const result = (err as { result?: RunResult }).result;
      if (!result) throw err;
      return result;
    });
    return { done, stop: () => controller.abort(), log: () => log };
  }

  it("prints its version and refuses positional arguments", async () => {
    const v = await run(TSX, ["fleetd/main.ts", "--version"]);
    expect(v.stdout).toBe("fleetd version 0.1.0\n");
    const bad = await run(TSX, ["fleetd/main.ts", "start"], { allowFailure: true });
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain("fleetd takes no arguments. Did you mean to invoke fleetctl instead?");
    const missing = await run(TSX, ["fleetd/main.ts", "--config", join(dir, "nope.conf")], { allowFailure: true });
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain(`Cannot read configuration ${join(dir, "nope.conf")}`);
  });

  it("renews its lease every lease_renew_interval (etcd counts the keepalive messages)", async () => {
    const socket = join(dir, "renew.sock");
    const fleetd = startFleetd("cccc3333", socket, "/renew-test/", { FLEET_AGENT_TTL: "30s", FLEET_LEASE_RENEW_INTERVAL: "250ms" });
    try {
      await waitFor("the machine to register", async () => (await get(socket, "/fleet/v1/machines").catch(() => ({ status: 0 }))).status === 200, { timeoutMs: 30_000, describe: fleetd.log });
      const keepalives = async (): Promise<number> => {
        const text = await (await fetch(`${etcd().endpoint}/metrics`)).text();
        return [...text.matchAll(/^grpc_server_msg_received_total\{[^}]*grpc_method="LeaseKeepAlive"[^}]*\} (\S+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
      };
      const before = await keepalives();
      await new Promise((r) => setTimeout(r, 2_000));
      // Every 250 ms: about 8 in 2 s. The default with this TTL, min(30s/3, 2s), would send at most 2.
      expect(await keepalives() - before).toBeGreaterThanOrEqual(5);
    } finally {
      fleetd.stop();
      await fleetd.done;
    }
    const bad = await run(TSX, ["fleetd/main.ts"], { env: { ...process.env, FLEET_AGENT_TTL: "30s", FLEET_LEASE_RENEW_INTERVAL: "20s" }, allowFailure: true });
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain("Invalid configuration: lease_renew_interval=20s is longer than a third of agent_ttl=30s: a lease must be renewed at least 3 times per TTL; shorten it or raise agent_ttl");
  });

  it("serves the API once registered, answers 503 naming a duplicate machine ID, and leaves on SIGTERM", async () => {
    const prefix = "/main-test/";
    const first = startFleetd("aaaa1111", join(dir, "a.sock"), prefix);
    let second: ReturnType<typeof startFleetd> | undefined;
    try {
      const machines = await waitFor("the API to list the machine", async () => {
        const r = await get(join(dir, "a.sock"), "/fleet/v1/machines");
        return r.status === 200 ? r.body : undefined;
      }, { timeoutMs: 30_000, describe: first.log });
      expect(JSON.parse(machines)).toEqual({ machines: [{ id: "aaaa1111", primaryIP: "10.1.2.3", metadata: { role: "test" }, capacity: { cpus: availableParallelism() * 1000, memory: totalmem() } }] });
      const dupFleetd = (second = startFleetd("aaaa1111", join(dir, "b.sock"), prefix));
      // Until its first registration attempt the duplicate answers fleet's 503; then it names the cause.
      const dup = await waitFor(
        "the duplicate's API to name the duplicate machine ID",
        async () => {
          const r = await get(join(dir, "b.sock"), "/fleet/v1/units").catch(() => undefined);
          return r?.body.includes("same machine ID") ? r : undefined;
        },
        { timeoutMs: 30_000, describe: dupFleetd.log },
      );
      const cause =
        "fleet server cannot register machine aaaa1111: another live machine is registered with the same machine ID; give this host a unique machine ID (machine_id in fleetd's configuration), then restart fleetd (until then it keeps retrying, and registers if the other machine leaves)";
      expect(dup.status).toBe(503);
      expect(JSON.parse(dup.body)).toEqual({ error: { code: 503, message: cause } });
      expect(dupFleetd.log()).toContain("another live machine is registered with the same machine ID");
      // fleetctl says so too, without fleet's hints about etcd (etcd is fine).
      expect(await fleetctl(["list-machines"], { FLEETCTL_ENDPOINT: `unix://${join(dir, "b.sock")}`, HOME: dir })).toEqual({
        code: 1,
        stdout: "",
        stderr: `Error retrieving list of active machines from fleet API: ${cause}\n`,
      });

      first.stop();
      const result = await first.done;
      expect(result.stderr).toContain("SIGTERM: stopping units, leaving the cluster");
      // Leaving revoked the lease at once, so the duplicate can now register (no TTL wait needed).
      await waitFor("the second fleetd to take over the free ID", async () => (await get(join(dir, "b.sock"), "/fleet/v1/machines")).status === 200, { timeoutMs: 20_000, describe: dupFleetd.log });
    } finally {
      first.stop();
      second?.stop();
      await Promise.all([first.done, second?.done]);
    }
  });
});
