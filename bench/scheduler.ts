/**
 * `npm run bench:scheduler`: one real etcd on loopback, one real engine, and N simulated machines in
 * this process, each a real `Agent` + `MachineSession` (own lease, own watch on its own schedule
 * prefix; a few etcd3 clients are shared, which multiplex watches over one gRPC stream each) with an
 * in-memory unit manager. Submits units through the API's registry code and measures:
 *   - time from the first submit to every unit reported launched (states watched in etcd),
 *   - etcd write requests (Put/Txn/DeleteRange, from etcd's own metrics) per unit, and keys written,
 *   - watch events each agent received for other machines' units,
 *   - raw etcd puts/s measured in the same run, for a ratio.
 * Flags: --units N (10000) --machines M (1000) --clients C (4) --concurrency K (64) --ttl S (30)
 * --data-dir DIR (/dev/shm: etcd's data on tmpfs, so the figures are about fleetd, not disk fsync)
 * --submit batch|single (batch: create-only transactions of up to 127 units; single: one per unit).
 * The last line is one JSON object.
 */
import { setMaxListeners } from "node:events";
import { parseArgs } from "node:util";
import type { Etcd3 } from "etcd3";
import { Agent } from "../fleetd/agent/agent";
import { MemoryUnitManager } from "../fleetd/agent/memory-unit-manager";
import { Engine } from "../fleetd/engine/engine";
import { EtcdRegistry } from "../fleetd/registry/etcd-registry";
import { createEtcdClient, EtcdStore, type WatchHandle } from "../fleetd/registry/etcd-store";
import { parseRecord, type StateRecord } from "../fleetd/registry/keys";
import { MachineSession } from "../fleetd/registry/machine-session";
import { parseUnitFile } from "../lib/unit";
import { startEtcd } from "../test/helpers/etcd";

const { values } = parseArgs({
  options: {
    units: { type: "string", default: "10000" },
    machines: { type: "string", default: "1000" },
    clients: { type: "string", default: "4" },
    concurrency: { type: "string", default: "64" },
    ttl: { type: "string", default: "30" },
    "data-dir": { type: "string", default: "/dev/shm" },
    submit: { type: "string", default: "batch" },
  },
});
const UNITS = Number(values.units);
const MACHINES = Number(values.machines);
const CLIENTS = Number(values.clients);
const CONCURRENCY = Number(values.concurrency);
const TTL = Number(values.ttl);
const PREFIX = "/bench/";

/** An EtcdStore that counts watch events whose key is outside the prefix the owner watches for itself. */
class CountingStore extends EtcdStore {
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

/** Sums etcd's gRPC request counters for write methods, and mvcc key writes. */
async function etcdWriteCounters(endpoint: string): Promise<{ requests: number; keys: number }> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  let requests = 0;
  let keys = 0;
  for (const line of text.split("\n")) {
    const m = /^grpc_server_started_total\{[^}]*grpc_method="(Put|Txn|DeleteRange)"[^}]*\} (\S+)/.exec(line);
    if (m) requests += Number(m[2]);
    const k = /^etcd_mvcc_(put|delete)_total (\S+)/.exec(line);
    if (k) keys += Number(k[2]);
  }
  return { requests, keys };
}

