/**
 * `npm run bench:scheduler`: one real etcd on loopback; fleetd's side (one real engine and the real
 * HTTP API on a unix socket) in its own process (`bench/engine-process.ts`); N simulated machines in
 * this process, each a real `Agent` + `MachineSession` (own lease, own watch on its own schedule
 * prefix; a few etcd3 clients are shared, which multiplex watches over one gRPC stream each) with an
 * in-memory unit manager that records when StartUnit was called. For each size it measures:
 *   - time from the first submit to every unit reported launched (states watched in etcd),
 *   - etcd write requests (Put/Txn/DeleteRange, from etcd's own metrics) and keys written per unit,
 *   - watch events each agent received for other machines' units,
 *   - raw etcd puts/s measured in the same run (same concurrency), and the ratio,
 *   - submit → StartUnit latency: under the load of the big submit, and in the idle cluster after it
 *     (probe units submitted one at a time),
 *   - RSS of the engine+API process and of this process (agents) per machine,
 *   - CPU seconds etcd, the engine+API process and this process used during the launch (where the
 *     cores went: all three share this machine), the CPU per unit launched and per raw put (etcd + its
 *     client, over the raw rounds), and the highest ratio the cores allow at that CPU per unit (all
 *     processes, and etcd + engine+API alone: on a real cluster the machines run elsewhere).
 * Flags: --units N (10000) --machines M (1000), or --sizes 1000/100,10000/1000,... (every size in turn,
 * a fresh etcd each); --clients C (4 shared etcd clients for agents) --concurrency K (64 requests in
 * flight) --ttl S (30) --probes P (100 idle-latency units) --data-dir DIR (/dev/shm: etcd's data on
 * tmpfs, so the figures are about fleetd, not disk fsync; pass e.g. /var/tmp for a disk)
 * Through the API, --warm N (5000) warm-up units (`warm@N`, not counted) are launched before the clock
 * starts, sent by the client process the same way as the measured units, then destroyed, and the clock
 * starts once every machine has stopped them: the processes are as warm (JIT-compiled, heaps grown) as
 * a fleetd that has been running, and the cluster holds only the measured units (the raw puts get
 * 1,000 warm-up puts and are measured over 30,000). With 1,000 warm-up units the 1k size measured a
 * cold engine: 3,260 µs of CPU per unit, against 1,850 µs after 5,000.
 * --submit api|batch|single: api = one `PUT /units/<name>` with desiredState launched per unit through
 * the real HTTP API (what fleet's Go client does); api-bulk = `ApiClient.putUnits`, the `POST /units`
 * requests of up to 1,000 units that our fleetctl sends (submit/start); batch = bulk registry
 * transactions of up to 127 units (no user can do this); single = one registry call per unit.
 * Simulated machines keep their leases alive every TTL/3 (10 s), not fleetd's default 2 s: 10,000
 * machines in this one process would otherwise send 5,000 keepalives/s, more work than the units.
 * --resources: resources and spread on. Machines publish capacities of four shapes (2-16 CPUs, 4-32 GiB,
 * round robin) and metadata zone=z0..z6; every unit asks `[X-Fleet] CPUs=250m`, `Memory=512M`,
 * `Spread=zone`. Adds placement figures: machines overcommitted (must be 0), zone skew of the
 * template's instances (max - min per zone; ≤ 1 is even), highest and mean dominant share (max of CPU
 * and memory allocated / capacity), and units on the fullest machine; they sit under `placement`.
 * The last line is one JSON object (largest size, with every size under `sizes`).
 * `npm run bench:scheduler` gives this process (10,000 simulated machines hold ~1.5 GB) a 64 MB young
 * generation: with Node's default, scavenges were 17 % of its CPU at 100k units.
 * BENCH_ENGINE_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the engine+API process;
 * BENCH_PROFILE_DIR=/tmp/prof writes CPU profiles of this process (the simulated machines) and of the
 * engine+API process from submit to all launched, two `.cpuprofile` files per size.
 * BENCH_ETCD_ARGS adds etcd flags (e.g. "--enable-pprof" for /debug/pprof on the client URL). etcd
 * gets the flags the host image gives its members (`etcd-launch`: backend commit every 10 ms or 256
 * writes).
 */
