/**
 * `npm run bench:fleetctl`: fleetctl against a local fleetd API with many units (default 10,000).
 *
 * Sets up a real etcd on loopback and M real fleetd processes (`fleetd/main.ts`: engine + agent + API
 * on a unix socket each, `unit_manager=memory`); submits N units as launched through the API, one
 * PUT per unit, 16 in flight, and waits
 * until the agents report them all. Then times fleetctl in this process (no Node start-up, which
 * `node dist/fleetctl.cjs` adds on top) against the first fleetd's socket:
 *   - `fleetctl list-units` (all N states, machine legends, tab writer),
 *   - the API part of `fleetctl status <one unit>`: GET /units/<name> + GET /machines (no SSH),
 *   - `fleetctl stop <one unit>`, blocking until the agent reports it loaded.
 * and the shipped bundle `node dist/fleetctl.cjs list-units` as its own process, Node start-up
 * included (`list_units_process_seconds`; needs `npm run build`). Each figure is the median of a few
 * runs. Last line: one JSON object.
 *
 * Flags: --units N (default 10000), --machines M (default 3), --runs R (default 5).
 */
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { PassThrough } from "node:stream";
import { ApiClient } from "../lib/api/client";
import { delay } from "../lib/async/delay";
import { mapLimit } from "../lib/async/map-limit";
import { run as runProcess } from "../lib/process/run";
import { parseUnitFile } from "../lib/unit";
import { runFleetctl } from "../fleetctl/program";
import { startEtcd } from "../test/helpers/etcd";

const FLEETD_MAIN = new URL("../fleetd/main.ts", import.meta.url).pathname;

async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs: number, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ""}`);
    await delay(intervalMs);
  }
}

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
  const fleetds = new AbortController();
  const exited: Promise<unknown>[] = [];
  const logs: WriteStream[] = [];
  try {
    for (let i = 1; i <= machineCount; i++) {
      const conf = join(dir, `fleet-${i}.conf`);
      await writeFile(
        conf,
        [
          `etcd_servers=${etcd.endpoint}`,
          "etcd_key_prefix=/bench/",
          `machine_id=${String(i).padStart(2, "0")}${"0".repeat(29)}${i}`,
          `public_ip=10.0.0.${i}`,
          "unit_manager=memory",
          `api_socket=${join(dir, `fleet-${i}.sock`)}`,
          "agent_ttl=10s",
        ].join("\n"),
      );
      // The fleetds are killed by the abort at the end; how they exit is not a figure of this bench.
      // Each fleetd's output goes to fleet-<i>.log; its tail is printed if the bench fails.
      const log = createWriteStream(join(dir, `fleet-${i}.log`));
      logs.push(log);
      const write = (chunk: string): void => void log.write(chunk);
      exited.push(
        runProcess(process.execPath, ["--import", "tsx", FLEETD_MAIN, "--config", conf], { signal: fleetds.signal, allowFailure: true, captureStdout: false, onStdout: write, onStderr: write }).catch(() => undefined),
      );
    }
    const endpoint = `unix://${join(dir, "fleet-1.sock")}`;
    const probe = new ApiClient({ endpoint });
    await waitFor("fleetd machines registered", async () => (await probe.listMachines()).length === machineCount, 60_000);
    probe.close();

    const options = parseUnitFile("[Unit]\nDescription=bench\n\n[Service]\nExecStart=/bin/sleep infinity\n");
    const names = Array.from({ length: units }, (_, i) => `bench-${String(i).padStart(5, "0")}.service`);
    const setup0 = Date.now();
    const client = new ApiClient({ endpoint, requestTimeoutMs: 30_000 });
    // One PUT per unit, 16 in flight (fleet's client path). Not fleetctl's POST /units: at 100,000
    // units that burst overloads three fleetds on two cores (leases and leadership lost, resync
    // storms; open in issue 11), and this bench is about listing, not submitting.
    await mapLimit(names, 16, (name) => client.createUnit({ name, options, desiredState: "launched" }));
    // Polled at most ~10 times a second, less at big N: each poll lists every state.
    let active = 0;
    let lastReport = Date.now();
    await waitFor(
      `${units} units launched`,
      async () => {
        active = (await client.listUnitStates()).filter((s) => s.systemdActiveState === "active").length;
        if (Date.now() - lastReport > 10_000) {
          console.log(`setup: ${active} of ${units} units active after ${((Date.now() - setup0) / 1000).toFixed(0)} s`);
          lastReport = Date.now();
        }
        return active === units;
      },
      600_000,
      Math.max(200, units / 100),
    );
    const setupSeconds = (Date.now() - setup0) / 1000;
    console.log(`setup: ${units} units submitted (16 PUTs in flight) and launched on ${machineCount} machines in ${setupSeconds.toFixed(1)} s`);

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

    // For reference (not in the JSON): the shipped bundle as its own process, Node start-up included.
    const bundle = new URL("../dist/fleetctl.cjs", import.meta.url).pathname;
    let processLine = "process      (dist/fleetctl.cjs list-units): skipped, run `npm run build` first";
    let processSeconds: number | undefined;
    if (await stat(bundle).then(() => true, () => false)) {
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        times.push(await timed(async () => void (await runProcess(process.execPath, [bundle, "list-units", "--no-legend"], { env: { ...process.env, FLEETCTL_ENDPOINT: endpoint }, captureStdout: false }))));
      }
      processSeconds = Number(median(times).toFixed(3));
      processLine = `process      (node dist/fleetctl.cjs list-units, incl. Node start-up) median of ${runs}: ${processSeconds} s   [${times.map((t) => t.toFixed(3)).join(", ")}]`;
    }

    const result = {
      units,
      list_units_seconds: Number(median(listTimes).toFixed(3)),
      status_one_seconds: Number(median(statusTimes).toFixed(4)),
      stop_one_seconds: Number(median(stopTimes).toFixed(3)),
      ...(processSeconds === undefined ? {} : { list_units_process_seconds: processSeconds }),
      setup_seconds: Number(setupSeconds.toFixed(1)),
    };
    console.log(`list-units   (${units} rows)  median of ${runs}: ${result.list_units_seconds} s   [${listTimes.map((t) => t.toFixed(3)).join(", ")}]`);
    console.log(`status path  (one unit)     median of ${runs}: ${result.status_one_seconds} s   [${statusTimes.map((t) => t.toFixed(4)).join(", ")}]`);
    console.log(`stop         (one unit)     median of ${runs}: ${result.stop_one_seconds} s   [${stopTimes.map((t) => t.toFixed(3)).join(", ")}]`);
    console.log(processLine);
    console.log(`targets: each < 1 s (fleet: minutes with 2,500 units)`);
    console.log(JSON.stringify(result));
  } catch (err) {
    for (const [i, log] of logs.entries()) {
      await new Promise((r) => log.end(r));
      const text = await readFile(join(dir, `fleet-${i + 1}.log`), "utf8");
      console.error(`--- fleetd ${i + 1}, last lines of its log:\n${text.split("\n").slice(-15).join("\n")}`);
    }
    throw err;
  } finally {
    for (const log of logs) log.end();
    fleetds.abort();
    await Promise.all(exited);
    await etcd.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exitCode = 1;
});
