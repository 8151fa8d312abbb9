/**
 * Harness for fleetctl integration tests: a real etcd, fleetd instances with in-memory unit managers
 * (engine + agent each, from test/helpers/fleet-cluster), the real HTTP API on a unix socket, and
 * fleetctl run in-process with its own streams, environment and working directory.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { createApiServer, operationsBackend, registryBackend, type ApiServer } from "../../fleetd/api";
import { DeployOperations } from "../../fleetd/deploy/deploy-operations";
import { EtcdStore } from "../../fleetd/registry/etcd-store";
import { runFleetctl } from "../../fleetctl/program";
import { remoteRegistrars, sshTunnel } from "../../fleetctl/ssh";
import type { EtcdInstance } from "../helpers/etcd";
import { FleetCluster, waitFor, type InstanceOptions } from "../helpers/fleet-cluster";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  stdin?: string;
  /** Ctrl-C for the run. */
  signal?: AbortSignal;
  /** Pretend stdin is a terminal; raw-mode switches are recorded here. */
  tty?: boolean[];
  env?: Record<string, string>;
  cwd?: string;
  machineIdFile?: string;
}

class Collector extends Writable {
  text = "";
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

/** Runs fleetctl in-process with `argv`; env defaults to the harness's endpoint. */
export async function fleetctl(argv: readonly string[], env: Record<string, string>, opts: RunOptions = {}): Promise<RunResult> {
  const stdout = new Collector();
  const stderr = new Collector();
  const stdin = new PassThrough();
  if (opts.tty) {
    const modes = opts.tty;
    Object.assign(stdin, { isTTY: true, setRawMode: (raw: boolean) => modes.push(raw) });
  }
  stdin.end(opts.stdin ?? "");
  const code = await runFleetctl(argv, {
    stdout,
    stderr,
    stdin,
    env: { ...env, ...opts.env },
    version: "0.1.0",
    tunnel: sshTunnel,
    registrars: remoteRegistrars,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    machineIdFile: opts.machineIdFile ?? "/nonexistent/machine-id",
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

export class FleetctlEnv {
  cluster!: FleetCluster;
  api!: ApiServer;
  dir!: string;
  socket!: string;

  static async start(etcd: EtcdInstance, machineIds: readonly string[], perMachine: Record<string, InstanceOptions> = {}): Promise<FleetctlEnv> {
    const env = new FleetctlEnv();
    env.dir = await mkdtemp(join(tmpdir(), "fleetctl-"));
    env.cluster = new FleetCluster(etcd);
    await Promise.all(machineIds.map((id) => env.cluster.add(id, perMachine[id] ?? {})));
    await waitFor(`${machineIds.length} machines registered`, async () => (await env.cluster.registry.listMachines()).length === machineIds.length);
    const store = new EtcdStore(env.cluster.client, { prefix: env.cluster.prefix, requestTimeoutMs: 2_000 });
    env.api = createApiServer({ backend: registryBackend(env.cluster.registry), operations: operationsBackend(new DeployOperations(store)), version: "0.1.0" });
    env.socket = join(env.dir, "fleet.sock");
    await env.api.listen({ kind: "unix", path: env.socket });
    return env;
  }

  get env(): Record<string, string> {
    return { FLEETCTL_ENDPOINT: `unix://${this.socket}`, HOME: this.dir };
  }

  run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return fleetctl(argv, this.env, { cwd: this.dir, ...opts });
  }

  async close(): Promise<void> {
    await this.api?.close();
    await this.cluster?.close();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}
