/**
 * The CoreOS cloud-config a machine of a qemu cluster boots with (docs/CONTRACTS.md,
 * image-builder/CLOUD-CONFIG.md): hostname, machine ID, the operator's key, the cluster's SSH host key
 * (so known_hosts is written before the first connection and checking stays strict), static address,
 * etcd membership, fleet options and the registry's stable name (an /etc/hosts entry). Pure: spec in, YAML text out.
 */
import { stringify } from "yaml";
import { BRIDGE_ADDRESS, type ClusterSpec, type MachineSpec } from "./cluster-layout";
import { REGISTRY_NAME, registryMachine } from "./cluster-registry";

/** Keys shared by every machine of one cluster. */
export interface ClusterSecrets {
  /** `ssh-ed25519 AAAA... comment`, authorised for the `core` user. */
  operatorPublicKey: string;
  /** OpenSSH private host key installed as /etc/ssh/ssh_host_ed25519_key on every machine. */
  hostPrivateKey: string;
  hostPublicKey: string;
  /** Bearer token of fleetd's loopback TCP API (see {@link FLEET_API_PORT}). */
  apiToken: string;
}

/**
 * How long the engine keeps a machine's units after its lease expired (fleetd's machine_loss_grace).
 * A host cut off from etcd for less than agent TTL + this keeps its units; a powered-off host's units
 * move after about agent TTL + this. Measured in the e2e suite (TTL 30 s): a host re-registers 2.4 s
 * after its etcd comes back, and with a 10 s grace a powered-off host's units ran elsewhere after
 * 46.6-47.4 s (20 s: 56.7-69.9 s). 15 s keeps a margin of ~8 s for a slower rejoin in a busy guest.
 */
export const MACHINE_LOSS_GRACE_S = 15;

/**
 * fleetd's extra API listener on each machine's loopback. fleetctl --tunnel reaches it through an SSH
 * direct-tcpip channel; the unix socket path would start `fleetctl fd-forward` (a Node process: 5-15 s
 * in a TCG guest) for every request.
 */
export const FLEET_API_PORT = 49153;

/**
 * etcd raft timings for TCG guests sharing two host cores: a stalled vCPU must not look like a dead
 * leader (etcd's defaults, 100/1000 ms, cause elections whenever the host is busy).
 */
export const ETCD_HEARTBEAT_MS = 500;
export const ETCD_ELECTION_MS = 5000;

export function cloudConfig(cluster: Pick<ClusterSpec, "machines" | "agentTtl">, machine: MachineSpec, secrets: ClusterSecrets): string {
  const members = cluster.machines.filter((m) => m.etcdRole === "member");
  const initialCluster = members.map((m) => `${m.hostname}=http://${m.ip}:2380`).join(",");
  const etcd: Record<string, string | number> =
    machine.etcdRole === "member"
      ? {
          name: machine.hostname,
          initial_cluster: initialCluster,
          initial_cluster_state: "new",
          initial_cluster_token: "corefleet",
          initial_advertise_peer_urls: `http://${machine.ip}:2380`,
          listen_peer_urls: `http://${machine.ip}:2380`,
          listen_client_urls: `http://127.0.0.1:2379,http://${machine.ip}:2379`,
          advertise_client_urls: `http://${machine.ip}:2379`,
          heartbeat_interval: ETCD_HEARTBEAT_MS,
          election_timeout: ETCD_ELECTION_MS,
        }
      : {
          proxy: "on",
          // etcd's v3 gRPC proxy: local clients keep using 127.0.0.1:2379.
          endpoints: members.map((m) => `${m.ip}:2379`).join(","),
        };
  const fleet: Record<string, string> = {
    public_ip: machine.ip,
    agent_ttl: cluster.agentTtl,
    machine_loss_grace: `${MACHINE_LOSS_GRACE_S}s`,
    api_tcp_listen: `127.0.0.1:${FLEET_API_PORT}`,
    api_token: secrets.apiToken,
  };
  if (machine.metadata) fleet.metadata = machine.metadata;
  const registry = registryMachine(cluster.machines);
  const doc = {
    hostname: machine.hostname,
    machine_id: machine.machineId,
    ssh_authorized_keys: [secrets.operatorPublicKey.trim()],
    write_files: [
      { path: "/etc/ssh/ssh_host_ed25519_key", permissions: "0600", owner: "root:root", content: ensureNewline(secrets.hostPrivateKey) },
      { path: "/etc/ssh/ssh_host_ed25519_key.pub", permissions: "0644", owner: "root:root", content: ensureNewline(secrets.hostPublicKey) },
    ],
    coreos: {
      etcd,
      fleet,
    },
    network: {
      interfaces: [{ match_mac: machine.mac, address: `${machine.ip}/24`, gateway: BRIDGE_ADDRESS }],
    },
    ...(registry ? { hosts: [{ address: registry.ip, names: [REGISTRY_NAME] }] } : {}),
  };
  return `#cloud-config\n${stringify(doc, { lineWidth: 0 })}`;
}

function ensureNewline(s: string): string {
  return s.endsWith("\n") ? s : `${s}\n`;
}
