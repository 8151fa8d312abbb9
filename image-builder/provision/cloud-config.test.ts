import { describe, expect, it } from "vitest";
import { parseCloudConfig } from "./cloud-config";

const full = `#cloud-config
hostname: core-1
machine_id: 0123456789abcdef0123456789abcdef
ssh_authorized_keys: ["ssh-ed25519 AAAA one"]
users:
  - name: ops
    groups: sudo, adm
    sudo: "ALL=(ALL) NOPASSWD:ALL"
    ssh_authorized_keys: ["ssh-ed25519 AAAA two"]
write_files:
  - path: /etc/motd
    content: aGVsbG8K
    encoding: b64
    permissions: "0600"
coreos:
  etcd:
    name: core-1
    initial_cluster: core-1=http://10.77.0.11:2380,core-2=http://10.77.0.12:2380
    heartbeat_interval: 500
  fleet:
    public_ip: 10.77.0.11
    metadata: role=web,zone=a
  units:
    - name: hello.service
      content: "[Service]\\nExecStart=/bin/true\\n"
      command: start
network:
  interfaces:
    - match_mac: "52:54:00:00:00:11"
      address: 10.77.0.11/24
      gateway: 10.77.0.1
`;

describe("parseCloudConfig", () => {
  it("parses every supported key", () => {
    const cc = parseCloudConfig(full);
    expect(cc.hostname).toBe("core-1");
    expect(cc.machineId).toBe("0123456789abcdef0123456789abcdef");
    expect(cc.sshAuthorizedKeys).toEqual(["ssh-ed25519 AAAA one"]);
    expect(cc.users).toEqual([{ name: "ops", groups: ["sudo", "adm"], sshAuthorizedKeys: ["ssh-ed25519 AAAA two"], sudo: true }]);
    expect(cc.writeFiles[0]?.content.toString()).toBe("hello\n");
    expect(cc.writeFiles[0]?.permissions).toBe(0o600);
    expect(cc.etcd).toEqual({ name: "core-1", initial_cluster: "core-1=http://10.77.0.11:2380,core-2=http://10.77.0.12:2380", heartbeat_interval: "500" });
    expect(cc.fleet).toEqual({ public_ip: "10.77.0.11", metadata: "role=web,zone=a" });
    expect(cc.units).toEqual([{ name: "hello.service", content: "[Service]\nExecStart=/bin/true\n", command: "start", enable: false, runtime: false, dropIns: [] }]);
    expect(cc.network?.interfaces).toEqual([{ matchMac: "52:54:00:00:00:11", addresses: ["10.77.0.11/24"], gateway: "10.77.0.1", dns: [] }]);
    expect(cc.warnings).toEqual([]);
  });

  it("accepts an empty document and warns about unknown keys", () => {
    expect(parseCloudConfig("#cloud-config\n").units).toEqual([]);
    expect(parseCloudConfig("#cloud-config\npackages: [vim]\n").warnings).toEqual(['unknown key "packages" ignored']);
  });

  it("rejects documents that are not cloud-config or not valid, naming the key", () => {
    expect(() => parseCloudConfig("#!/bin/sh\necho hi\n")).toThrow('its first line is "#!/bin/sh", not "#cloud-config"');
    expect(() => parseCloudConfig("#cloud-config\nhostname: [a\n")).toThrow(/^Cannot parse the cloud-config: .*; fix the YAML$/);
    expect(() => parseCloudConfig("#cloud-config\nmachine_id: xyz\n")).toThrow('Invalid cloud-config: "machine_id" must be 32 lowercase hex digits, got "xyz"');
    expect(() => parseCloudConfig("#cloud-config\ncoreos:\n  units:\n    - name: bad\n")).toThrow('"coreos.units[0].name" must be a unit name such as hello.service, got "bad"');
    expect(() => parseCloudConfig("#cloud-config\nnetwork:\n  interfaces:\n    - address: 10.0.0.1/24\n")).toThrow('"network.interfaces[0]" needs match_mac or match_name');
    expect(() => parseCloudConfig("#cloud-config\nwrite_files:\n  - path: etc/x\n")).toThrow('"write_files[0].path" must be an absolute path without .., got "etc/x"');
    expect(() => parseCloudConfig("#cloud-config\nhosts: [{address: registry, names: [r]}]\n")).toThrow('"hosts[0].address" must be an IPv4 or IPv6 address, got "registry"');
    expect(() => parseCloudConfig("#cloud-config\nhosts: [{address: 10.0.0.1}]\n")).toThrow('"hosts[0].names" must name at least one host');
    expect(() => parseCloudConfig("#cloud-config\nhosts: [{address: 10.0.0.1, names: [\"a b\"]}]\n")).toThrow('"hosts[0].names" must be valid host names, got "a b"');
    expect(parseCloudConfig("#cloud-config\nhosts: [{address: 10.0.0.1, names: [registry.cluster]}]\n").hosts).toEqual([{ address: "10.0.0.1", names: ["registry.cluster"] }]);
  });
});