import { setMaxListeners } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os, { tmpdir } from "node:os";
import { join } from "node:path";
import { constants as perfConstants, monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";
import { parseArgs } from "node:util";
import type { Etcd3 } from "etcd3";
import { Agent } from "../fleetd/agent/agent";
import { EngineProcess, ObserverProcess, SubmitProcess } from "./bench-processes";
import { startCpuProfile } from "./cpu-profile";
import { MemoryUnitManager } from "../fleetd/agent/memory-unit-manager";
import { EtcdRegistry } from "../fleetd/registry/etcd-registry";
import { createEtcdClient, EtcdStore, type WatchHandle } from "../fleetd/registry/etcd-store";
import { MachineSession } from "../fleetd/registry/machine-session";
import { ApiClient } from "../lib/api/client";
import { mapLimit } from "../lib/async/map-limit";
import { parseUnitFile } from "../lib/unit";
import { etcdMetrics, startEtcd } from "../test/helpers/etcd";

const { values } = parseArgs({
  options: {
    units: { type: "string", default: "10000" },
    machines: { type: "string", default: "1000" },
    sizes: { type: "string" },
    clients: { type: "string", default: "4" },
    concurrency: { type: "string", default: "64" },
    ttl: { type: "string", default: "30" },
    probes: { type: "string", default: "100" },
    "data-dir": { type: "string", default: "/dev/shm" },
    submit: { type: "string", default: "batch" },
    timeout: { type: "string", default: "600" },
    resources: { type: "boolean", default: false },
    warm: { type: "string", default: "5000" },
  },
});
const RESOURCES = values.resources === true;
/** --resources: what each unit asks, and the machines' shapes (milli-CPUs, bytes) and zones. */
const UNIT_NEEDS = { cpus: 250, memory: 512 * 1024 ** 2 };
const MACHINE_SHAPES = [
  { cpus: 4_000, memory: 8 * 1024 ** 3 },
  { cpus: 8_000, memory: 16 * 1024 ** 3 },
  { cpus: 2_000, memory: 4 * 1024 ** 3 },
  { cpus: 16_000, memory: 32 * 1024 ** 3 },
];
const ZONES = 7;
const SUBMIT = values.submit ?? "batch";
if (!["api", "api-bulk", "batch", "single"].includes(SUBMIT)) throw new Error(`--submit ${SUBMIT}: use api, api-bulk, batch or single`);
const CLIENTS = Number(values.clients);
const CONCURRENCY = Number(values.concurrency);
const TTL = Number(values.ttl);
const PROBES = Number(values.probes);
const TIMEOUT_MS = Number(values.timeout) * 1000;
const DATA_DIR = values["data-dir"] ?? "/dev/shm";
const PREFIX = "/bench/";
/** Units launched through the API before the clock starts (`warm@N.service`), not counted. */
const WARM_UNITS = Number(values.warm);
if (!Number.isSafeInteger(WARM_UNITS) || WARM_UNITS < 0) throw new Error(`--warm ${values.warm}: give a number of warm-up units (0 or more)`);
const WARM_PREFIX = "warm@";
const ETCD_LAUNCH = new URL("../image-builder/overlay/usr/lib/corefleet/etcd-launch", import.meta.url).pathname;

const SIZES: { units: number; machines: number }[] = values.sizes
  ? values.sizes.split(",").map((s) => {
      const [u, m] = s.split("/").map(Number);
      if (!Number.isInteger(u) || !Number.isInteger(m) || !u || !m) throw new Error(`--sizes ${values.sizes}: each size is UNITS/MACHINES, e.g. 1000/100`);
      return { units: u, machines: m };
    })
  : [{ units: Number(values.units), machines: Number(values.machines) }];

/** An EtcdStore that counts watch events whose key is outside the prefix the owner watches for itself. */
class CountingStore extends EtcdStore {
  /** Watch disconnections seen by all agents (etcd3 re-attaches every watch of a stream after one). */
  static disconnects = 0;
  foreign = 0;
  own = 0;
  constructor(
    client: Etcd3,
    private readonly ownPrefix: string,
  ) {
    super(client, { prefix: PREFIX, requestTimeoutMs: 30_000 });
  }
  override watch(prefix: string, fromRevision: number, handlers: Parameters<EtcdStore["watch"]>[2]): Promise<WatchHandle> {
    return super.watch(prefix, fromRevision, {
      ...handlers,
      onDisconnect: () => {
        CountingStore.disconnects++;
        handlers.onDisconnect?.();
      },
      onChanges: (changes, rev) => {
        for (const c of changes) {
          if (c.key.startsWith(this.ownPrefix)) this.own++;
          else this.foreign++;
        }
        handlers.onChanges(changes, rev);
      },
    });
  }
}

/** The memory unit manager, noting when the agent called StartUnit for each unit. */
class TimedManager extends MemoryUnitManager {
  constructor(private readonly startedAt: Map<string, number>) {
    super();
  }
  override async start(name: string, signal?: AbortSignal): Promise<void> {
    if (!this.startedAt.has(name)) this.startedAt.set(name, performance.now());
    await super.start(name, signal);
  }
}

/** etcd's gRPC requests per method and summed for the write methods, and mvcc key writes. */
async function etcdWriteCounters(endpoint: string): Promise<{ requests: number; keys: number; byMethod: Map<string, number> }> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  let requests = 0;
  let keys = 0;
  const byMethod = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^grpc_server_started_total\{[^}]*grpc_method="(\w+)"[^}]*\} (\S+)/.exec(line);
    if (m) {
      byMethod.set(m[1]!, (byMethod.get(m[1]!) ?? 0) + Number(m[2]));
      if (m[1] === "Put" || m[1] === "Txn" || m[1] === "DeleteRange") requests += Number(m[2]);
    }
    const k = /^etcd_mvcc_(put|delete)_total (\S+)/.exec(line);
    if (k) keys += Number(k[2]);
  }
  return { requests, keys, byMethod };
}

/** etcd's own figures for the progress line: watchers open and behind (unsynced), slow applies, LeaseKeepAlive stream ends. */
async function etcdWatchers(endpoint: string): Promise<{ watchers: number; slow: number; slowApplies: number; keepaliveEnds: string }> {
  const { text, gauge } = await etcdMetrics(endpoint);
  // LeaseKeepAlive streams etcd ended, by gRPC code: a renewal that fails (e.g. the leader's apply loop
  // more than 1 s behind its commits) ends the whole stream.
  const ends = [...text.matchAll(/^grpc_server_handled_total\{grpc_code="(\w+)",grpc_method="LeaseKeepAlive"[^}]*\} (\S+)/gm)].map((m) => `${m[1]} ${m[2]}`);
  return {
    watchers: gauge("etcd_debugging_mvcc_watcher_total"),
    slow: gauge("etcd_debugging_mvcc_slow_watcher_total"),
    slowApplies: gauge("etcd_server_slow_apply_total"),
    keepaliveEnds: ends.join(", ") || "none",
  };
}

/** Each process's CPU per unit, for a log line. */
function describeCpuByProcess(c: SizeFigures["cpu_us"]["by_process"]): string {
  return `etcd ${c.etcd} + engine+API ${c.engine_api} + simulated machines ${c.agents} + client ${c.client} + observer ${c.observer} µs`;
}

