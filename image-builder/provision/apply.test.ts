import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { applyCloudConfig, clientUrlsFromCluster, etcdEnv, fleetConf, type SystemActions } from "./apply";
import { parseCloudConfig } from "./cloud-config";

let root = "";
let calls: string[] = [];
const actions: SystemActions = {
  setHostname: (h) => { calls.push(`hostname ${h}`); return Promise.resolve(); },
  run: (c, a) => { calls.push([c, ...a].join(" ")); return Promise.resolve(); },
};

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "corefleet-apply-"));
  calls = [];
  await mkdir(path.join(root, "etc"), { recursive: true });
  await mkdir(path.join(root, "home/core"), { recursive: true });
  const uid = process.getuid?.() ?? 0;
  await writeFile(path.join(root, "etc/passwd"), `root:x:0:0::/root:/bin/bash\ncore:x:${uid}:${uid}::/home/core:/bin/bash\n`);
  await writeFile(path.join(root, "etc/hosts"), "127.0.0.1\tlocalhost\n");
});
afterEach(async () => rm(root, { recursive: true, force: true }));

const read = (p: string): Promise<string> => readFile(path.join(root, p), "utf8");

describe("applyCloudConfig", () => {
  it("writes host name, machine ID, keys, files, etcd and fleet settings, network and units", async () => {
    const cc = parseCloudConfig(`#cloud-config
hostname: core-2
machine_id: 00000000000000000000000000000002
ssh_authorized_keys: ["ssh-ed25519 AAAA k1"]
write_files: [{path: /etc/motd, content: "hi\\n", permissions: "0640"}]
coreos:
  etcd: {name: core-2, heartbeat_interval: 500}
  fleet: {metadata: "role=web", public_ip: 10.77.0.12}
  units: [{name: hello.service, content: "[Service]\\nExecStart=/bin/true\\n", command: start, enable: true}]
network: {interfaces: [{match_mac: "52:54:00:00:00:12", address: 10.77.0.12/24, gateway: 10.77.0.1}]}
`);
    const r = await applyCloudConfig(cc, root, actions);
    expect(r.errors).toEqual([]);
    expect(await read("etc/hostname")).toBe("core-2\n");
    expect(await read("etc/hosts")).toBe("127.0.0.1\tlocalhost\n127.0.1.1\tcore-2\n");
    expect(await read("etc/machine-id")).toBe("00000000000000000000000000000002\n");
    expect(await read("home/core/.ssh/authorized_keys")).toBe("ssh-ed25519 AAAA k1\n");
    expect((await stat(path.join(root, "etc/motd"))).mode & 0o777).toBe(0o640);
    expect(await read("etc/corefleet/etcd.env")).toBe("# Written by corefleet-provision from cloud-config coreos.etcd\nETCD_HEARTBEAT_INTERVAL=500\nETCD_NAME=core-2\n");
    expect(await read("etc/fleet/fleet.conf")).toBe('# Written by corefleet-provision from cloud-config coreos.fleet\nmetadata="role=web"\npublic_ip="10.77.0.12"\n');
    expect(await read("etc/systemd/network/10-corefleet-0.network")).toContain("[Match]\nMACAddress=52:54:00:00:00:12\n\n[Network]\nDHCP=no\nLinkLocalAddressing=no\nAddress=10.77.0.12/24\nGateway=10.77.0.1\n");
    expect(await read("etc/systemd/system/hello.service")).toBe("[Service]\nExecStart=/bin/true\n");
    expect(calls).toEqual(["hostname core-2", "systemctl --no-block try-restart systemd-networkd.service", "systemctl daemon-reload", "systemctl enable hello.service", "systemctl --no-block start hello.service"]);
  });

  it("adds the hosts entries after the host name and replaces its own on the next boot", async () => {
    const first = parseCloudConfig("#cloud-config\nhostname: core-1\nhosts: [{address: 10.77.0.11, names: [registry.cluster]}]\n");
    expect((await applyCloudConfig(first, root, actions)).errors).toEqual([]);
    expect(await read("etc/hosts")).toBe("127.0.0.1\tlocalhost\n127.0.1.1\tcore-1\n10.77.0.11\tregistry.cluster\t# cloud-config hosts\n");
    const second = parseCloudConfig("#cloud-config\nhostname: core-1\nhosts: [{address: 10.77.0.12, names: \"registry.cluster,reg\"}]\n");
    await applyCloudConfig(second, root, actions);
    expect(await read("etc/hosts")).toBe("127.0.0.1\tlocalhost\n127.0.1.1\tcore-1\n10.77.0.12\tregistry.cluster reg\t# cloud-config hosts\n");
  });

  it("does not add a key twice when provisioning runs on every boot", async () => {
    const cc = parseCloudConfig('#cloud-config\nssh_authorized_keys: ["ssh-ed25519 AAAA k1"]\n');
    await applyCloudConfig(cc, root, actions);
    await applyCloudConfig(cc, root, actions);
    expect(await read("home/core/.ssh/authorized_keys")).toBe("ssh-ed25519 AAAA k1\n");
  });

  it("collects errors per item and carries on with the rest", async () => {
    const cc = parseCloudConfig("#cloud-config\nusers: [{name: ops, ssh_authorized_keys: [k]}]\nhostname: h1\n");
    const r = await applyCloudConfig(cc, root, actions);
    expect(r.errors).toEqual(['user ops: Cannot add SSH keys for user "ops": the user does not exist']);
    expect(r.done).toContain("host name h1");
    expect(calls).toContain("useradd --create-home --shell /bin/bash --user-group ops");
  });
});

describe("etcd settings", () => {
  it("turns proxy: on into a gRPC proxy to the members' client URLs", () => {
    expect(etcdEnv({ proxy: "on", initial_cluster: "a=http://10.77.0.11:2380,b=http://10.77.0.12:2380" })).toBe(
      "# Written by corefleet-provision from cloud-config coreos.etcd\nCOREFLEET_ETCD_MODE=proxy\nCOREFLEET_ETCD_ENDPOINTS=10.77.0.11:2379,10.77.0.12:2379\n",
    );
    expect(clientUrlsFromCluster("x=https://h:2380")).toBe("h:2379");
    expect(() => etcdEnv({ proxy: "on" })).toThrow('Cannot configure the etcd proxy: coreos.etcd has "proxy: on" but neither "endpoints" nor "initial_cluster"');
  });
});

describe("fleet settings", () => {
  it("writes coreos.fleet as fleet.conf, and turns keepalive pings off on etcd proxy hosts unless set", () => {
    const head = "# Written by corefleet-provision from cloud-config coreos.fleet\n";
    expect(fleetConf({ public_ip: "10.0.0.1", metadata: "a=b" })).toBe(`${head}public_ip="10.0.0.1"\nmetadata="a=b"\n`);
    expect(fleetConf({ public_ip: "10.0.0.1" }, true)).toBe(`${head}public_ip="10.0.0.1"\netcd_keepalive_interval="0"\n`);
    expect(fleetConf({ etcd_keepalive_interval: "300" }, true)).toBe(`${head}etcd_keepalive_interval="300"\n`);
  });
});
