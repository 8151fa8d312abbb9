/**
 * fleetd/registry/connection-resets.ts against a real etcd: a failed call closes only the gRPC client
 * it used, and the streams that die with that client do not close the clients opened after it (etcd3's
 * own reset closed every client of the host on each of those errors: a storm under load).
 */
import { describe, expect, it } from "vitest";
import { delay } from "../../lib/async/delay";
import { createEtcdClient } from "../../fleetd/registry/etcd-store";
import { etcdFixture } from "../helpers/fleet-fixture";
import { waitFor } from "../helpers/fleet-cluster";

describe("etcd connection resets scoped to what failed (real etcd)", () => {
  const etcd = etcdFixture();

  it("a failed lease call leaves the watch alone, and its dying streams leave the new lease client alone", async () => {
    const client = createEtcdClient({ endpoints: [etcd().endpoint], requestTimeoutMs: 5_000 });
    try {
      const seen: string[] = [];
      let disconnects = 0;
      const watcher = await client.watch().prefix("resets/").create();
      watcher.on("disconnected", () => disconnects++);
      watcher.on("put", (kv) => seen.push(kv.key.toString()));
      const errorsOf = async (): Promise<{ errors: Error[] }> => {
        const stream = await client.leaseClient.leaseKeepAlive();
        const errors: Error[] = [];
        stream.on("error", (e: Error) => errors.push(e));
        return { errors };
      };
      const old = await errorsOf();

      // A recoverable failure of the Lease service: a call past its deadline while etcd is stopped.
      etcd().pause();
      try {
        await expect(client.leaseClient.leaseGrant({ TTL: "10" }, { deadline: Date.now() + 300 })).rejects.toThrow(/deadline/i);
      } finally {
        etcd().resume();
      }
      const fresh = await errorsOf();

      // The old Lease channel was closed: its stream dies at its next keepalive ping (6 s). Before the
      // fix that death reset the host again, closing the fresh client (its stream dying 6 s later) and
      // the Watch client with it.
      await waitFor("the old lease stream to die with its closed channel", () => old.errors.length > 0, { timeoutMs: 15_000 });
      await delay(8_000);
      expect(fresh.errors.map((e) => e.message)).toEqual([]);
      expect(disconnects).toBe(0);
      await client.put("resets/after").value("1");
      await waitFor("the watch to see a put after the failure", () => seen.includes("resets/after"), { timeoutMs: 5_000 });
    } finally {
      client.close();
    }
  }, 40_000);

  it("a client still closes every channel it opened", async () => {
    const client = createEtcdClient({ endpoints: [etcd().endpoint] });
    await client.put("resets/k").value("v");
    const watcher = await client.watch().key("resets/k").create();
    client.close();
    await expect(client.get("resets/k").string()).rejects.toThrow(/closed/i);
    await watcher.cancel().catch(() => undefined);
  });
});