function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

const mb = (bytes: number): number => Math.round(bytes / 1024 / 1024);

/** CPU seconds (user + system) a process has used so far, from /proc (Linux clock ticks of 1/100 s). */
async function cpuSecondsOf(pid: number | undefined): Promise<number> {
  if (pid === undefined) return NaN;
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which is in parentheses and may hold spaces): utime is the 12th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * The etcd settings the host image gives its members (`etcd-launch`), so the bench measures the etcd
 * that corefleet ships: the backend's commit interval and limit, each `ETCD_BACKEND_*` default there
 * as its flag.
 */
async function imageEtcdArgs(): Promise<string[]> {
  const script = await readFile(ETCD_LAUNCH, "utf8");
  const args = [...script.matchAll(/ETCD_(BACKEND_[A-Z_]+):-([^}]+)\}/g)].map(([, name, value]) => `--${name!.toLowerCase().replaceAll("_", "-")}=${value}`);
  for (const flag of ["--backend-batch-interval", "--backend-batch-limit"]) {
    if (!args.some((a) => a.startsWith(`${flag}=`))) throw new Error(`Cannot run the bench: ${ETCD_LAUNCH} sets no default for ${flag}`);
  }
  return args;
}

/** Seconds this process spent in garbage collection pauses from now until `stop()`, by kind. */
function gcTally(): { stop(): { major: number; minor: number; other: number } } {
  const t = { major: 0, minor: 0, other: 0 };
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      const k = kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR ? "major" : kind === perfConstants.NODE_PERFORMANCE_GC_MINOR ? "minor" : "other";
      t[k] += e.duration / 1000;
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  return {
    stop() {
      observer.disconnect();
      return t;
    },
  };
}

/**
 * With BENCH_PROFILE_DIR, CPU profiles of this process (simulated machines, bench) and of the
 * engine+API process over the measured phase.
 */
async function startProfile(engine: EngineProcess): Promise<{ stop(name: string): Promise<void> } | undefined> {
  const dir = process.env.BENCH_PROFILE_DIR;
  if (!dir) return undefined;
  const own = await startCpuProfile();
  await engine.startProfile();
  return {
    async stop(name) {
      const files = [join(dir, `${name}-machines.cpuprofile`), join(dir, `${name}-engine-api.cpuprofile`)];
      await own.stop(files[0]!);
      await engine.stopProfile(files[1]!);
      log(`CPU profiles of the simulated machines' and the engine+API processes: ${files.join(", ")}`);
    },
  };
}

/** Each process's share of a core over `seconds` of rest: the floor the cluster's size alone costs. */
async function idleShares(o: { etcdPid: number | undefined; enginePid: number | undefined; seconds: number }): Promise<{ seconds: number; etcd: string; engine: string; bench: string }> {
  const before = { etcd: await cpuSecondsOf(o.etcdPid), engine: await cpuSecondsOf(o.enginePid), bench: process.cpuUsage() };
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  const bench = process.cpuUsage(before.bench);
  const share = (cpu: number): string => `${Math.round((cpu / o.seconds) * 100)}%`;
  return {
    seconds: o.seconds,
    etcd: share((await cpuSecondsOf(o.etcdPid)) - before.etcd),
    engine: share((await cpuSecondsOf(o.enginePid)) - before.engine),
    bench: share((bench.user + bench.system) / 1e6),
  };
}

/**
 * Every 10 s while a size launches, one line: units stored in etcd (submitted), StartUnit calls,
 * states in etcd (published by agents, counted there), the engine's passes and failed transactions,
 * and each process's share of a core over the last interval; shows where a slow launch stalls.
 */
function startProgress(o: {
  start: number;
  endpoint: string;
  etcdPid: number | undefined;
  /** The submit process, when the operator's client has one. */
  clientPid: number | undefined;
  engine: EngineProcess;
  client: Etcd3;
  startedAt: ReadonlyMap<string, number>;
  sessions: readonly MachineSession[];
  losses: LeaseLosses;
}): { stop(): void } {
  let last = { at: performance.now(), etcd: 0, engine: 0, client: 0, bench: process.cpuUsage() };
  let busy = false;
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  const sample = async (): Promise<void> => {
    const now = performance.now();
    // Counted here, with etcd asked at the same moment: under load the answers take seconds, and
    // StartUnit calls counted after them ran ahead of the units counted in etcd.
    const started = o.startedAt.size;
    const [etcdCpu, engineCpu, clientCpu, stored, states, stats, watchers] = await Promise.all([
      cpuSecondsOf(o.etcdPid),
      cpuSecondsOf(o.engine.pid),
      // The submit process may have exited (all sent): its share is then shown as 0.
      o.clientPid === undefined ? 0 : cpuSecondsOf(o.clientPid).catch(() => last.client),
      o.client.getAll().prefix(`${PREFIX}units/`).count(),
      o.client.getAll().prefix(`${PREFIX}state/`).count(),
      o.engine.stats(),
      etcdWatchers(o.endpoint),
    ]);
    const bench = process.cpuUsage();
    const wall = (now - last.at) / 1000;
    const share = (cpu: number): string => `${Math.round((cpu / wall) * 100)}%`;
    if (last.etcd > 0) {
      const benchCpu = (bench.user - last.bench.user + bench.system - last.bench.system) / 1e6;
      const e = stats.engine;
      const leases = leaseFigures(o.sessions);
      const lag = `p99 ${(loopDelay.percentile(99) / 1e6).toFixed(0)} ms, max ${(loopDelay.max / 1e6).toFixed(0)} ms`;
      loopDelay.reset();
      log(
        `  ${((now - o.start) / 1000).toFixed(0).padStart(4)} s: ${stored} stored, ${started} started, ${states} states in etcd; engine ${e.passes} passes, ${e.transactions} txns (${e.failedTransactions} failed), ${e.resyncs} resyncs; API write txn latency ${stats.batcher.writeLatencyMs.toFixed(0)} ms (moving average), held ${(stats.batcher.heldMs / 1000).toFixed(1)} s; etcd watchers ${watchers.watchers} (${watchers.slow} slow), slow applies ${watchers.slowApplies}, keepalive streams ended ${watchers.keepaliveEnds}; agents' watch disconnects ${CountingStore.disconnects}; leases lost ${o.losses.total} (${o.losses.describe()}), unacked > 2 periods ${leases.stale}, oldest ack ${leases.oldestS} s, ${leases.unregistered} unregistered; agents' event-loop delay ${lag}; CPU etcd ${share(etcdCpu - last.etcd)}, engine+API ${share(engineCpu - last.engine)}, machines ${share(benchCpu)}${o.clientPid === undefined ? "" : `, client ${share(clientCpu - last.client)}`}`,
      );
    }
    last = { at: now, etcd: etcdCpu, engine: engineCpu, client: clientCpu, bench };
  };
  const tick = (): void => {
    if (busy) return;
    busy = true;
    sample()
      .catch((err: unknown) => log(`  progress: ${err instanceof Error ? err.message : String(err)}`))
      .finally(() => (busy = false));
  };
  tick();
  const timer = setInterval(tick, 10_000);
  return {
    stop: () => {
      clearInterval(timer);
      loopDelay.disable();
    },
  };
}

