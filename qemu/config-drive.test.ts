import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { cloudConfig } from "./cloud-config";
import { machineBase, type MachineSpec } from "./cluster-layout";
import { readConfigDrive, writeConfigDrive } from "./config-drive";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function machine(index: number, metadata = ""): MachineSpec {
  return { ...machineBase(index), machineId: index.toString(16).padStart(32, "0"), metadata, sshPort: 40000 + index };
}
const secrets = { apiToken: "t0ken", operatorPublicKey: "ssh-ed25519 AAAAOPERATOR op\n", hostPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n", hostPublicKey: "ssh-ed25519 AAAAHOST host" };

describe("config drive", () => {
  it("is an ISO labelled config-2 whose openstack/latest/user_data reads back byte for byte", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "cfgdrive-test-"));
    dirs.push(dir);
    const machines = [machine(1, "zone=a,role=web"), machine(2), machine(3), machine(4)];
    const text = cloudConfig({ machines, agentTtl: "15s" }, machines[0]!, secrets);
    const iso = path.join(dir, "config-drive.iso");
    await writeConfigDrive(iso, text);
    const back = await readConfigDrive(iso);
    expect(back.label).toBe("config-2");
    expect(back.userData).toBe(text);
  });
});

describe("config drive when xorriso crashes", () => {
  /** A xorriso that dies of `signal` on its first `crashes` runs, then is the real one; counts its runs. */
  async function crashingXorriso(dir: string, crashes: number, how: string): Promise<{ path: string; runs: () => Promise<number> }> {
    const count = path.join(dir, "runs");
    await writeFile(count, "");
    const shim = path.join(dir, "xorriso");
    await writeFile(shim, `#!/bin/sh\necho run >> ${count}\nif [ "$(wc -l < ${count})" -le ${crashes} ]; then ${how}; fi\nexec xorriso "$@"\n`);
    await chmod(shim, 0o755);
    return { path: shim, runs: async () => (await readFile(count, "utf8")).split("\n").filter(Boolean).length };
  }

  it("runs a xorriso killed by SIGSEGV again and writes a drive that reads back", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "cfgdrive-crash-"));
    dirs.push(dir);
    const x = await crashingXorriso(dir, 2, "kill -SEGV $$");
    const iso = path.join(dir, "drive.iso");
    await writeConfigDrive(iso, "#cloud-config\nhostname: a\n", undefined, { xorriso: x.path });
    expect(await x.runs()).toBe(3);
    expect((await readConfigDrive(iso)).userData).toBe("#cloud-config\nhostname: a\n");
  });

  it("gives up after 3 crashes, and at once on an error exit, leaving no drive behind", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "cfgdrive-crash-"));
    dirs.push(dir);
    const always = await crashingXorriso(dir, 99, "kill -SEGV $$");
    const iso = path.join(dir, "drive.iso");
    await expect(writeConfigDrive(iso, "x", undefined, { xorriso: always.path })).rejects.toThrow(/SIGSEGV/);
    expect(await always.runs()).toBe(3);
    const failing = await crashingXorriso(dir, 99, "exit 5");
    await expect(writeConfigDrive(iso, "x", undefined, { xorriso: failing.path })).rejects.toThrow(/code 5/);
    expect(await failing.runs()).toBe(1);
    await expect(readFile(iso)).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("cloudConfig", () => {
  const machines = [machine(1, "zone=a,role=web"), machine(2), machine(3), machine(4)];
  interface Doc {
    hostname: string;
    machine_id: string;
    ssh_authorized_keys: string[];
    write_files: { path: string; permissions: string }[];
    network: { interfaces: unknown[] };
    coreos: { etcd: Record<string, unknown>; fleet: Record<string, unknown>; units: unknown[] };
  }
  const doc = (i: number) => parse(cloudConfig({ machines, agentTtl: "15s" }, machines[i]!, secrets)) as Doc;

  it("starts with #cloud-config and carries hostname, machine ID, key and static address", () => {
    const text = cloudConfig({ machines, agentTtl: "15s" }, machines[0]!, secrets);
    expect(text.startsWith("#cloud-config\n")).toBe(true);
    const d = doc(0);
    expect(d.hostname).toBe("core-1");
    expect(d.machine_id).toBe("00000000000000000000000000000001");
    expect(d.ssh_authorized_keys).toEqual(["ssh-ed25519 AAAAOPERATOR op"]);
    expect(d.network.interfaces).toEqual([{ match_mac: "52:54:00:4d:00:0b", address: "10.77.0.11/24", gateway: "10.77.0.1" }]);
    expect(d.write_files[0]?.path).toBe("/etc/ssh/ssh_host_ed25519_key");
    expect(d.write_files[0]?.permissions).toBe("0600");
  });

  it("names the registry machine registry.cluster on every machine", () => {
    for (const i of [0, 1, 3]) expect((doc(i) as Doc & { hosts: unknown }).hosts).toEqual([{ address: "10.77.0.11", names: ["registry.cluster"] }]);
  });

  it("makes the first three machines etcd members with slow raft timings and the others gRPC proxies", () => {
    expect(doc(0).coreos.etcd).toMatchObject({
      name: "core-1",
      initial_cluster: "core-1=http://10.77.0.11:2380,core-2=http://10.77.0.12:2380,core-3=http://10.77.0.13:2380",
      initial_cluster_state: "new",
      listen_client_urls: "http://127.0.0.1:2379,http://10.77.0.11:2379",
      heartbeat_interval: 500,
      election_timeout: 5000,
    });
    expect(doc(3).coreos.etcd).toMatchObject({ proxy: "on", endpoints: "10.77.0.11:2379,10.77.0.12:2379,10.77.0.13:2379" });
    expect(doc(3).coreos.etcd.name).toBeUndefined();
  });

  it("gives fleet the public IP, agent TTL, loss grace and metadata only where set", () => {
    const api = { machine_loss_grace: "15s", api_tcp_listen: "127.0.0.1:49153", api_token: "t0ken" };
    expect(doc(0).coreos.fleet).toEqual({ public_ip: "10.77.0.11", agent_ttl: "15s", ...api, metadata: "zone=a,role=web" });
    expect(doc(1).coreos.fleet).toEqual({ public_ip: "10.77.0.12", agent_ttl: "15s", ...api });
  });
});
