/**
 * A watch that receives a burst while its process is busy must not fall behind in etcd. etcd 3.4
 * sends a watch's events over one gRPC stream; when the client's HTTP/2 flow-control window is full,
 * etcd's send loop stalls, the watcher becomes "slow" and etcd later re-reads its events from its
 * backend (at 100,000 units on 10,000 machines that was half of etcd's CPU). grpc-js keeps HTTP/2's
 * 64 KiB window unless told; our clients open it to `ETCD_FLOW_CONTROL_WINDOW`. Real etcd; the writer
 * runs in a process of its own (./etcd-watch-burst-fixture.ts) while this one is held busy in 150 ms
 * slices, as a loaded fleetd is.
 */
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { createEtcdClient, EtcdStore } from "../../fleetd/registry/etcd-store";
import { etcdFixture } from "../helpers/fleet-fixture";

const FIXTURE = new URL("./etcd-watch-burst-fixture.ts", import.meta.url).pathname;
const COUNT = 6_000;

/** Blocks this thread for `ms`, as CPU-bound work would. */
function hold(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe("a watch receiving a burst while its process is busy (real etcd)", () => {
  const etcd = etcdFixture();

  it("gets every event without etcd marking it slow", async () => {
    const client = createEtcdClient({ endpoints: [etcd().endpoint] });
    const store = new EtcdStore(client, { prefix: "/burst/" });
    let received = 0;
    const { revision } = await store.rangeMany("read the revision", [{ prefix: "/burst/none/" }]);
    const watch = await store.watch("/burst/k/", revision + 1, { onChanges: (changes) => (received += changes.length), onError: () => undefined });
    try {
      const writer = spawn(process.execPath, ["--import", "tsx", FIXTURE, etcd().endpoint, "/burst/k/", String(COUNT), "400", "3000"], { stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      writer.stdout.on("data", (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => writer.once("exit", resolve));
      let done = false;
      void exited.then(() => (done = true));
      // Busy in 150 ms slices, the event loop turning once between them.
      while (!done) {
        hold(150);
        await new Promise((r) => setImmediate(r));
      }
      expect(await exited).toBe(0);
      const { maxSlowWatchers } = JSON.parse(out) as { maxSlowWatchers: number };
      for (let i = 0; i < 100 && received < COUNT; i++) await new Promise((r) => setTimeout(r, 50));
      expect(received).toBe(COUNT);
      expect(maxSlowWatchers).toBe(0);
    } finally {
      await watch.close();
      client.close();
    }
  }, 60_000);
});
