/**
 * `up`: creates a named cluster of N machines from the image in build/image: keys, the namespace
 * network, the SSH forwarder, one config drive and one qcow2 overlay per machine, QEMU inside the
 * namespace, then waits for every machine to be up (machine-wait.ts). Everything it creates is
 * recorded in the cluster folder first, so `down` can remove it even after a failed `up`. Options are
 * checked before anything is probed or written; a failure before every machine is launched removes
 * what this `up` created, a failure while waiting for machines keeps the cluster for inspection.
 */
import { randomBytes } from "node:crypto";
import { access, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { delay } from "../lib/async/delay";
import { run } from "../lib/process/run";
import { parseGoDuration } from "../fleetd/config/duration";
import { cloudConfig } from "./cloud-config";
import { downCluster } from "./cluster-down";
import { ensureClusterKeys, writeKnownHosts } from "./cluster-keys";
import { clusterPaths, imageInputsKey, machineBase, parseMetadataFlag, validateClusterName, type ClusterSpec, type MachineSpec } from "./cluster-layout";
import { createClusterNetwork } from "./cluster-network";
import { withRegistryMetadata } from "./cluster-registry";
import { loadCluster, saveCluster } from "./cluster-store";
import { writeConfigDrive } from "./config-drive";
import { probeAcceleratorOnce, type Accelerator } from "./kvm-probe";
import { waitForMachine, type MachinePhase } from "./machine-wait";
import { startForwarder } from "./ssh-forwarder";
import { Vm } from "./vm";
import { withSignal } from "./with-signal";

export interface UpOptions {
  /** Folder holding all clusters (clustersRoot()). */
  root: string;
  name: string;
  size: number;
  /** Image folder (default build/image): disk.qcow2, vmlinuz, initramfs.img, cmdline.txt. */
  imageDir: string;
  /** Guest memory; default 1024 MiB. */
  memoryMiB?: number;
  /** vCPUs per guest; default 1. */
  cpus?: number;
  /** `--metadata` flag value, e.g. "1:zone=a,role=web;2:zone=b". */
  metadata?: string;
  /** fleet agent_ttl; default "30s" (fleet's default: TCG guests on a loaded host stall for seconds). */
  agentTtl?: string;
  /** Seconds to wait for all machines; default 900 under TCG, 240 under KVM. */
  timeoutS?: number;
  /** Milliseconds between starting two machines; default 0 (measured: see qemu/README.md). */
  staggerMs?: number;
  /** An operator public key to authorise instead of the generated one. */
  publicKeyFile?: string;
  accelerator?: Accelerator;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

const IMAGE_FILES = ["disk.qcow2", "vmlinuz", "initramfs.img", "cmdline.txt"];
const MIN_DISK_BYTES = 4 * 1024 ** 3;
/** Limits of `up`'s options, as `up --help` states them. */
export const UP_LIMITS = { size: [1, 50], memoryMiB: [256, 262_144], cpus: [1, 64], timeoutS: [1, 86_400], staggerMs: [0, 600_000] } as const;

function checkInt(flag: string, value: number | undefined, [min, max]: readonly [number, number], unit = ""): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`Invalid ${flag} ${value}: use a whole number from ${min} to ${max}${unit}`);
}

/**
 * Checks every option of `up` that needs neither the image nor the accelerator probe nor any state:
 * name, numbers in range, agent_ttl, --metadata, and the --public-key file (readable, one OpenSSH
 * public key). `up` calls it before it looks at anything else, so a wrong option leaves nothing behind.
 */
