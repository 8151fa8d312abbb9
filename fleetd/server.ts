/**
 * fleetd's wiring: configuration → etcd client → registry → agent + engine + HTTP API, all under one
 * root AbortController. Libraries emit events; the entry point (`main.ts`) decides how to log them.
 *
 * Lifecycle: `start()` returns at once (registration retries in the background while the API answers
 * 503); `stop({ leave: true })` is SIGTERM (units stopped and removed, lease revoked: the machine is
 * gone immediately); `stop({ leave: false })` stops fleetd and leaves units running (crash-like: the
 * lease expires after the TTL); `reload(config)` is SIGHUP (components restarted, API listeners and
 * running units kept).
 */
import { readFile } from "node:fs/promises";
import { availableParallelism, networkInterfaces, totalmem } from "node:os";
import type { Etcd3 } from "etcd3";
import { API_UNAVAILABLE_MESSAGE, DUPLICATE_MACHINE_ID_CAUSE } from "../lib/api/types";
import { Agent } from "./agent/agent";
import { leaseFile } from "./agent/lease-file";
import type { UnitManager } from "./agent/unit-manager";
import type { FleetConfig } from "./config/config";
import { DeployController } from "./deploy/deploy-controller";
import { DeployOperations } from "./deploy/deploy-operations";
import { SchedulerOperations } from "./engine/scheduler-operations";
import { Engine } from "./engine/engine";
import { LeaderElection } from "./engine/leader-election";
import { EtcdRegistry } from "./registry/etcd-registry";
import { createEtcdClient, EtcdStore } from "./registry/etcd-store";
import type { MachineRecord } from "./registry/keys";
import { MachineSession, type MachineSessionOptions } from "./registry/machine-session";
import { ServerMonitor } from "./server-monitor";
import { systemClock } from "../lib/async/clock";
import type { Registry } from "./registry/registry";

/** A log-worthy event from any component. */
export interface ServerEvent {
  source: "server" | "agent" | "engine" | "api";
  level: "debug" | "info" | "warn" | "error";
  message: string;
}

export interface ServerOptions {
  config: FleetConfig;
  version: string;
  /** The unit manager to use; default: built from `config.unitManager` (D-Bus loaded lazily). */
  unitManager?: UnitManager;
  /** Serve the HTTP API (default true). */
  api?: boolean;
  env?: NodeJS.ProcessEnv;
  pid?: number;
  onEvent?: (e: ServerEvent) => void;
  /** Resync period override (default 150 × engine_reconcile_interval). */
  engineResyncMs?: number;
  /** Run the deploy controller beside the engine (default true; tests drive their own). */
  deployController?: boolean;
}

/** The hook between fleetd and its HTTP API (`fleetd/api`), kept in one place. */
interface ApiHandle {
  close(): Promise<void>;
  addresses: string[];
}

interface ApiWiring {
  config: FleetConfig;
  version: string;
  registry: Registry;
  operations: () => DeployOperations;
  scheduler: () => SchedulerOperations;
  /** The current etcd store (follows reconnects), for the dashboard's watches. */
  store: () => EtcdStore;
  machineId: string;
  env: NodeJS.ProcessEnv;
  pid: number;
  emit: (e: ServerEvent) => void;
}

async function startApi({ config, version, registry, operations, scheduler, store, machineId, env, pid, emit }: ApiWiring): Promise<ApiHandle> {
  const api = await import("./api/index");
  const { ClusterFeed, createDashboardRoutes } = await import("./dashboard/index");
  const feed = new ClusterFeed({ store, onWarning: (message) => emit({ source: "api", level: "warn", message }) });
  const server = api.createApiServer({
    backend: api.registryBackend(registry),
    operations: api.operationsBackend({
      getDeployment: (t, s) => operations().getDeployment(t, s),
      getDeploymentSummary: (t, s) => operations().getDeploymentSummary(t, s),
      deploy: (t, r, s) => operations().deploy(t, r, s),
      scale: (t, r, s) => operations().scale(t, r, s),
    }),
    scheduler: api.schedulerBackend({
      why: (u, s) => scheduler().why(u, s),
      rebalance: (r, s) => scheduler().rebalance(r, s),
    }),
    version,
    tokenLimit: config.tokenLimit,
    dashboard: createDashboardRoutes({ feed, servedBy: machineId }),
    onError: (err, req) => {
      const message = `${req.method} ${req.url}: ${(err as Error).message}`;
      // 503s while not registered are expected (duplicate machine ID, etcd away) and logged elsewhere.
      const notRegistered = message.endsWith(API_UNAVAILABLE_MESSAGE) || message.includes(DUPLICATE_MACHINE_ID_CAUSE);
      emit({ source: "api", level: notRegistered ? "debug" : "error", message });
    },
  });
  const specs = api.apiListenersFromConfig(
    {
      socketPath: config.apiSocket,
      ...(config.apiTcpListen ? { tcpListen: config.apiTcpListen } : {}),
      ...(config.apiToken ? { token: config.apiToken } : {}),
      tcpOpen: config.apiTcpOpen,
    },
    env,
    pid,
  );
  const addresses: string[] = [];
  for (const spec of specs) addresses.push((await server.listen(spec)).address);
  return {
    close: async () => {
      await server.close();
      await feed.close();
    },
    addresses,
  };
}

