/**
 * Test helper: several fleetd instances (engine + agent each, own machine ID, in-memory unit manager)
 * in one process against one real etcd, plus a client-side registry to drive them like the API does.
 */
import { readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { delay } from "../../lib/async/delay";
import { MemoryUnitManager, type MemoryDisk } from "../../fleetd/agent/memory-unit-manager";
import { buildConfig, type FleetConfig } from "../../fleetd/config/config";
import { EtcdRegistry } from "../../fleetd/registry/etcd-registry";
import { createEtcdClient, EtcdStore } from "../../fleetd/registry/etcd-store";
import { FleetServer, type ServerEvent } from "../../fleetd/server";
import type { EtcdInstance } from "./etcd";

export interface InstanceOptions {
  metadata?: string;
  disk?: MemoryDisk;
  disableEngine?: boolean;
  /** Units the (simulated) systemd already runs when this instance starts (a fleetd restart). */
  running?: string[];
  /** etcd endpoint for this instance (e.g. a fault-injecting proxy); default the cluster's etcd. */
  endpoint?: string;
  /** Extra config lines. */
  extra?: Record<string, string>;
  /** Simulated systemd job time: a start or stop takes effect this long after it was asked for. */
  transitionDelayMs?: number;
  /** Simulated start-up time of a service (default transitionDelayMs). */
  startDelayMs?: number;
  /** Serve fleetd's HTTP API (listeners from `extra`: api_socket, api_tcp_listen...). Default false. */
  api?: boolean;
  /** Run fleetd's deploy controller (default true; false: the test drives one itself). */
  deployController?: boolean;
}

export interface FleetInstance {
  id: string;
  server: FleetServer;
  manager: MemoryUnitManager;
  events: ServerEvent[];
}

/** Short TTLs so failures are noticed in seconds. */
export const TEST_AGENT_TTL_SECONDS = 2;

export function testConfig(etcd: EtcdInstance | { endpoint: string }, prefix: string, id: string, opts: InstanceOptions = {}): FleetConfig {
  const lines = {
    etcd_servers: opts.endpoint ?? etcd.endpoint,
    etcd_key_prefix: prefix,
    agent_ttl: `${TEST_AGENT_TTL_SECONDS}s`,
    // Scaled down with the TTL (the shipped default is 10 s) so lost machines' units move in seconds.
    machine_loss_grace: `${TEST_AGENT_TTL_SECONDS}s`,
    engine_reconcile_interval: "0.4",
    etcd_request_timeout: "2",
    machine_id: id,
    public_ip: `10.0.0.${id.charCodeAt(id.length - 1) % 250}`,
    unit_manager: "memory",
    ...(opts.metadata ? { metadata: opts.metadata } : {}),
    ...(opts.disableEngine ? { disable_engine: "true" } : {}),
    ...opts.extra,
  };
  return buildConfig(
    Object.entries(lines)
      .map(([k, v]) => `${k}=${v}`)
      .join("\n"),
    {},
  ).config;
}

export class FleetCluster {
  readonly instances = new Map<string, FleetInstance>();
  readonly client;
  readonly registry: EtcdRegistry;
  /** Distinguishes this cluster object's lease files from another's (a twin with the same IDs). */
  private readonly token = Math.random().toString(36).slice(2, 10);

  constructor(
    readonly etcd: EtcdInstance,
    readonly prefix = `/test-${Math.random().toString(36).slice(2, 8)}/`,
  ) {
    this.client = createEtcdClient({ endpoints: [etcd.endpoint], requestTimeoutMs: 2_000 });
    this.registry = new EtcdRegistry(new EtcdStore(this.client, { prefix, requestTimeoutMs: 2_000 }), { isRegistered: () => true });
  }

  async add(id: string, opts: InstanceOptions = {}): Promise<FleetInstance> {
    const manager = new MemoryUnitManager({ ...(opts.disk ? { disk: opts.disk } : {}), ...(opts.transitionDelayMs !== undefined ? { transitionDelayMs: opts.transitionDelayMs } : {}), ...(opts.startDelayMs !== undefined ? { startDelayMs: opts.startDelayMs } : {}) });
    if (opts.running) manager.markRunning(opts.running);
    const events: ServerEvent[] = [];
    const server = await FleetServer.start({
      config: testConfig(this.etcd, this.prefix, id, { ...opts, extra: { lease_file: join(tmpdir(), `fleet-lease-${this.token}-${id}`), ...opts.extra } }),
      version: "test",
      unitManager: manager,
      api: opts.api ?? false,
      engineResyncMs: 60_000,
      ...(opts.deployController === false ? { deployController: false } : {}),
      onEvent: (e) => events.push(e),
    });
    const inst = { id, server, manager, events };
    this.instances.set(id, inst);
    return inst;
  }

  /** Waits until exactly these machines are registered (add() returns before registration). */
  async waitMachines(ids: readonly string[] = [...this.instances.keys()]): Promise<void> {
    const want = [...ids].sort().join(",");
    await waitFor(`machines ${want} registered`, async () => (await this.registry.listMachines()).map((m) => m.id).join(",") === want, { describe: () => this.describe() });
  }

  get(id: string): FleetInstance {
    const i = this.instances.get(id);
    if (!i) throw new Error(`no instance ${id}`);
    return i;
  }

  /** SIGTERM-like: units stopped and removed, lease revoked. */
  async leave(id: string): Promise<void> {
    await this.get(id).server.stop({ leave: true });
    this.instances.delete(id);
  }

  /** Crash-like: nothing revoked; presence expires after the TTL; units keep "running". */
  async crash(id: string): Promise<void> {
    await this.get(id).server.stop({ leave: false });
    this.instances.delete(id);
  }

  private closed = false;

  /** Crashes every instance and closes the client; a second call does nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.instances.keys()]) await this.crash(id);
    this.client.close();
    const files = (await readdir(tmpdir())).filter((f) => f.startsWith(`fleet-lease-${this.token}-`));
    await Promise.all(files.map((f) => rm(join(tmpdir(), f), { force: true })));
  }

  /** Which instances run `unit` (per their memory managers). */
  runningOn(unit: string): string[] {
    return [...this.instances.values()].filter((i) => i.manager.running().includes(unit)).map((i) => i.id).sort();
  }

  /** Dumps recent events for failure messages. */
  describe(): string {
    return [...this.instances.values()].map((i) => `${i.id}: running=${i.manager.running().join(",")}\n  ${i.events.slice(-8).map((e) => `${e.source} ${e.level} ${e.message}`).join("\n  ")}`).join("\n");
  }
}

/** Waits until `check` returns a truthy value; fails naming `what` and the last value seen. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, options: { timeoutMs?: number; describe?: () => string } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  let last: unknown;
  for (;;) {
    try {
      last = await check();
      if (last) return last as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${options.timeoutMs ?? 15_000} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}${options.describe ? `\n${options.describe()}` : ""}`);
    }
    await delay(50);
  }
}

/** A unit file body with optional [X-Fleet] lines. */
export function unitText(xfleet: Record<string, string | string[]> = {}, exec = "/bin/sleep infinity"): string {
  const lines = ["[Unit]", "Description=test unit", "", "[Service]", `ExecStart=${exec}`];
  const x = Object.entries(xfleet).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((vv) => `${k}=${vv}`));
  if (x.length > 0) lines.push("", "[X-Fleet]", ...x);
  return lines.join("\n");
}

/** Submits a unit and sets its desired state, as `fleetctl start` does through the API. */
export async function submit(cluster: FleetCluster, name: string, text: string, desiredState: "inactive" | "loaded" | "launched" = "launched"): Promise<void> {
  const { parseUnitFile } = await import("../../lib/unit");
  await cluster.registry.createUnit({ name, options: parseUnitFile(text), desiredState });
}

/** Current state and machine of each unit, as `fleetctl list-unit-files` would show. */
export async function unitTable(cluster: FleetCluster): Promise<Record<string, string>> {
  const units = await cluster.registry.listUnits();
  return Object.fromEntries(units.map((u) => [u.name, `${u.currentState ?? "-"}@${u.machineID ?? "-"}`]));
}