export async function checkUpOptions(o: Omit<UpOptions, "root" | "imageDir" | "log" | "signal" | "accelerator">): Promise<void> {
  validateClusterName(o.name);
  checkInt("--size", o.size, UP_LIMITS.size, " machines");
  checkInt("--memory", o.memoryMiB, UP_LIMITS.memoryMiB, " MiB");
  checkInt("--cpus", o.cpus, UP_LIMITS.cpus, " vCPUs");
  checkInt("--timeout", o.timeoutS, UP_LIMITS.timeoutS, " s");
  checkInt("--stagger", o.staggerMs, UP_LIMITS.staggerMs, " ms");
  if (o.agentTtl !== undefined) {
    const ms = parseGoDuration(o.agentTtl.trim());
    if (ms === undefined || ms < 1000) throw new Error(`Invalid --agent-ttl "${o.agentTtl}": use a Go duration of at least 1s, e.g. 30s or 1m30s`);
  }
  parseMetadataFlag(o.metadata, o.size);
  if (o.publicKeyFile !== undefined) {
    let text: string;
    try {
      text = await readFile(o.publicKeyFile, "utf8");
    } catch (err) {
      throw new Error(`Cannot read --public-key ${o.publicKeyFile} (${(err as Error).message}); give the .pub file of your SSH key, e.g. ~/.ssh/id_ed25519.pub`, { cause: err });
    }
    if (!/^(ssh-|ecdsa-|sk-)\S+ \S+/.test(text.trim())) {
      throw new Error(`Invalid --public-key ${o.publicKeyFile}: it is not an OpenSSH public key ("ssh-ed25519 AAAA..."); give the .pub file, not the private key`);
    }
  }
}

/** Checks the image folder and names the first missing artefact. */
export async function checkImage(imageDir: string): Promise<void> {
  for (const f of IMAGE_FILES) {
    try {
      await access(path.join(imageDir, f));
    } catch {
      throw new Error(`Cannot start a cluster from ${imageDir}: ${f} is missing; build the image with "npx tsx image-builder/main.ts build" (or pass --image)`);
    }
  }
}

async function virtualSize(file: string, signal?: AbortSignal): Promise<number> {
  const r = await run("qemu-img", ["info", "--output", "json", file], { ...withSignal(signal), timeoutMs: 30_000 });
  return (JSON.parse(r.stdout) as { "virtual-size": number })["virtual-size"];
}

