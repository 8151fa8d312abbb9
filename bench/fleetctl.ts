/**
 * `npm run bench:fleetctl`: fleetctl against a local fleetd API with many units (default 10,000).
 *
 * Sets up a real etcd on loopback, 3 fleetd instances (engine + agent, in-memory unit managers) and
 * the HTTP API on a unix socket; submits N units as launched and waits until the agents report them
 * all. Then times, in-process (no Node start-up, which `node dist/fleetctl.cjs` adds on top):
 *   - `fleetctl list-units` (all N states, machine legends, tab writer),
 *   - the API part of `fleetctl status <one unit>`: GET /units/<name> + GET /machines (no SSH),
 *   - `fleetctl stop <one unit>`, blocking until the agent reports it loaded.
 * Each figure is the median of a few runs. Last line: one JSON object.
 *
 * Flags: --units N (default 10000), --machines M (default 3), --runs R (default 5).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { PassThrough } from "node:stream";
import { ApiClient } from "../lib/api/client";
import { parseUnitFile } from "../lib/unit";
import { createApiServer, registryBackend } from "../fleetd/api";
import { runFleetctl } from "../fleetctl/program";
import { startEtcd } from "../test/helpers/etcd";
import { FleetCluster, waitFor } from "../test/helpers/fleet-cluster";

function flag(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer, not "${process.argv[i + 1]}"`);
  return v;
}

class Sink extends Writable {
  bytes = 0;
  text = "";
  constructor(private readonly keep: boolean) {
    super();
  }
  override _write(chunk: Buffer | string, _e: BufferEncoding, cb: () => void): void {
    this.bytes += chunk.length;
    if (this.keep) this.text += chunk.toString();
    cb();
  }
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const units = flag("units", 10_000);
  const machineCount = flag("machines", 3);
  const runs = flag("runs", 5);
  const etcd = await startEtcd();
  const dir = await mkdtemp(join(tmpdir(), "bench-fleetctl-"));
  const cluster = new FleetCluster(etcd);
  const api = createApiServer({ backend: registryBackend(cluster.registry), version: "bench" });
  try {
    const ids = Array.from({ length: machineCount }, (_, i) => `${String(i + 1).padStart(2, "0")}${"0".repeat(29)}${i + 1}`);
    await Promise.all(ids.map((id) => cluster.add(id)));
    await waitFor("machines registered", async () => (await cluster.registry.listMachines()).length === machineCount, { timeoutMs: 30_000 });
    const socket = join(dir, "fleet.sock");
    await api.listen({ kind: "unix", path: socket });
    const endpoint = `unix://${socket}`;

    const options = parseUnitFile("[Unit]\nDescription=bench\n\n[Service]\nExecStart=/bin/sleep infinity\n");
    const names = Array.from({ length: units }, (_, i) => `bench-${String(i).padStart(5, "0")}.service`);
    const setup0 = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < names.length) {
          const name = names[next++]!;
          await cluster.registry.createUnit({ name, options, desiredState: "launched" });
        }
      }),
    );
    const client = new ApiClient({ endpoint });
    await waitFor(
      `${units} units launched`,
      async () => (await client.listUnitStates()).filter((s) => s.systemdActiveState === "active").length === units,
      { timeoutMs: 600_000 },
    );
    console.log(`setup: ${units} units submitted and launched on ${machineCount} machines in ${((Date.now() - setup0) / 1000).toFixed(1)} s`);

    const run = async (argv: string[], keep = false): Promise<{ code: number; out: Sink; err: Sink }> => {
      const out = new Sink(keep);
      const err = new Sink(true);
      const stdin = new PassThrough();
      stdin.end();
      const code = await runFleetctl(argv, { stdout: out, stderr: err, stdin, env: { FLEETCTL_ENDPOINT: endpoint }, version: "bench" });
      if (code !== 0) throw new Error(`fleetctl ${argv.join(" ")} exited ${code}: ${err.text}`);
      return { code, out, err };
    };

    const listTimes: number[] = [];
    let lines = 0;
    for (let i = 0; i < runs; i++) {
      listTimes.push(
        await timed(async () => {
          const r = await run(["list-units"], true);
          lines = r.out.text.split("\n").length - 2;
        }),
      );
    }
    if (lines !== units) throw new Error(`list-units printed ${lines} rows, expected ${units}`);

    const statusTimes: number[] = [];
    for (let i = 0; i < runs; i++) {
      const name = names[Math.floor((i + 0.5) * (units / runs))]!;
      const c = new ApiClient({ endpoint });
      statusTimes.push(
        await timed(async () => {
          const unit = await c.getUnit(name);
          const machines = await c.listMachines();
          if (!unit?.machineID || !machines.some((m) => m.id === unit.machineID)) throw new Error(`status lookup of ${name} found no machine`);
        }),
      );
      c.close();
    }

    const stopTimes: number[] = [];
    for (let i = 0; i < runs; i++) {
      const name = names[Math.floor((i + 0.25) * (units / runs))]!;
      stopTimes.push(await timed(async () => void (await run(["stop", name]))));
    }
    client.close();

    const result = {
      units,
      list_units_seconds: Number(median(listTimes).toFixed(3)),
      status_one_seconds: Number(median(statusTimes).toFixed(4)),
      stop_one_seconds: Number(median(stopTimes).toFixed(3)),
    };
    console.log(`list-units   (${units} rows)  median of ${runs}: ${result.list_units_seconds} s   [${listTimes.map((t) => t.toFixed(3)).join(", ")}]`);
    console.log(`status path  (one unit)     median of ${runs}: ${result.status_one_seconds} s   [${statusTimes.map((t) => t.toFixed(4)).join(", ")}]`);
    console.log(`stop         (one unit)     median of ${runs}: ${result.stop_one_seconds} s   [${stopTimes.map((t) => t.toFixed(3)).join(", ")}]`);
    console.log(`targets: each < 1 s (fleet: minutes with 2,500 units)`);
    console.log(JSON.stringify(result));
  } finally {
    await api.close();
    await cluster.close();
    await etcd.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exitCode = 1;
});