/** The machine ID: `machine_id` if set, else the first line of `machine_id_file`. */
export async function readMachineId(config: FleetConfig): Promise<string> {
  if (config.machineId) return config.machineId;
  let text: string;
  try {
    text = await readFile(config.machineIdFile, "utf8");
  } catch (err) {
    throw new Error(`Cannot start fleetd: unable to determine local machine ID: cannot read ${config.machineIdFile} (${(err as Error).message})`, { cause: err });
  }
  const id = text.trim();
  if (!id) throw new Error(`Cannot start fleetd: unable to determine local machine ID: ${config.machineIdFile} is empty`);
  return id;
}

/**
 * The API's 503 message while another live machine holds this fleetd's machine ID: the cause, where
 * the ID comes from, and what to do (the agent keeps retrying meanwhile).
 */
export function duplicateMachineIdMessage(machineId: string, config: Pick<FleetConfig, "machineId" | "machineIdFile">): string {
  const source = config.machineId ? "machine_id in fleetd's configuration" : config.machineIdFile;
  return `fleet server cannot register machine ${machineId}: ${DUPLICATE_MACHINE_ID_CAUSE}; give this host a unique machine ID (${source}), then restart fleetd (until then it keeps retrying, and registers if the other machine leaves)`;
}

/** fleet's fallback for an empty public_ip: the first global IPv4 address of this host. */
export function detectPublicIp(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === "IPv4" && !a.internal && !a.address.startsWith("169.254.")) return a.address;
  }
  return "";
}

async function createUnitManager(config: FleetConfig): Promise<UnitManager> {
  if (config.unitManager === "memory") {
    const { MemoryUnitManager } = await import("./agent/memory-unit-manager");
    return new MemoryUnitManager();
  }
  // Loaded lazily so that tests and hosts without D-Bus never import dbus-next.
  const { DbusUnitManager } = await import("./agent/dbus-unit-manager");
  return DbusUnitManager.connect({ unitsDirectory: config.unitsDirectory });
}

/** The etcd-side pieces that live as long as the connection settings do. */
interface Connection {
  client: Etcd3;
  store: EtcdStore;
  session: MachineSession;
  key: string;
}

function connectionKey(c: FleetConfig, machineId: string): string {
  return JSON.stringify([c.etcdServers, c.etcdKeyPrefix, c.etcdCaFile, c.etcdCertFile, c.etcdKeyFile, c.etcdUsername, c.etcdPassword, c.etcdKeepaliveIntervalSeconds, c.agentTtlSeconds, c.leaseRenewIntervalMs, machineId]);
}

export class FleetServer {
  readonly root = new AbortController();
  readonly machineId: string;
  private config: FleetConfig;
  private conn!: Connection;
  private registry!: EtcdRegistry;
  /** Scale and rolling deployments for the API (follows reconnects like the registry). */
  private operations!: DeployOperations;
  /** `why` and `rebalance` for the API, and the automatic rebalance (follows reconnects too). */
  private scheduler!: SchedulerOperations;
  private components: AbortController | undefined;
  private tasks: Promise<void>[] = [];
  private api: ApiHandle | undefined;
  private monitorDone: Promise<void> = Promise.resolve();
  agent!: Agent;
  engine: Engine | undefined;

  private constructor(
    private readonly options: ServerOptions,
    machineId: string,
    readonly unitManager: UnitManager,
  ) {
    this.config = options.config;
    this.machineId = machineId;
  }

  private emit(source: ServerEvent["source"], level: ServerEvent["level"], message: string): void {
    this.options.onEvent?.({ source, level, message });
  }