async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<void> {
  log(`bench:scheduler: ${UNITS} units on ${MACHINES} machines, ${CLIENTS} shared etcd clients, submit ${values.submit} (concurrency ${CONCURRENCY})`);
  const etcd = await startEtcd({ dataDirParent: values["data-dir"], extraArgs: ["--quota-backend-bytes=4294967296"] });
  log(`etcd data directory under ${values["data-dir"]} (--data-dir to change; /dev/shm measures fleetd, not this disk's fsync)`);
  const controller = new AbortController();
  // 1,000 agents wait on this one signal; that many listeners is the design, not a leak.
  setMaxListeners(0, controller.signal);
  const clients = Array.from({ length: CLIENTS }, () => createEtcdClient({ endpoints: [etcd.endpoint], requestTimeoutMs: 30_000 }));
  const engineClient = createEtcdClient({ endpoints: [etcd.endpoint], requestTimeoutMs: 30_000 });
  const apiClient = createEtcdClient({ endpoints: [etcd.endpoint], requestTimeoutMs: 30_000 });
  const agents: { agent: Agent; store: CountingStore; manager: MemoryUnitManager; done: Promise<void> }[] = [];
  let engine: Engine | undefined;
  let engineDone: Promise<void> = Promise.resolve();
  try {
    // 1. Raw etcd puts/s on this machine, now, with the same concurrency as the submit.
    const rawN = Math.min(UNITS, 10_000);
    const rawKeys = Array.from({ length: rawN }, (_, i) => `/raw/${i}`);
    const rawStart = performance.now();
    await pool(rawKeys, CONCURRENCY, async (k) => {
      await apiClient.put(k).value("x".repeat(200));
    });
    const rawPutsPerSecond = rawN / ((performance.now() - rawStart) / 1000);
    log(`raw etcd puts: ${rawN} in ${((performance.now() - rawStart) / 1000).toFixed(2)} s = ${rawPutsPerSecond.toFixed(0)} puts/s`);

    // 2. Machines: each a real agent with its own lease and its own watch.
    const setupStart = performance.now();
    for (let i = 0; i < MACHINES; i++) {
      const id = `m${String(i).padStart(5, "0")}`;
      const store = new CountingStore(clients[i % CLIENTS]!, `${PREFIX}schedule/${id}/`);
      const session = new MachineSession(store, { machine: { id, publicIP: `10.${i >> 8}.${i & 255}.1`, metadata: {}, version: "bench", disableEngine: true }, ttlSeconds: TTL });
      const manager = new MemoryUnitManager();
      const agent = new Agent({ session, manager, onEvent: (e) => e.level === "error" && log(`agent ${id}: ${e.message}`) });
      agents.push({ agent, store, manager, done: agent.run(controller.signal) });
    }
    const registry = new EtcdRegistry(new EtcdStore(apiClient, { prefix: PREFIX, requestTimeoutMs: 30_000 }), { isRegistered: () => true });
    const deadline = Date.now() + 120_000;
    while ((await registry.listMachines()).length < MACHINES) {
      if (Date.now() > deadline) throw new Error(`Cannot run the bench: only ${(await registry.listMachines()).length} of ${MACHINES} machines registered within 120 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
    engine = new Engine({
      store: new EtcdStore(engineClient, { prefix: PREFIX, requestTimeoutMs: 30_000 }),
      machineId: "engine",
      leaderTtlSeconds: 10,
      graceMs: TTL * 1000,
      resyncIntervalMs: 10 * 60_000,
      debounceMs: 20,
      onEvent: (e) => (e.level === "warn" || e.level === "error") && log(`engine: ${e.message}`),
    });
    engineDone = engine.run(controller.signal);
    while (!engine.isLeader) await new Promise((r) => setTimeout(r, 50));
    log(`setup: ${MACHINES} machines registered, each watching its own schedule; engine leading (${((performance.now() - setupStart) / 1000).toFixed(1)} s)`);

    // 3. Watch states: a unit counts once a state with launched=true is published for it.
    const launched = new Set<string>();
    const placed = new Set<string>();
    let allPlacedAt = 0;
    let firstLaunchAt = 0;
    const placementWatch = await new EtcdStore(apiClient, { prefix: PREFIX }).watch(`${PREFIX}placement/`, Number((await apiClient.get("/").exec()).header.revision) + 1, {
      onChanges: (changes) => {
        for (const c of changes) if (c.type === "put") placed.add(c.key);
        if (placed.size >= UNITS && !allPlacedAt) allPlacedAt = performance.now();
      },
      onError: (err) => log(`placement watch: ${err.message}`),
    });
    let allLaunched!: () => void;
    const allDone = new Promise<void>((r) => (allLaunched = r));
    const stateWatch = await new EtcdStore(apiClient, { prefix: PREFIX }).watch(`${PREFIX}state/`, (await apiClient.get("/").exec()).header.revision ? Number((await apiClient.get("/").exec()).header.revision) + 1 : 1, {
      onChanges: (changes) => {
        for (const c of changes) {
          if (c.type !== "put") continue;
          const s = parseRecord<StateRecord>(c.key, c.value);
          if (s.launched && s.activeState === "active") launched.add(c.key.slice(`${PREFIX}state/`.length).split("/")[0]!);
          if (!firstLaunchAt && launched.size > 0) firstLaunchAt = performance.now();
        }
        if (launched.size >= UNITS) allLaunched();
      },
      onError: (err) => log(`state watch: ${err.message}`),
    });

    // 4. Submit through the API's code path (create-only, desired state launched), then wait.
    const options = parseUnitFile("[Unit]\nDescription=bench unit %i\n\n[Service]\nExecStart=/bin/sleep infinity\n");
    const names = Array.from({ length: UNITS }, (_, i) => `bench@${i}.service`);
    const before = await etcdWriteCounters(etcd.endpoint);
    const start = performance.now();
    if (values.submit === "single") {
      // One create-only request per unit, as N HTTP PUTs would do.
      await pool(names, CONCURRENCY, async (name) => {
        await registry.createUnit({ name, options, desiredState: "launched" });
      });
    } else {
      // Bulk create-only transactions (up to the op limit each), a few in flight.
      const chunks: string[][] = [];
      for (let i = 0; i < names.length; i += 1_000) chunks.push(names.slice(i, i + 1_000));
      await pool(chunks, 4, async (chunk) => {
        await registry.createUnits(chunk.map((name) => ({ name, options, desiredState: "launched" as const })));
      });
    }
    const submitted = performance.now();
    await Promise.race([allDone, new Promise((_, reject) => setTimeout(() => reject(new Error(`only ${launched.size} of ${UNITS} units launched within 120 s`)), 120_000))]);
    const end = performance.now();
    await new Promise((r) => setTimeout(r, 300)); // let trailing writes land before reading counters
    const after = await etcdWriteCounters(etcd.endpoint);
    await stateWatch.close();
    await placementWatch.close();

    const launchSeconds = (end - start) / 1000;
    const writesPerUnit = (after.requests - before.requests) / UNITS;
    const keysPerUnit = (after.keys - before.keys) / UNITS;
    const foreign = agents.reduce((a, x) => a + x.store.foreign, 0) / MACHINES;
    const own = agents.reduce((a, x) => a + x.store.own, 0) / MACHINES;
    const running = agents.reduce((a, x) => a + x.manager.running().length, 0);
    log("");
    log(`submit ${UNITS} units:                   ${((submitted - start) / 1000).toFixed(2)} s`);
    log(`submit → all placed (engine):          ${((allPlacedAt - start) / 1000).toFixed(2)} s; first unit launched after ${((firstLaunchAt - start) / 1000).toFixed(2)} s`);
    log(`submit → all launched:                 ${launchSeconds.toFixed(2)} s   (target < 10 s)`);
    log(`units running in memory managers:      ${running}`);
    log(`etcd write requests per unit:          ${writesPerUnit.toFixed(3)}   (submit + placement + state; target ≤ 3)`);
    log(`etcd keys written per unit:            ${keysPerUnit.toFixed(3)}`);
    log(`engine placement transactions:         ${engine.stats.transactions} (${engine.stats.failedTransactions} failed), passes ${engine.stats.passes}, deciding ${(engine.stats.decideMs / 1000).toFixed(2)} s, writing ${(engine.stats.writeMs / 1000).toFixed(2)} s`);
    log(`watch events per agent, own / foreign: ${own.toFixed(2)} / ${foreign.toFixed(2)}   (target 0 foreign)`);
    log(`raw etcd puts/s:                       ${rawPutsPerSecond.toFixed(0)}; fleet units launched/s: ${(UNITS / launchSeconds).toFixed(0)} (ratio ${(UNITS / launchSeconds / rawPutsPerSecond).toFixed(3)})`);
    log(
      JSON.stringify({
        units: UNITS,
        machines: MACHINES,
        launch_seconds: Number(launchSeconds.toFixed(3)),
        etcd_writes_per_unit: Number(writesPerUnit.toFixed(3)),
        foreign_events_per_agent: Number(foreign.toFixed(3)),
        raw_puts_per_second: Math.round(rawPutsPerSecond),
      }),
    );
  } finally {
    controller.abort();
    await Promise.all(agents.map((a) => a.done));
    await engineDone;
    await engine?.resign();
    for (const c of [...clients, engineClient, apiClient]) c.close();
    await etcd.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:scheduler failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
