/**
 * The fleetd side of `npm run bench:scheduler`, as its own process (so its CPU and RSS are its own):
 * one real `Engine` and the real HTTP API (`createApiServer` over `EtcdRegistry`) on a unix socket,
 * against the bench's etcd. Simulated agents and the HTTP client live in the bench process.
 *
 * argv: <etcd endpoint> <key prefix> <socket path> <grace ms>. Prints one JSON line `{"ready":true}`
 * once leading and listening; each line on stdin is answered with one JSON line: "stats" (engine and
 * batcher counters, RSS), "profile start", "profile stop <file>" (a CPU profile of this process,
 * written to file). SIGTERM: stops, resigns, exits.
 */
import { createInterface } from "node:readline";
import { createApiServer, registryBackend } from "../fleetd/api";
import { Engine } from "../fleetd/engine/engine";
import { EtcdRegistry } from "../fleetd/registry/etcd-registry";
import { createEtcdClient, EtcdStore } from "../fleetd/registry/etcd-store";
import { startCpuProfile } from "./cpu-profile";

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
  let profile: Awaited<ReturnType<typeof startCpuProfile>> | undefined;
  const answer = async (line: string): Promise<unknown> => {
    if (line === "stats") return { engine: engine.stats, batcher: registry.batcher.stats, rssBytes: process.memoryUsage().rss };
    if (line === "profile start") {
      profile = await startCpuProfile();
      return { profiling: true };
    }
    const stop = /^profile stop (.+)$/.exec(line);
    if (stop && profile) {
      await profile.stop(stop[1]!);
      profile = undefined;
      return { file: stop[1] };
    }
    throw new Error(`unknown request ${JSON.stringify(line)}`);
  };
  lines.on("line", (line) => {
    answer(line.trim()).then(
      (res) => process.stdout.write(`${JSON.stringify(res)}\n`),
      // Answered too, so that the asking side does not wait forever.
      (err: unknown) => process.stdout.write(`${JSON.stringify({ error: (err as Error).message })}\n`),
    );
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
