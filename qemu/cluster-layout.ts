/**
 * Where a named cluster lives on disk and what each machine in it is: the plain data every other
 * part of the qemu tool reads (`cluster.json` in the cluster's folder). No I/O except the state folder
 * lookup, which reads only environment variables.
 */
import os from "node:os";
import path from "node:path";
import { readManifest } from "../image-builder/manifest";

/** The private subnet inside every cluster's network namespace (never routed anywhere). */
export const SUBNET_PREFIX = "10.77.0";
/** The bridge's own address inside the namespace: SSH forwarders connect from here. */
export const BRIDGE_ADDRESS = `${SUBNET_PREFIX}.1`;

/** One machine of a cluster. */
export interface MachineSpec {
  /** 1-based, as in `ssh INDEX`. */
  index: number;
  hostname: string;
  /** Static address on the cluster bridge (10.77.0.10+index). */
  ip: string;
  mac: string;
  /** Tap device inside the namespace. */
  tap: string;
  /** 32 lower-case hex digits: /etc/machine-id and fleet's machine ID. */
  machineId: string;
  /** fleet metadata (`k=v,k2=v2`), possibly empty. */
  metadata: string;
  /** Port on 127.0.0.1 (host namespace) forwarded to the machine's SSH. */
  sshPort: number;
  /** Member of the etcd cluster (first three machines) or a gRPC proxy. */
  etcdRole: "member" | "proxy";
}

/** What `up` recorded; `down`, `status`, `ssh` and the tests read it back. */
export interface ClusterSpec {
  name: string;
  /** Network namespace created for this cluster. */
  netns: string;
  /** Folder of the base image artefacts (disk.qcow2, vmlinuz, initramfs.img, cmdline.txt). */
  imageDir: string;
  /**
   * `inputsKey` of the image's manifest.json when the cluster was created: its machines' disks are
   * overlays on that disk.qcow2, so a rebuilt image needs a new cluster. Absent in older clusters.
   */
  imageInputsKey?: string;
  memoryMiB: number;
  cpus: number;
  /** fleet's agent_ttl given to every machine, e.g. "15s". */
  agentTtl: string;
  machines: MachineSpec[];
  createdAt: string;
}

/** Root folder of all clusters: `${XDG_STATE_HOME:-~/.local/state}/corefleet/clusters`. */
export function clustersRoot(env: NodeJS.ProcessEnv = process.env): string {
  const state = env.XDG_STATE_HOME && env.XDG_STATE_HOME !== "" ? env.XDG_STATE_HOME : path.join(os.homedir(), ".local", "state");
  return path.join(state, "corefleet", "clusters");
}

/**
 * Every path of one cluster's folder. Refuses a name that is not a plain cluster name
 * ({@link validateClusterName}), so no path built here can point at `root` itself or outside it
 * (`down` removes `dir` recursively).
 */
export function clusterPaths(root: string, name: string) {
  const dir = path.join(root, validateClusterName(name));
  const machine = (index: number) => {
    const m = path.join(dir, "machines", String(index));
    return {
      dir: m,
      overlay: path.join(m, "disk.qcow2"),
      configDrive: path.join(m, "config-drive.iso"),
      console: path.join(m, "console.log"),
      pid: path.join(m, "qemu.pid"),
      monitor: path.join(m, "qmp.sock"),
    };
  };
  return {
    dir,
    spec: path.join(dir, "cluster.json"),
    privateKey: path.join(dir, "id_ed25519"),
    publicKey: path.join(dir, "id_ed25519.pub"),
    hostKey: path.join(dir, "ssh_host_ed25519_key"),
    knownHosts: path.join(dir, "known_hosts"),
    /** Bearer token of fleetd's loopback TCP API on every machine. */
    apiToken: path.join(dir, "api-token"),
    forwarderPid: path.join(dir, "forwarder.pid"),
    forwarderLog: path.join(dir, "forwarder.log"),
    machine,
  };
}
export type ClusterPaths = ReturnType<typeof clusterPaths>;

/** Whether `name` is a plain cluster name: 1-20 lower-case letters, digits or "-", not starting with "-". */
export function isClusterName(name: string): boolean {
  return /^[a-z0-9][a-z0-9-]{0,19}$/.test(name);
}

/** Cluster names become folder and namespace names: keep them short and plain. */
export function validateClusterName(name: string): string {
  if (!isClusterName(name)) {
    throw new Error(`Invalid cluster name "${name}": use 1-20 lower-case letters, digits or "-", starting with a letter or digit`);
  }
  return name;
}

/**
 * Parses `--metadata "1:zone=a,role=web;2:zone=b"`: per machine index, fleet metadata. Entries are
 * separated by ";" or whitespace, so the value itself may contain commas.
 */
export function parseMetadataFlag(value: string | undefined, size: number): Map<number, string> {
  const out = new Map<number, string>();
  if (!value) return out;
  for (const entry of value.split(/[;\s]+/).filter(Boolean)) {
    const m = /^(\d+):((?:[A-Za-z0-9_.-]+=[^,=]*)(?:,[A-Za-z0-9_.-]+=[^,=]*)*)$/.exec(entry);
    if (!m) throw new Error(`Invalid --metadata entry "${entry}": expected INDEX:key=value[,key=value], e.g. "1:zone=a,role=web"`);
    const index = Number(m[1]);
    if (index < 1 || index > size) throw new Error(`Invalid --metadata entry "${entry}": machine ${index} does not exist in a cluster of ${size}`);
    out.set(index, m[2] ?? "");
  }
  return out;
}

/** The fixed per-index part of a machine (address, MAC, tap, role); ports and IDs are added by `up`. */
export function machineBase(index: number): Pick<MachineSpec, "index" | "hostname" | "ip" | "mac" | "tap" | "etcdRole"> {
  if (!Number.isInteger(index) || index < 1 || index > 200) throw new Error(`Invalid machine index ${index}: use 1..200`);
  const host = 10 + index;
  return {
    index,
    hostname: `core-${index}`,
    ip: `${SUBNET_PREFIX}.${host}`,
    mac: `52:54:00:4d:00:${host.toString(16).padStart(2, "0")}`,
    tap: `tap${index}`,
    etcdRole: index <= 3 ? "member" : "proxy",
  };
}

/** The `inputsKey` of the image in `imageDir` (its manifest.json), or undefined when it has none. */
export async function imageInputsKey(imageDir: string): Promise<string | undefined> {
  const key = (await readManifest(imageDir).catch(() => undefined))?.inputsKey;
  return typeof key === "string" ? key : undefined;
}

/** Why a cluster cannot be reused with the image in `imageDir`, or undefined when it can. */
export function staleClusterReason(spec: Pick<ClusterSpec, "imageDir" | "imageInputsKey">, imageDir: string, currentKey: string | undefined): string | undefined {
  if (path.resolve(spec.imageDir) !== path.resolve(imageDir)) return `it runs the image in ${spec.imageDir}, not ${imageDir}`;
  if (currentKey !== undefined && spec.imageInputsKey !== currentKey) return `it runs an older image (${spec.imageInputsKey ?? "unrecorded"}; now ${currentKey})`;
  return undefined;
}
