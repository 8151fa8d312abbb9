/**
 * Writer of etcd-watch-burst.test.ts, in its own process so that it keeps writing while the test's
 * event loop is held busy: puts `count` keys of `bytes` bytes under `prefix` at `perSecond`, then
 * keeps sampling etcd's slow-watcher gauge for 1 s more, and prints `{"maxSlowWatchers":N}`.
 *
 * argv: <endpoint> <prefix> <count> <bytes> <perSecond>
 */
import { createEtcdClient } from "../../fleetd/registry/etcd-store";
import { etcdMetrics } from "../helpers/etcd";

async function slowWatchers(endpoint: string): Promise<number> {
  return (await etcdMetrics(endpoint)).gauge("etcd_debugging_mvcc_slow_watcher_total");
}

async function main(): Promise<void> {
  const [endpoint, prefix, count, bytes, perSecond] = process.argv.slice(2);
  if (!endpoint || !prefix || !count || !bytes || !perSecond) throw new Error("usage: etcd-watch-burst-fixture.ts <endpoint> <prefix> <count> <bytes> <perSecond>");
  const client = createEtcdClient({ endpoints: [endpoint] });
  let max = 0;
  let writing = true;
  const sampler = (async () => {
    while (writing) {
      max = Math.max(max, await slowWatchers(endpoint));
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const end = Date.now() + 1_000; Date.now() < end; ) {
      max = Math.max(max, await slowWatchers(endpoint));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const value = "x".repeat(Number(bytes));
  const start = Date.now();
  const inFlight = new Set<Promise<unknown>>();
  for (let i = 0; i < Number(count); i++) {
    const due = start + (i * 1000) / Number(perSecond);
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    const p = client.put(`${prefix}${i}`).value(value).exec().finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= 64) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  writing = false;
  await sampler;
  client.close();
  process.stdout.write(`${JSON.stringify({ maxSlowWatchers: max })}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