/** Machines' lease losses, by what noticed them (keepalive or probe answer, or a write on the lease). */
class LeaseLosses {
  total = 0;
  private readonly by = new Map<string, number>();
  note(err: Error): void {
    this.total++;
    const what = /^Cannot (.*?): lease/.exec(err.message)?.[1] ?? "other";
    this.by.set(what, (this.by.get(what) ?? 0) + 1);
  }
  describe(): string {
    return [...this.by].map(([what, n]) => `${what} ${n}`).join(", ") || "none";
  }
}

/** How long ago etcd last acknowledged each registered machine's lease. */
function leaseFigures(sessions: readonly MachineSession[]): { stale: number; oldestS: string; unregistered: number } {
  const now = Date.now();
  const periodMs = (TTL * 1000) / 3;
  let stale = 0;
  let oldest = 0;
  let unregistered = 0;
  for (const s of sessions) {
    const at = s.lastHeartbeatAt;
    if (at === undefined) {
      unregistered++;
      continue;
    }
    const age = now - at;
    if (age > 2 * periodMs) stale++;
    oldest = Math.max(oldest, age);
  }
  return { stale, oldestS: (oldest / 1000).toFixed(1), unregistered };
}

interface SizeFigures {
  units: number;
  machines: number;
  submit: string;
  submit_seconds: number;
  launch_seconds: number;
  units_per_second: number;
  raw_puts_per_second: number;
  ratio_to_raw_puts: number;
  keys_per_unit: number;
  write_requests_per_unit: number;
  foreign_events_per_agent: number;
  load_latency_p50_ms: number;
  load_latency_p99_ms: number;
  latency_p50_ms: number;
  latency_p99_ms: number;
  engine_rss_mb: number;
  agent_process_rss_mb: number;
  /** null when the process's RSS fell meanwhile (the collector returned more than the machines took: small sizes). */
  agent_rss_kb_per_machine: number | null;
  /** CPU seconds each process used from the first submit to the last unit launched. */
  cpu_seconds: { etcd: number; engine_api: number; agents_and_client: number; agents: number; client: number; observer: number; wall: number };
  /**
   * CPU microseconds per unit launched (all processes, and the simulated machines', client's and
   * observer's share: on a real cluster those run on other hosts) and per raw put (etcd + its client);
   * `by_process`: each process's CPU per unit launched, to compare across sizes where the CPU per unit
   * grows (fleetd's own share should not: its work per unit must not depend on the cluster's size).
   */
  cpu_us: { unit: number; unit_off_host: number; raw_put: number; raw_put_etcd: number; by_process: { etcd: number; engine_api: number; agents: number; client: number; observer: number } };
  /**
   * The highest ratio_to_raw_puts this machine's cores allow at that CPU per unit (cores / CPU per
   * unit / raw puts/s), and the same if the simulated machines, client and observer had cores of their
   * own, as on a real cluster.
   */
  ratio_cpu_bound: { all: number; on_host: number };
  placement?: PlacementFigures;
}

/** --resources: how the units landed (from the agents' own unit managers). */
interface PlacementFigures {
  overcommitted_machines: number;
  zone_skew: number;
  zone_min: number;
  zone_max: number;
  max_dominant_share: number;
  mean_dominant_share: number;
  max_units_on_a_machine: number;
  min_units_on_a_machine: number;
}

function placementFigures(agents: readonly { index: number; manager: TimedManager }[]): PlacementFigures {
  const perZone = new Array<number>(ZONES).fill(0);
  let overcommitted = 0;
  let maxShare = 0;
  let sumShare = 0;
  let maxUnits = 0;
  let minUnits = Number.POSITIVE_INFINITY;
  for (const { index, manager } of agents) {
    const n = manager.running().filter((name) => name.startsWith("bench@")).length;
    const cap = MACHINE_SHAPES[index % MACHINE_SHAPES.length]!;
    const cpus = n * UNIT_NEEDS.cpus;
    const memory = n * UNIT_NEEDS.memory;
    if (cpus > cap.cpus || memory > cap.memory) overcommitted++;
    const share = Math.max(cpus / cap.cpus, memory / cap.memory);
    maxShare = Math.max(maxShare, share);
    sumShare += share;
    maxUnits = Math.max(maxUnits, n);
    minUnits = Math.min(minUnits, n);
    perZone[index % ZONES]! += n;
  }
  const zoneMin = Math.min(...perZone);
  const zoneMax = Math.max(...perZone);
  return {
    overcommitted_machines: overcommitted,
    zone_skew: zoneMax - zoneMin,
    zone_min: zoneMin,
    zone_max: zoneMax,
    max_dominant_share: Number(maxShare.toFixed(3)),
    mean_dominant_share: Number((sumShare / Math.max(1, agents.length)).toFixed(3)),
    max_units_on_a_machine: maxUnits,
    min_units_on_a_machine: Number.isFinite(minUnits) ? minUnits : 0,
  };
}

