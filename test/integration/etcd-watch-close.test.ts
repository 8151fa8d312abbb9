/**
 * Closing watches while etcd cancels them. After a reconnect the etcd3 client creates its watches
 * again from the revision each had reached; when that revision was compacted, etcd cancels each of
 * them. An owner that reacts to the first watch's error by closing the others (the dashboard feed
 * re-reads the cluster; the engine resyncs) sends cancel requests that race etcd's own cancels, and
 * etcd answers some watches twice. etcd3 1.1.2 threw on the second answer ("Failed to find watcher
 * for IWatchResponse") inside grpc-js, which then delivered nothing more on the stream: the closes
 * waited forever, and so did every later watch of that client (the dashboard feed never sent its new
 * snapshot). Fixed by fleetd/registry/etcd3-watch-fix.ts; without it this test failed 2 runs of 4
 * (40 watches). Real etcd behind a TCP proxy that stalls, then breaks, the connection.
 */
import { describe, expect, it } from "vitest";
import { createEtcdClient, EtcdStore, type WatchHandle } from "../../fleetd/registry/etcd-store";
import { etcdFixture } from "../helpers/fleet-fixture";
import { startTcpProxy } from "../helpers/tcp-proxy";

describe("closing watches etcd cancels after a reconnect (real etcd)", () => {
  const etcd = etcdFixture();

  it("resolves the close of a watch whose re-creation etcd refuses (compacted revision)", async () => {
    const url = new URL(etcd().endpoint);
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    const client = createEtcdClient({ endpoints: [proxy.endpoint], requestTimeoutMs: 2_000 });
    const direct = createEtcdClient({ endpoints: [etcd().endpoint] });
    const store = new EtcdStore(client, { prefix: "/close/" });
    const prefixes = Array.from({ length: 40 }, (_, i) => `/close/p${i}/`);
    const watches: WatchHandle[] = [];
    const errors: string[] = [];
    let closed: Promise<unknown> | undefined;
    try {
      const { revision } = await store.rangeMany("read the revision", [{ prefix: "/close/" }]);
      for (const prefix of prefixes) {
        watches.push(
          await store.watch(prefix, revision + 1, {
            onChanges: () => undefined,
            // The first refused watch makes its owner close every watch, as the dashboard feed does.
            onError: (err) => {
              errors.push(`${prefix}: ${err.message}`);
              closed ??= Promise.all(watches.map((w) => w.close()));
            },
          }),
        );
      }
      // The connection stalls, every prefix changes, etcd compacts, the connection breaks.
      proxy.block();
      for (const prefix of prefixes) await direct.put(`${prefix}k`).value("v");
      const { header } = await direct.kv.range({ key: Buffer.from("/close/") });
      await direct.kv.compact({ revision: header.revision, physical: true });
      proxy.reset();
      proxy.unblock();

      for (let i = 0; i < 200 && !closed; i++) await new Promise((r) => setTimeout(r, 50));
      expect(closed, `no watch reported an error; errors: ${errors.join(" | ")}`).toBeDefined();
      const outcome = await Promise.race([closed!.then(() => "closed"), new Promise((r) => setTimeout(() => r("still closing after 5 s"), 5_000))]);
      expect(outcome, `errors: ${errors.join(" | ")}`).toBe("closed");
    } finally {
      client.close();
      direct.close();
      await proxy.close();
    }
  }, 30_000);
});