  /** Starts everything; returns once the API listens (registration continues in the background). */
  static async start(options: ServerOptions): Promise<FleetServer> {
    const machineId = await readMachineId(options.config);
    const manager = options.unitManager ?? (await createUnitManager(options.config));
    const server = new FleetServer(options, machineId, manager);
    await server.connect();
    server.startComponents();
    const monitor = new ServerMonitor({
      clock: systemClock,
      ttlMs: () => server.config.agentTtlSeconds * 1000,
      lastHeartbeatAt: () => server.conn.session.lastHeartbeatAt,
      onEvent: (e) => server.emit("server", e.level, e.message),
    });
    server.monitorDone = monitor.run(server.root.signal);
    if (options.api ?? true) {
      server.api = await startApi({
        config: options.config,
        version: options.version,
        registry: server.registryView(),
        operations: () => server.operations,
        scheduler: () => server.scheduler,
        store: () => server.conn.store,
        machineId,
        env: options.env ?? process.env,
        pid: options.pid ?? process.pid,
        emit: (e) => server.options.onEvent?.(e),
      });
      server.emit("api", "info", `API listening on ${server.api.addresses.join(", ")}`);
    }
    return server;
  }

  /** Listener addresses of the API (empty when the API is off). */
  get apiAddresses(): string[] {
    return this.api?.addresses ?? [];
  }

  /** The registry as the API sees it; follows reconnects after a SIGHUP. */
  registryView(): Registry {
    const current = (): EtcdRegistry => this.registry;
    return {
      isRegistered: () => current().isRegistered(),
      unregisteredReason: () => current().unregisteredReason(),
      listUnits: (s) => current().listUnits(s),
      getUnit: (n, s) => current().getUnit(n, s),
      createUnit: (i, s) => current().createUnit(i, s),
      setDesiredState: (n, st, s) => current().setDesiredState(n, st, s),
      destroyUnit: (n, s) => current().destroyUnit(n, s),
      listMachines: (s) => current().listMachines(s),
      patchMachineMetadata: (c, s) => current().patchMachineMetadata(c, s),
      listStates: (f, s) => current().listStates(f, s),
    };
  }

  private machineRecord(): MachineRecord {
    return {
      id: this.machineId,
      publicIP: this.config.publicIp || detectPublicIp(),
      metadata: { ...this.config.metadata },
      version: this.options.version,
      disableEngine: this.config.disableEngine,
      capacity: {
        cpus: this.config.capacityCpus ?? Math.max(1, availableParallelism()) * 1000,
        memory: this.config.capacityMemory ?? totalmem(),
      },
    };
  }