async function runSize(UNITS: number, MACHINES: number): Promise<SizeFigures> {
  log(`bench:scheduler: ${UNITS} units on ${MACHINES} machines, ${CLIENTS} shared etcd clients, submit ${SUBMIT} (concurrency ${CONCURRENCY})${RESOURCES ? `, resources and spread on (${ZONES} zones)` : ""}`);
  const etcdArgs = [...(await imageEtcdArgs()), ...(process.env.BENCH_ETCD_ARGS ?? "").split(" ").filter(Boolean)];
  const etcd = await startEtcd({ dataDirParent: DATA_DIR, extraArgs: ["--quota-backend-bytes=8589934592", ...etcdArgs] });
  log(`etcd data directory under ${DATA_DIR} (${DATA_DIR.startsWith("/dev/shm") ? "tmpfs: measures fleetd, not this disk's fsync" : "on disk"}); etcd flags as the image sets them: ${etcdArgs.join(" ")}`);
  const dir = await mkdtemp(join(tmpdir(), "bench-scheduler-"));
  const controller = new AbortController();
  // Each simulated machine gets its own controller, aborted with this one: a real fleetd's root signal
  // has a few listeners, and Node's EventTarget walks every listener of a signal on each
  // addEventListener, so 10,000 agents on one shared signal spent 13 % of this process in that walk
  // (every retry, wait and store call adds and removes one). The root holds one listener per machine.
  setMaxListeners(0, controller.signal);
  // The simulated machines' shared clients do not ping (gRPC keepalive): a ping detects a dead network
  // path, and these run on loopback, but 10,000 machines in this one process starve its event loop
  // (p99 lag 7-18 s at 100,000 units on a slow host), and a ping not answered within 6 s dropped the
  // connection, and with it the watches and lease keepalives of a quarter of the machines at once
  // (15,000 watch disconnects; 0 without pings). A real machine runs its own fleetd, which keeps them.
  const clients = Array.from({ length: CLIENTS }, () => createEtcdClient({ endpoints: [etcd.endpoint], requestTimeoutMs: 30_000, keepaliveMs: 0 }));
  const benchClient = createEtcdClient({ endpoints: [etcd.endpoint], requestTimeoutMs: 30_000 });
  const agents: { index: number; store: CountingStore; manager: TimedManager; done: Promise<void> }[] = [];
  const sessions: MachineSession[] = [];
  const losses = new LeaseLosses();
  const startedAt = new Map<string, number>();
  const submittedAt = new Map<string, number>();
  let engine: EngineProcess | undefined;
  let submitter: SubmitProcess | undefined;
  let observer: ObserverProcess | undefined;
  let api: ApiClient | undefined;
  try {
    // 1. Raw etcd puts/s on this machine, now, with the same concurrency as the submit: the median of
    //    3 rounds of 10,000 puts after 1,000 to warm up the client, whatever the size (1,000 cold puts
    //    ran at half the rate; single rounds ranged from 3,000 to 7,700 puts/s, so one round, or the
    //    best of three, swung the ratio by a factor of two).
    const rawN = 10_000;
    await mapLimit(Array.from({ length: 1_000 }, (_, i) => `/raw/warm/${i}`), CONCURRENCY, async (k) => void (await benchClient.put(k).value("x".repeat(200))));
    const rounds: number[] = [];
    const rawCpuBefore = { etcd: await cpuSecondsOf(etcd.pid), client: process.cpuUsage() };
    for (let round = 0; round < 3; round++) {
      const rawStart = performance.now();
      await mapLimit(
        Array.from({ length: rawN }, (_, i) => `/raw/${round}/${i}`),
        CONCURRENCY,
        async (k) => void (await benchClient.put(k).value("x".repeat(200))),
      );
      rounds.push(rawN / ((performance.now() - rawStart) / 1000));
    }
    const rawPutsPerSecond = [...rounds].sort((a, b) => a - b)[1]!;
    const rawClientCpu = process.cpuUsage(rawCpuBefore.client);
    const rawPutCpu = {
      etcd: (((await cpuSecondsOf(etcd.pid)) - rawCpuBefore.etcd) / (3 * rawN)) * 1e6,
      client: (rawClientCpu.user + rawClientCpu.system) / (3 * rawN),
    };
    log(`raw etcd puts: 3 rounds of ${rawN}: ${rounds.map((r) => r.toFixed(0)).join(", ")} puts/s; median ${rawPutsPerSecond.toFixed(0)}`);

    // 2. Machines: each a real agent with its own lease and its own watch.
    const setupStart = performance.now();
    const rssBeforeAgents = process.memoryUsage().rss;
    for (let i = 0; i < MACHINES; i++) {
      const id = `m${String(i).padStart(5, "0")}`;
      const store = new CountingStore(clients[i % CLIENTS]!, `${PREFIX}schedule/${id}/`);
      const shape = RESOURCES ? { metadata: { zone: `z${i % ZONES}` }, capacity: { ...MACHINE_SHAPES[i % MACHINE_SHAPES.length]! } } : { metadata: {} };
      const session = new MachineSession(store, { machine: { id, publicIP: `10.${i >> 8}.${i & 255}.1`, version: "bench", disableEngine: true, ...shape }, ttlSeconds: TTL, keepaliveIntervalMs: (TTL * 1000) / 3 });
      session.onLost((err) => losses.note(err));
      sessions.push(session);
      const manager = new TimedManager(startedAt);
      const agent = new Agent({ session, manager, onEvent: (e) => e.level === "error" && log(`agent ${id}: ${e.message}`) });
      const own = new AbortController();
      controller.signal.addEventListener("abort", () => own.abort(), { once: true });
      agents.push({ index: i, store, manager, done: agent.run(own.signal) });
    }
    const benchStore = new EtcdStore(benchClient, { prefix: PREFIX, requestTimeoutMs: 30_000 });
    const registry = new EtcdRegistry(benchStore, { isRegistered: () => true });
    const deadline = Date.now() + 300_000;
    for (;;) {
      const { kvs } = await benchStore.range("count machines", `${PREFIX}machines/`, { keysOnly: true });
      if (kvs.length >= MACHINES) break;
      if (Date.now() > deadline) throw new Error(`Cannot run the bench: only ${kvs.length} of ${MACHINES} machines registered within 300 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const socketPath = join(dir, "fleet.sock");
    engine = new EngineProcess({ endpoint: etcd.endpoint, socketPath, prefix: PREFIX, graceMs: TTL * 1000 });
    await engine.ready();
    api = new ApiClient({ endpoint: `unix://${socketPath}`, requestTimeoutMs: 120_000, maxSockets: CONCURRENCY });
    log(`setup: ${MACHINES} machines registered, each watching its own schedule; engine+API process leading (${((performance.now() - setupStart) / 1000).toFixed(1)} s)`);
    const idle = await idleShares({ etcdPid: etcd.pid, enginePid: engine.pid, seconds: 5 });
    log(`at rest (${idle.seconds} s, no units moving: keepalives every ${TTL / 3} s, watches open): CPU etcd ${idle.etcd}, engine+API ${idle.engine}, agents ${idle.bench}`);

    // 3. The launch observer, in its own process: a unit counts once its agent published a launched,
    //    active state.
    observer = new ObserverProcess({ endpoint: etcd.endpoint, prefix: PREFIX, fromRevision: Number((await benchClient.get("/").exec()).header.revision) + 1, warmPrefix: WARM_PREFIX });
    await observer.ready();
    const launchedBy = (n: number, what: string, ms: number): Promise<number> => {
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([
        observer!.reached("launched", n).finally(() => clearTimeout(timer)),
        new Promise<number>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} not launched within ${ms / 1000} s`)), ms))),
      ]);
    };

    // 4. Submit, then wait for every unit launched.
    const text = `[Unit]\nDescription=bench unit %i\n\n[Service]\nExecStart=/bin/sleep infinity\n${RESOURCES ? `\n[X-Fleet]\nCPUs=${UNIT_NEEDS.cpus}m\nMemory=${UNIT_NEEDS.memory / 1024 ** 2}M\nSpread=zone\n` : ""}`;
    const options = parseUnitFile(text);
    const names = Array.from({ length: UNITS }, (_, i) => `bench@${i}.service`);
    // Through the API the operator's client runs in a process of its own, loaded before the clock
    // starts. Warm-up, as the raw puts get one: WARM_UNITS units through that client, the same way,
    // before the clock starts, so neither it nor the engine+API process is measured cold (JIT); they
    // stay, and are not counted.
    submitter = SUBMIT.startsWith("api") ? new SubmitProcess({ socketPath, mode: SUBMIT, units: UNITS, concurrency: CONCURRENCY, text }) : undefined;
    if (submitter) {
      await submitter.ready();
      const warm = observer.reached("warm", WARM_UNITS);
      await submitter.warm(WARM_UNITS, WARM_PREFIX);
      await warm;
      await submitter.unwarm(WARM_UNITS, WARM_PREFIX);
      const unwarmDeadline = Date.now() + 120_000;
      for (;;) {
        const running = agents.some((a) => a.manager.running().some((name) => name.startsWith(WARM_PREFIX)));
        if (!running && (await benchStore.range("count warm-up states", `${PREFIX}state/${WARM_PREFIX}`, { keysOnly: true })).kvs.length === 0) break;
        if (Date.now() > unwarmDeadline) throw new Error(`Cannot run the bench: the ${WARM_UNITS} warm-up units were not all stopped within 120 s of their destroy`);
        await new Promise((r) => setTimeout(r, 100));
      }
      log(`warm-up: ${WARM_UNITS} units launched through the API, destroyed, stopped on every machine`);
    }
    const before = await etcdWriteCounters(etcd.endpoint);
    const statsBefore = await engine.stats();
    const allLaunched = launchedBy(UNITS, `${UNITS} units`, TIMEOUT_MS);
    const cpuBefore = { etcd: await cpuSecondsOf(etcd.pid), engine: await cpuSecondsOf(engine.pid), observer: await cpuSecondsOf(observer.pid), bench: process.cpuUsage() };
    const profiler = await startProfile(engine);
    const gc = gcTally();
    const start = performance.now();
    const progress = startProgress({ start, endpoint: etcd.endpoint, etcdPid: etcd.pid, clientPid: submitter?.pid, engine, client: benchClient, startedAt, sessions, losses });
    let clientCpu = 0;
    if (submitter) {
      const sent = await submitter.submit();
      names.forEach((name, i) => submittedAt.set(name, sent.submittedAt[i]!));
      clientCpu = sent.cpuSeconds;
    } else if (SUBMIT === "single") {
      await mapLimit(names, CONCURRENCY, async (name) => {
        submittedAt.set(name, performance.now());
        await registry.createUnit({ name, options, desiredState: "launched" });
      });
    } else {
      const chunks: string[][] = [];
      for (let i = 0; i < names.length; i += 1_000) chunks.push(names.slice(i, i + 1_000));
      await mapLimit(chunks, 4, async (chunk) => {
        for (const name of chunk) submittedAt.set(name, performance.now());
        await registry.createUnits(chunk.map((name) => ({ name, options, desiredState: "launched" as const })));
      });
    }
    const submitted = performance.now();
    const end = await allLaunched;
    progress.stop();
    await profiler?.stop(`bench-scheduler-${UNITS}-${MACHINES}`);
    const gcSeconds = gc.stop();
    const cpuBench = process.cpuUsage(cpuBefore.bench);
    const cpu = {
      etcd: Number(((await cpuSecondsOf(etcd.pid)) - cpuBefore.etcd).toFixed(2)),
      engine_api: Number(((await cpuSecondsOf(engine.pid)) - cpuBefore.engine).toFixed(2)),
      agents_and_client: Number(((cpuBench.user + cpuBench.system) / 1e6 + clientCpu).toFixed(2)),
      observer: Number(((await cpuSecondsOf(observer.pid)) - cpuBefore.observer).toFixed(2)),
      agents: Number(((cpuBench.user + cpuBench.system) / 1e6).toFixed(2)),
      client: Number(clientCpu.toFixed(2)),
      wall: Number(((end - start) / 1000).toFixed(2)),
    };
    await new Promise((r) => setTimeout(r, 500)); // let trailing writes land before reading counters
    const after = await etcdWriteCounters(etcd.endpoint);
    const statsAfter = await engine.stats();
    const placement = RESOURCES ? placementFigures(agents) : undefined;
    const loadLatencies = names.map((n) => startedAt.get(n)! - submittedAt.get(n)!).filter((x) => Number.isFinite(x));

    // 5. Idle latency: probe units one at a time into the idle cluster, PUT → StartUnit.
    const probeLatencies: number[] = [];
    if (SUBMIT.startsWith("api")) {
      for (let i = 0; i < PROBES; i++) {
        const name = `probe@${i}.service`;
        const up = launchedBy(UNITS + i + 1, `probe ${name}`, 30_000);
        const t0 = performance.now();
        submittedAt.set(name, t0);
        await api.createUnit({ name, options, desiredState: "launched" });
        await up;
        probeLatencies.push(startedAt.get(name)! - t0);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const benchRss = process.memoryUsage().rss;

    const launchSeconds = (end - start) / 1000;
    const writesPerUnit = (after.requests - before.requests) / UNITS;
    const keysPerUnit = (after.keys - before.keys) / UNITS;
    const foreign = agents.reduce((a, x) => a + x.store.foreign, 0) / MACHINES;
    const own = agents.reduce((a, x) => a + x.store.own, 0) / MACHINES;
    const running = agents.reduce((a, x) => a + x.manager.running().length, 0);
    const e = statsAfter.engine;
    const b0 = statsBefore.batcher;
    const b = statsAfter.batcher;
    const ratio = UNITS / launchSeconds / rawPutsPerSecond;
    const unitCpu = { all: cpu.etcd + cpu.engine_api + cpu.agents + cpu.client + cpu.observer, onHost: cpu.etcd + cpu.engine_api };
    const figures: SizeFigures = {
      units: UNITS,
      machines: MACHINES,
      submit: SUBMIT,
      submit_seconds: Number(((submitted - start) / 1000).toFixed(3)),
      launch_seconds: Number(launchSeconds.toFixed(3)),
      units_per_second: Math.round(UNITS / launchSeconds),
      raw_puts_per_second: Math.round(rawPutsPerSecond),
      ratio_to_raw_puts: Number(ratio.toFixed(3)),
      keys_per_unit: Number(keysPerUnit.toFixed(3)),
      write_requests_per_unit: Number(writesPerUnit.toFixed(3)),
      foreign_events_per_agent: Number(foreign.toFixed(3)),
      load_latency_p50_ms: Math.round(percentile(loadLatencies, 50)),
      load_latency_p99_ms: Math.round(percentile(loadLatencies, 99)),
      latency_p50_ms: Number(percentile(probeLatencies, 50).toFixed(1)),
      latency_p99_ms: Number(percentile(probeLatencies, 99).toFixed(1)),
      engine_rss_mb: mb(statsAfter.rssBytes),
      agent_process_rss_mb: mb(benchRss),
      agent_rss_kb_per_machine: benchRss > rssBeforeAgents ? Math.round((benchRss - rssBeforeAgents) / 1024 / MACHINES) : null,
      cpu_seconds: cpu,
      cpu_us: {
        unit: Math.round((unitCpu.all / UNITS) * 1e6),
        unit_off_host: Math.round(((unitCpu.all - unitCpu.onHost) / UNITS) * 1e6),
        raw_put: Math.round(rawPutCpu.etcd + rawPutCpu.client),
        raw_put_etcd: Math.round(rawPutCpu.etcd),
        by_process: {
          etcd: Math.round((cpu.etcd / UNITS) * 1e6),
          engine_api: Math.round((cpu.engine_api / UNITS) * 1e6),
          agents: Math.round((cpu.agents / UNITS) * 1e6),
          client: Math.round((cpu.client / UNITS) * 1e6),
          observer: Math.round((cpu.observer / UNITS) * 1e6),
        },
      },
      ratio_cpu_bound: {
        all: Number((os.availableParallelism() / (unitCpu.all / UNITS) / rawPutsPerSecond).toFixed(3)),
        on_host: Number((os.availableParallelism() / (unitCpu.onHost / UNITS) / rawPutsPerSecond).toFixed(3)),
      },
      ...(placement ? { placement } : {}),
    };
    log("");
    log(`submit ${UNITS} units (${SUBMIT}):          ${figures.submit_seconds.toFixed(2)} s`);
    log(`submit → all launched:                 ${launchSeconds.toFixed(2)} s = ${figures.units_per_second} units/s`);
    log(`raw etcd puts/s (same run):            ${figures.raw_puts_per_second}; ratio units/s : puts/s = ${figures.ratio_to_raw_puts}   (target ≥ 0.5)`);
    log(`units running in memory managers:      ${running}`);
    log(`etcd keys written per unit:            ${keysPerUnit.toFixed(3)}`);
    log(`etcd write requests per unit:          ${writesPerUnit.toFixed(3)}   (submit + placement + state)`);
    const perMethod = [...after.byMethod].map(([m, n]) => [m, n - (before.byMethod.get(m) ?? 0)] as const).filter(([, n]) => n > 0);
    log(`etcd requests during the run, per unit: ${perMethod.map(([m, n]) => `${m} ${(n / UNITS).toFixed(3)}`).join(", ")}`);
    if (SUBMIT.startsWith("api")) log(`API batching:                          ${b.writes - b0.writes} writes in ${b.writeTransactions - b0.writeTransactions} txns, ${b.reads - b0.reads} reads in ${b.readTransactions - b0.readTransactions} txns`);
    log(`engine (whole run):                    ${e.transactions} placement txns (${e.failedTransactions} failed), passes ${e.passes}, deciding ${(e.decideMs / 1000).toFixed(2)} s, writing ${(e.writeMs / 1000).toFixed(2)} s`);
    log(`watch events per agent, own / foreign: ${own.toFixed(2)} / ${foreign.toFixed(2)}   (target 0 foreign)`);
    log(`submit → StartUnit under this load:    p50 ${figures.load_latency_p50_ms} ms, p99 ${figures.load_latency_p99_ms} ms`);
    if (SUBMIT.startsWith("api")) log(`submit → StartUnit idle (${PROBES} probes):  p50 ${figures.latency_p50_ms} ms, p99 ${figures.latency_p99_ms} ms   (target < 100 / < 500)`);
    log(`CPU seconds, submit → all launched:    etcd ${cpu.etcd}, engine+API ${cpu.engine_api}, simulated machines ${cpu.agents}, ${submitter ? `HTTP client (own process) ${cpu.client}` : "registry calls (in the machines' process)"}, launch observer ${cpu.observer} (${os.availableParallelism()} cores × ${cpu.wall} s wall)`);
    log(`CPU per unit launched:                 ${figures.cpu_us.unit} µs (${figures.cpu_us.unit_off_host} µs of it simulated machines, client and observer); per raw put ${figures.cpu_us.raw_put} µs (etcd ${figures.cpu_us.raw_put_etcd})`);
    log(`  by process:                          ${describeCpuByProcess(figures.cpu_us.by_process)}`);
    log(`ratio these cores allow at that CPU:   ${figures.ratio_cpu_bound.all} (${os.availableParallelism()} cores / CPU per unit / raw puts/s); ${figures.ratio_cpu_bound.on_host} if the simulated machines, client and observer had cores of their own`);
    log(`GC pauses in the machines' process:    ${gcSeconds.major.toFixed(2)} s major, ${gcSeconds.minor.toFixed(2)} s minor, ${gcSeconds.other.toFixed(2)} s other (of its ${cpu.agents} s CPU)`);
    log(`RSS: engine+API process ${figures.engine_rss_mb} MB; agents' process ${figures.agent_process_rss_mb} MB (${figures.agent_rss_kb_per_machine === null ? "per machine: not measurable at this size" : `${figures.agent_rss_kb_per_machine} KB per simulated machine`})`);
    if (placement) {
      log(`placement (resources + spread):        ${placement.overcommitted_machines} machines overcommitted (target 0); zone skew ${placement.zone_skew} (${placement.zone_min}..${placement.zone_max} per zone, target ≤ 1)`);
      log(`allocation (dominant share):           max ${placement.max_dominant_share}, mean ${placement.mean_dominant_share}; units per machine ${placement.min_units_on_a_machine}..${placement.max_units_on_a_machine}`);
    }
    log(JSON.stringify(figures));
    log("");
    return figures;
  } finally {
    controller.abort();
    submitter?.kill();
    await observer?.stop();
    await Promise.all(agents.map((a) => a.done));
    api?.close();
    await engine?.stop();
    for (const c of [...clients, benchClient]) c.close();
    await etcd.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const sizes: SizeFigures[] = [];
  for (const s of SIZES) sizes.push(await runSize(s.units, s.machines));
  const largest = sizes.reduce((a, x) => (x.units > a.units ? x : a));
  if (sizes.length > 1) {
    // Where the CPU per unit grows with the size, and whose it is.
    log("CPU per unit launched, by size (µs):");
    for (const f of sizes) log(`  ${`${f.units} / ${f.machines}`.padEnd(16)} ${String(f.cpu_us.unit).padStart(5)} = ${describeCpuByProcess(f.cpu_us.by_process)}; ratio ${f.ratio_to_raw_puts}`);
  }
  log(
    JSON.stringify({
      units: largest.units,
      machines: largest.machines,
      submit: largest.submit,
      data_dir: DATA_DIR,
      launch_seconds: largest.launch_seconds,
      ratio_to_raw_puts: largest.ratio_to_raw_puts,
      keys_per_unit: largest.keys_per_unit,
      latency_p50_ms: largest.latency_p50_ms,
      latency_p99_ms: largest.latency_p99_ms,
      engine_rss_mb: largest.engine_rss_mb,
      resources: RESOURCES,
      ...(largest.placement ? { placement: largest.placement } : {}),
      sizes,
    }),
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:scheduler failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
