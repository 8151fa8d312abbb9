import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEtcd, type EtcdInstance } from "../helpers/etcd";

describe("etcd test harness", () => {
  let etcd: EtcdInstance;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd.cleanup();
  });

  it("serves a real etcd on loopback that keeps data across a restart", async () => {
    expect(etcd.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(etcd.pid).toBeGreaterThan(0);
    const client = new Etcd3({ hosts: etcd.endpoint });
    try {
      await client.put("harness/key").value("v1");
      await etcd.restart();
      expect(await client.get("harness/key").string()).toBe("v1");
    } finally {
      client.close();
    }
  });

  it("stop makes the endpoint unreachable until start", async () => {
    await etcd.stop();
    expect(etcd.pid).toBeUndefined();
    const down = await fetch(`${etcd.endpoint}/health`).then(
      () => "up",
      () => "down",
    );
    expect(down).toBe("down");
    await etcd.start();
    const res = await fetch(`${etcd.endpoint}/health`);
    expect(res.ok).toBe(true);
  });
});