  private async connect(handover?: MachineSessionOptions["handover"]): Promise<void> {
    const c = this.config;
    const read = async (f: string): Promise<Buffer | undefined> => (f ? readFile(f) : undefined);
    const [ca, cert, key] = await Promise.all([read(c.etcdCaFile), read(c.etcdCertFile), read(c.etcdKeyFile)]);
    const client = createEtcdClient({
      endpoints: c.etcdServers,
      requestTimeoutMs: c.etcdRequestTimeoutSeconds * 1000,
      keepaliveMs: c.etcdKeepaliveIntervalSeconds * 1000,
      ...(ca || cert ? { tls: { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) } } : {}),
      ...(c.etcdUsername ? { auth: { username: c.etcdUsername, password: c.etcdPassword } } : {}),
    });
    const store = new EtcdStore(client, { prefix: c.etcdKeyPrefix, requestTimeoutMs: c.etcdRequestTimeoutSeconds * 1000 });
    const session = new MachineSession(store, {
      machine: this.machineRecord(),
      ttlSeconds: c.agentTtlSeconds,
      ...(c.leaseRenewIntervalMs === undefined ? {} : { keepaliveIntervalMs: c.leaseRenewIntervalMs }),
      ...(handover ? { handover } : {}),
    });
    this.conn = { client, store, session, key: connectionKey(c, this.machineId) };
    const duplicate = duplicateMachineIdMessage(this.machineId, c);
    this.registry = new EtcdRegistry(store, { isRegistered: () => session.registered, unregisteredReason: () => (session.duplicateId ? duplicate : undefined) });
    this.operations = new DeployOperations(store);
    this.scheduler = new SchedulerOperations(store);
  }

  private startComponents(): void {
    const c = this.config;
    const controller = (this.components = new AbortController());
    const signal = controller.signal;
    this.root.signal.addEventListener("abort", () => controller.abort(), { once: true });
    this.agent = new Agent({
      session: this.conn.session,
      manager: this.unitManager,
      onEvent: (e) => this.emit("agent", e.level, e.message),
      ...(c.leaseFile ? { leaseMemory: leaseFile(c.leaseFile) } : {}),
    });
    const fail = (what: string) => (err: unknown) => {
      if (!signal.aborted) this.emit("server", "error", `${what} stopped: ${(err as Error).message}`);
    };
    this.tasks = [this.agent.run(signal).catch(fail("Agent"))];
    if (!c.disableEngine) {
      this.engine = new Engine({
        store: this.conn.store,
        machineId: this.machineId,
        leaderTtlSeconds: Math.max(2, Math.ceil(5 * c.engineReconcileIntervalSeconds)),
        graceMs: c.agentTtlSeconds * 1000,
        lossGraceMs: c.machineLossGraceSeconds * 1000,
        resyncIntervalMs: this.options.engineResyncMs ?? 150 * c.engineReconcileIntervalSeconds * 1000,
        onEvent: (e) => this.emit("engine", e.level, e.message),
      });
      this.tasks.push(this.engine.run(signal).catch(fail("Engine")));
      // Rolling deployments act only while this engine leads; their state is in etcd, so a new leader resumes them.
      // Its writes carry the same leader guard as placements: the etcd session is a LeaderElection.
      const leadership = this.engine.session;
      if (leadership instanceof LeaderElection && this.options.deployController !== false) {
        const deploys = new DeployController({ store: this.conn.store, leadership, onEvent: (e) => this.emit("engine", e.level, e.message) });
        this.tasks.push(deploys.run(signal).catch(fail("Deploy controller")));
      }
      if (c.rebalanceIntervalSeconds > 0) this.tasks.push(this.autoRebalance(c.rebalanceIntervalSeconds * 1000, c.rebalanceMaxMoves, signal).catch(fail("Automatic rebalance")));
    } else {
      this.engine = undefined;
    }
  }

  /** `rebalance_interval`: while this fleetd's engine leads, a rebalance within `rebalance_max_moves` every interval. */
  private async autoRebalance(intervalMs: number, maxMoves: number, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      // Rejects only when aborted, which the loop condition handles.
      await systemClock.sleep(intervalMs, signal).catch(() => undefined);
      if (signal.aborted || !this.engine?.isLeader) continue;
      try {
        const plan = await this.scheduler.rebalance({ maxMoves }, signal);
        for (const m of plan.moves) this.emit("engine", m.outcome === "moved" ? "info" : "warn", `Rebalance: ${m.unit} from ${m.from} to ${m.to} (${m.reason}): ${m.outcome ?? "planned"}`);
      } catch (err) {
        if (!signal.aborted) this.emit("engine", "warn", `Automatic rebalance failed: ${(err as Error).message}; trying again in ${intervalMs / 1000} s`);
      }
    }
  }

  private async stopComponents(): Promise<void> {
    this.components?.abort();
    await Promise.all(this.tasks);
    this.tasks = [];
  }

  /**
   * SIGHUP: applies a new configuration. Units keep running and the API keeps its listeners; when the
   * etcd connection settings or the TTL changed, the machine re-registers on the new connection.
   */
  async reload(config: FleetConfig): Promise<void> {
    this.emit("server", "info", "Reloading configuration");
    await this.stopComponents();
    await this.engine?.resign();
    const oldConn = this.conn;
    this.config = config;
    if (connectionKey(config, this.machineId) !== oldConn.key) {
      // Never leave here: a leaving mark or a revoked lease makes the engine move our units at once
      // while this agent keeps running them. The new session moves the presence key to its own lease
      // (same machine ID); only then does the old session stop keeping its lease alive.
      const leaseId = oldConn.session.registered ? oldConn.session.leaseId : undefined;
      const release = (): void => {
        oldConn.session.abandon();
        oldConn.client.close();
      };
      await this.connect(leaseId ? { leaseId, release } : undefined);
      if (!leaseId) release();
    } else if (oldConn.session.registered) {
      await oldConn.session.updateMachine(this.machineRecord()).catch((err: unknown) => this.emit("server", "warn", `Cannot update the machine record: ${(err as Error).message}`));
    }
    this.startComponents();
  }

  /**
   * Stops fleetd. `leave: true` (SIGTERM): stop and remove every unit, revoke the lease (presence and
   * states vanish at once), resign leadership. `leave: false`: leave units running and let the
   * lease expire, as after a crash.
   */
  async stop(options: { leave: boolean }): Promise<void> {
    await this.stopComponents();
    if (options.leave) {
      await this.engine?.resign();
      await this.agent.leave();
    } else {
      this.engine?.abandon();
      this.conn.session.abandon();
    }
    this.root.abort();
    await this.monitorDone;
    await this.api?.close();
    this.conn.client.close();
    await this.unitManager.close();
  }
}
