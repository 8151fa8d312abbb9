/**
 * The fleetd side of `npm run bench:scheduler`, as its own process (so its CPU and RSS are its own):
 * one real `Engine` and the real HTTP API (`createApiServer` over `EtcdRegistry`) on a unix socket,
 * against the bench's etcd. Simulated agents and the HTTP client live in the bench process.
 *
 * argv: <etcd endpoint> <key prefix> <socket path> <grace ms>. Prints one JSON line `{"ready":true}`
 * once leading and listening; each line "stats" on stdin is answered with one JSON line (engine and
 * batcher counters, RSS). SIGTERM: stops, resigns, exits.
 */
import { createInterface } from "node:readline";
import { createApiServer, registryBackend } from "../fleetd/api";
import { Engine } from "../fleetd/engine/engine";
import { EtcdRegistry } from "../fleetd/registry/etcd-registry";
import { createEtcdClient, EtcdStore } from "../fleetd/registry/etcd-store";

async function main(): Promise<void> {
  const [endpoint, prefix, socketPath, grace] = process.argv.slice(2);
  if (!endpoint || !prefix || !socketPath || !grace) throw new Error("usage: engine-process.ts <etcd endpoint> <prefix> <socket> <grace ms>");
  const controller = new AbortController();
  const engineClient = createEtcdClient({ endpoints: [endpoint], requestTimeoutMs: 30_000 });
  const apiClient = createEtcdClient({ endpoints: [endpoint], requestTimeoutMs: 30_000 });
  const engine = new Engine({
    store: new EtcdStore(engineClient, { prefix, requestTimeoutMs: 30_000 }),
    machineId: "engine",
    leaderTtlSeconds: 10,
    graceMs: Number(grace),
    resyncIntervalMs: 10 * 60_000,
    onEvent: (e) => (e.level === "warn" || e.level === "error") && process.stderr.write(`engine: ${e.message}\n`),
  });
  const done = engine.run(controller.signal);
  const registry = new EtcdRegistry(new EtcdStore(apiClient, { prefix, requestTimeoutMs: 30_000 }), { isRegistered: () => true });
  const api = createApiServer({ backend: registryBackend(registry), version: "bench", onError: (err) => process.stderr.write(`api: ${(err as Error).message}\n`) });
  await api.listen({ kind: "unix", path: socketPath });
  while (!engine.isLeader) await new Promise((r) => setTimeout(r, 50));
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    if (line.trim() !== "stats") return;
    process.stdout.write(`${JSON.stringify({ engine: engine.stats, batcher: registry.batcher.stats, rssBytes: process.memoryUsage().rss })}\n`);
  });
  const stop = async (): Promise<void> => {
    lines.close();
    controller.abort();
    await api.close();
    await done;
    await engine.resign();
    engineClient.close();
    apiClient.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  lines.on("close", () => void stop());
}

main().catch((err: unknown) => {
  process.stderr.write(`bench engine process failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
