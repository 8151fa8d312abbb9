import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../lib/process/run";
import { startEtcd, type EtcdInstance } from "../test/helpers/etcd";
import { etcdHealthProbe, registeredProbe } from "./machine-wait";

// The probes run in the guests' bash; here the same bash talks to a real etcd on loopback.
let etcd: EtcdInstance;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd.cleanup();
});

const bash = (script: string) => run("bash", ["-c", script], { timeoutMs: 10_000 });

describe("boot probes over bash /dev/tcp", () => {
  it("reads etcd's /health", async () => {
    expect((await bash(etcdHealthProbe(etcd.clientPort))).stdout).toMatch(/"health"\s*:\s*"true"/);
  });

  it("sees fleetd's presence key only once it exists", async () => {
    const id = "0123456789abcdef0123456789abcdef";
    expect((await bash(registeredProbe(id, { port: etcd.clientPort }))).stdout).not.toMatch(/"count"\s*:\s*"1"/);
    await run("etcdctl", [`--endpoints=${etcd.endpoint}`, "put", `/fleet/machines/${id}`, "{}"], { env: { ...process.env, ETCDCTL_API: "3" } });
    expect((await bash(registeredProbe(id, { port: etcd.clientPort }))).stdout).toMatch(/"count"\s*:\s*"1"/);
    expect((await bash(registeredProbe(id, { port: etcd.clientPort, prefix: "/other/" }))).stdout).not.toMatch(/"count"\s*:\s*"1"/);
  });
});