export async function upCluster(o: UpOptions): Promise<ClusterSpec> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  await checkUpOptions(o);
  const name = o.name;
  const imageDir = path.resolve(o.imageDir);
  await checkImage(imageDir);
  const existing = await loadCluster(o.root, name);
  if (existing?.machines.length === 0) {
    throw new Error(`Cannot start cluster "${name}": a previous "up" stopped before it created any machine and left its folder; remove it with "down --name ${name}", then retry`);
  }
  if (existing) throw new Error(`Cannot start cluster "${name}": it already exists (${existing.machines.length} machines); use "status --name ${name}", or "down --name ${name}" first`);
  const metadata = parseMetadataFlag(o.metadata, o.size);
  const paths = clusterPaths(o.root, name);
  await mkdir(paths.dir, { recursive: true });

  // Until every machine is launched, a failure removes what this call created (so a retry starts
  // clean); once they run, a failure leaves the cluster for inspection until `down`.
  let touchedHost = false;
  let launched = false;
  const stopWaits = new AbortController();
  const waitSignal = o.signal ? AbortSignal.any([o.signal, stopWaits.signal]) : stopWaits.signal;
  try {
    return await bootCluster();
  } catch (err) {
    if (!launched) {
      stopWaits.abort();
      try {
        if (touchedHost) await downCluster(o.root, name, log);
        else await rm(paths.dir, { recursive: true, force: true });
        log(`cluster ${name}: "up" failed before every machine was launched; removed what it had created`);
      } catch (cleanupErr) {
        log(`cluster ${name}: "up" failed and its leftovers could not be removed (${(cleanupErr as Error).message}); run "down --name ${name}"`);
      }
    }
    throw err;
  }

  async function bootCluster(): Promise<ClusterSpec> {
    const probe = o.accelerator ? { accelerator: o.accelerator, notice: undefined } : await probeAcceleratorOnce(withSignal(o.signal));
    if (probe.notice) log(probe.notice);
    const accelerator = probe.accelerator;
    const timeoutS = o.timeoutS ?? (accelerator === "kvm" ? 240 : 900);

    const spec: ClusterSpec = {
      name,
      netns: `corefleet-${name}`,
      imageDir,
      ...(await imageInputsKey(imageDir).then((k) => (k !== undefined ? { imageInputsKey: k } : {}))),
      memoryMiB: o.memoryMiB ?? 1024,
      cpus: o.cpus ?? 1,
      agentTtl: o.agentTtl ?? "30s",
      machines: [],
      createdAt: new Date().toISOString(),
    };
    // Recorded before anything is created so that `down` finds the namespace even if we fail below.
    await saveCluster(o.root, spec);
    const secrets = await ensureClusterKeys(paths, name, { ...(o.publicKeyFile ? { operatorPublicKeyFile: o.publicKeyFile } : {}), ...withSignal(o.signal) });
    const bases = Array.from({ length: o.size }, (_, i) => machineBase(i + 1));
    touchedHost = true;
    await createClusterNetwork(spec.netns, bases.map((b) => b.tap), o.signal);
    const fwd = await startForwarder(spec.netns, bases.map((b) => ({ host: b.ip, port: 22 })), { logFile: paths.forwarderLog, ...withSignal(o.signal) });
    await writeFile(paths.forwarderPid, `${fwd.pid}\n`);
    spec.machines = bases.map(
      (b, i): MachineSpec => ({ ...b, machineId: randomBytes(16).toString("hex"), metadata: withRegistryMetadata(b.index, metadata.get(b.index) ?? ""), sshPort: fwd.ports[i] ?? 0 }),
    );
    await saveCluster(o.root, spec);
    await writeKnownHosts(paths, spec.machines, secrets.hostPublicKey);

    const cmdline = (await readFile(path.join(imageDir, "cmdline.txt"), "utf8")).trim();
    const diskBytes = Math.max(MIN_DISK_BYTES, await virtualSize(path.join(imageDir, "disk.qcow2"), o.signal));
    const deadline = Date.now() + timeoutS * 1000;
    log(`cluster ${name}: ${o.size} machine(s), ${accelerator.toUpperCase()}, ${spec.memoryMiB} MiB each; waiting up to ${timeoutS} s`);
    const waits: Promise<void>[] = [];
    const onPhase = (m: MachineSpec, phase: MachinePhase, ms: number): void => log(`  ${m.hostname}: ${phase}${ms ? ` (${(ms / 1000).toFixed(0)} s)` : ""}`);
    for (const m of spec.machines) {
      const mp = paths.machine(m.index);
      await mkdir(mp.dir, { recursive: true });
      await writeConfigDrive(mp.configDrive, cloudConfig(spec, m, secrets), o.signal);
      await Vm.launch({
        name: m.hostname,
        workDir: mp.dir,
        boot: {
          kind: "kernel",
          kernel: path.join(imageDir, "vmlinuz"),
          initrd: path.join(imageDir, "initramfs.img"),
          cmdline: `${cmdline} systemd.machine_id=${m.machineId}`,
        },
        disk: { base: path.join(imageDir, "disk.qcow2"), baseFormat: "qcow2", sizeBytes: diskBytes },
        drives: [{ path: mp.configDrive, format: "raw", readOnly: true }],
        netArgs: ["-netdev", `tap,id=n0,ifname=${m.tap},script=no,downscript=no`, "-device", `virtio-net-pci,netdev=n0,mac=${m.mac}`],
        memoryMiB: spec.memoryMiB,
        cpus: spec.cpus,
        accelerator,
        commandPrefix: ["ip", "netns", "exec", spec.netns],
        log,
        ...withSignal(o.signal),
      });
      // Each machine is awaited as soon as it runs; a failure is reported once all have settled.
      const wait = waitForMachine(paths, m, { deadline, timeoutS, onPhase, signal: waitSignal });
      wait.catch(() => undefined); // settled below, or abandoned when a later launch fails
      waits.push(wait);
      if (o.staggerMs && m.index < spec.machines.length) await delay(o.staggerMs, o.signal);
    }
    launched = true;
    const results = await Promise.allSettled(waits);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    return spec;
  }
}
