/**
 * fleetd's configuration: fleet's option names and defaults (fleet-reference §2.1), read from
 * `--config` or `/etc/fleet/fleet.conf` (INI without sections, parsed with `ini`) and overridden by
 * `FLEET_<UPPERCASE_NAME>` environment variables. Precedence: environment > file > default.
 * Validated once, at start; errors name the offending key, its value and where it came from.
 */
import { parse as parseIni } from "ini";
import { parseGoDuration } from "./duration";
import { parseCpus, parseMemory } from "../../lib/unit/resources";

/**
 * Default `machine_loss_grace`: a few seconds, so a powered-off machine's units run elsewhere about
 * agent_ttl + 10 s after it died, while a host cut off from etcd for up to about agent_ttl + 10 s
 * (minus the seconds it needs to reconnect) keeps its units.
 */
export const DEFAULT_MACHINE_LOSS_GRACE_SECONDS = 10;

/** fleetd's configuration after validation. */
export interface FleetConfig {
  /** `verbosity` (default 0): > 0 logs debug lines. */
  verbosity: number;
  /** `etcd_servers` (default `http://127.0.0.1:2379`): `a,b` or `["a","b"]`. */
  etcdServers: string[];
  /** `etcd_username` / `etcd_password` (default ""): etcd authentication. */
  etcdUsername: string;
  etcdPassword: string;
  /** `etcd_cafile`, `etcd_certfile`, `etcd_keyfile` (default ""): TLS to etcd. */
  etcdCaFile: string;
  etcdCertFile: string;
  etcdKeyFile: string;
  /** `etcd_key_prefix` (default `/fleet/`): our keyspace (fleet used `/_coreos.com/fleet/`). */
  etcdKeyPrefix: string;
  /**
   * `etcd_request_timeout` in seconds (default 5.0; fleet's 1.0 is too short for a snapshot read of
   * 10,000 units on a loaded host, and a too-short timeout only causes retries).
   */
  etcdRequestTimeoutSeconds: number;
  /**
   * `etcd_keepalive_interval` in seconds (default 6; 0 = no keepalive pings; corefleet's own): how often
   * an open etcd connection is pinged, to notice a silently dead one (packets dropped) and reconnect.
   * etcd members accept pings every 5 s or more; etcd 3.4's gRPC proxy accepts none more often than
   * every 5 minutes and closes the connection ("too many pings"), so proxy hosts set 0 (the image's
   * provisioning does).
   */
  etcdKeepaliveIntervalSeconds: number;
  /**
   * `engine_reconcile_interval` in seconds (default 2.0). Sets the leader lease TTL (5×, as fleet) and the
   * full-resync safety net (150×, i.e. 5 minutes by default); passes themselves are event-driven.
   */
  engineReconcileIntervalSeconds: number;
  /** `public_ip` (default "": first global IPv4 address of this host). */
  publicIp: string;
  /** `metadata` (default ""): `k=v,k2=v2`, spaces trimmed, last duplicate wins. */
  metadata: Record<string, string>;
  /** `capacity_cpus` (default "": the host's CPU count, os.cpus()): CPUs this machine offers units, e.g. `3.5`; in milli-CPUs. */
  capacityCpus: number | undefined;
  /** `capacity_memory` (default "": the host's memory, os.totalmem()): bytes offered, e.g. `6G` (K/M/G/T, 1024-based). */
  capacityMemory: number | undefined;
  /** `agent_ttl` (default `30s`, Go duration): TTL of presence and states; also the new leader's grace. */
  agentTtlSeconds: number;
  /**
   * `lease_renew_interval` (default "": min(agent_ttl/3, 2s); Go duration; corefleet's own): how often
   * the machine's lease is renewed, at most agent_ttl/3. Each renewal costs etcd 3.4 a copy of its
   * uncommitted writes (fleetd/REGISTRY.md), so with thousands of machines a longer period (e.g. 10s)
   * takes that load off etcd. The price: a host's lease expires up to one period before agent_ttl
   * after it is cut off, so a cut that long minus the period plus machine_loss_grace moves its units,
   * and a cut-off host's direct checks of its lease run at this period too.
   */
  leaseRenewIntervalMs: number | undefined;
  /**
   * `machine_loss_grace` (default `10s`, Go duration; "" = the default): after a machine's presence
   * expires, how long the engine waits for it to come back before moving its units. The trade-off:
   * a host cut off from etcd for less than about agent_ttl + this (its lease expires at most 2 s
   * earlier than agent_ttl after the cut) re-registers in time and keeps its units: nothing stops,
   * nothing runs twice; a longer partition has its units moved (the host stops them when it is back).
   * A machine that is really gone (powered off) has its units moved after about agent_ttl + this.
   */
  machineLossGraceSeconds: number;
  /**
   * `rebalance_interval` (default `0`: never, Go duration): how often the leading engine's fleetd runs
   * `fleetctl rebalance --max-moves <rebalance_max_moves>` on its own. Off unless set.
   */
  rebalanceIntervalSeconds: number;
  /** `rebalance_max_moves` (default 1): the disruption budget of each automatic rebalance. */
  rebalanceMaxMoves: number;
  /** `units_directory` (default `/run/fleet/units`). */
  unitsDirectory: string;
  /** `systemd_user` (default false): use the user's systemd instead of the system one (not supported yet). */
  systemdUser: boolean;
  /** `token_limit` (default 100): API page size. */
  tokenLimit: number;
  /** `disable_engine` (default false): never lead or schedule. */
  disableEngine: boolean;
  /** `disable_watches` (default false): accepted for compatibility; watches are per machine and cheap here. */
  disableWatches: boolean;
  /** `unit_manager` (default `dbus`): `dbus` (systemd) or `memory` (tests: runs nothing). */
  unitManager: "dbus" | "memory";
  /** `machine_id_file` (default `/etc/machine-id`). */
  machineIdFile: string;
  /** `machine_id` (default "": read `machine_id_file`): override for tests running several fleetd on one host. */
  machineId: string;
  /**
   * `lease_file` (default `/run/fleet/lease`): where the agent remembers its lease ID, so a fleetd that
   * crashed and restarted within `agent_ttl` resumes its lease instead of being declared dead. "" = off.
   */
  leaseFile: string;
  /** `api_socket` (default `/var/run/fleet.sock`): unix socket when not socket-activated. */
  apiSocket: string;
  /** `api_tcp_listen` (default "": none): `host:port` of an extra TCP listener. */
  apiTcpListen: string;
  /** `api_token` (default ""): bearer token required on the TCP listener. */
  apiToken: string;
  /** `api_tcp_open` (default false): serve TCP without credentials (trusted networks only). */
  apiTcpOpen: boolean;
}

/** Bad configuration: names the key, the value and its source. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Source = { key: string; value: string; from: string };
type Spec = { parse: (s: Source) => unknown; field: keyof FleetConfig };

function fail(s: Source, why: string): never {
  throw new ConfigError(`Invalid configuration: ${s.key}="${s.value}" (from ${s.from}): ${why}`);
}

const bool = (s: Source): boolean => {
  const v = s.value.trim().toLowerCase();
  if (["true", "1", "yes", "on", "t"].includes(v)) return true;
  if (["false", "0", "no", "off", "f", ""].includes(v)) return false;
  return fail(s, "expected true or false");
};
const str = (s: Source): string => s.value.trim();
const seconds = (s: Source): number => {
  const n = Number(s.value.trim());
  if (s.value.trim() === "" || !Number.isFinite(n) || n <= 0) fail(s, "expected a positive number of seconds, e.g. 2.0");
  return n;
};
const int = (min: number, max: number) => (s: Source): number => {
  const n = Number(s.value.trim());
  if (!Number.isInteger(n) || n < min || n > max) fail(s, `expected an integer from ${min} to ${max}`);
  return n;
};

/** `k=v,k2=v2` (fleet: spaces around `=` and `,` trimmed, last duplicate wins). */
export function parseMetadata(s: Source): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of s.value.split(",")) {
    if (item.trim() === "") continue;
    const parts = item.split("=");
    if (parts.length !== 2 || parts[0]!.trim() === "" || parts[1]!.trim() === "") fail(s, `item "${item.trim()}" is not key=value`);
    out[parts[0]!.trim()] = parts[1]!.trim();
  }
  return out;
}

function parseServers(s: Source): string[] {
  const v = s.value.trim();
  let list: unknown;
  if (v.startsWith("[")) {
    try {
      list = JSON.parse(v);
    } catch {
      fail(s, 'expected a JSON list such as ["http://127.0.0.1:2379"] or a comma-separated list');
    }
  } else list = v.split(",").map((x) => x.trim()).filter((x) => x !== "");
  if (!Array.isArray(list) || list.length === 0) fail(s, "expected at least one endpoint");
  for (const e of list) if (typeof e !== "string" || !/^https?:\/\/[^/]+\/?$/.test(e)) fail(s, `endpoint ${JSON.stringify(e)} is not http(s)://host:port`);
  return list as string[];
}

const SPECS: Record<string, Spec> = {
  verbosity: { field: "verbosity", parse: int(0, 10) },
  etcd_servers: { field: "etcdServers", parse: parseServers },
  etcd_username: { field: "etcdUsername", parse: str },
  etcd_password: { field: "etcdPassword", parse: str },
  etcd_cafile: { field: "etcdCaFile", parse: str },
  etcd_certfile: { field: "etcdCertFile", parse: str },
  etcd_keyfile: { field: "etcdKeyFile", parse: str },
  etcd_key_prefix: {
    field: "etcdKeyPrefix",
    parse: (s) => {
      const v = s.value.trim();
      if (!v.startsWith("/")) fail(s, "expected a path starting with /");
      return v.endsWith("/") ? v : `${v}/`;
    },
  },
  etcd_request_timeout: { field: "etcdRequestTimeoutSeconds", parse: seconds },
  etcd_keepalive_interval: {
    field: "etcdKeepaliveIntervalSeconds",
    parse: (s) => {
      const n = Number(s.value.trim());
      if (s.value.trim() === "" || !Number.isFinite(n) || n < 0 || (n > 0 && n < 5)) fail(s, "expected 0 (no pings) or at least 5 seconds (etcd refuses more frequent pings), e.g. 6");
      return n;
    },
  },
  engine_reconcile_interval: { field: "engineReconcileIntervalSeconds", parse: seconds },
  public_ip: { field: "publicIp", parse: str },
  metadata: { field: "metadata", parse: parseMetadata },
  capacity_cpus: {
    field: "capacityCpus",
    parse: (s) => {
      if (s.value.trim() === "") return undefined;
      const milli = parseCpus(s.value, true);
      if (milli === undefined) fail(s, 'expected a number of CPUs such as 4, 3.5 or 500m, or empty for the host\'s CPU count');
      return milli;
    },
  },
  capacity_memory: {
    field: "capacityMemory",
    parse: (s) => {
      if (s.value.trim() === "") return undefined;
      const bytes = parseMemory(s.value);
      if (bytes === undefined || s.value.trim().endsWith("%") || s.value.trim() === "infinity") fail(s, "expected bytes with an optional K, M, G or T suffix such as 6G, or empty for the host's memory");
      return bytes;
    },
  },
  agent_ttl: {
    field: "agentTtlSeconds",
    parse: (s) => {
      const ms = parseGoDuration(s.value.trim());
      if (ms === undefined || ms < 1000) fail(s, "expected a Go duration of at least 1s, e.g. 30s or 1m30s");
      return Math.ceil(ms / 1000);
    },
  },
  lease_renew_interval: {
    field: "leaseRenewIntervalMs",
    parse: (s) => {
      if (s.value.trim() === "") return undefined;
      const ms = parseGoDuration(s.value.trim());
      if (ms === undefined || ms < 100) fail(s, "expected a Go duration of at least 100ms such as 10s, or empty for min(agent_ttl/3, 2s)");
      return ms;
    },
  },
  units_directory: { field: "unitsDirectory", parse: str },
  machine_loss_grace: {
    field: "machineLossGraceSeconds",
    parse: (s) => {
      if (s.value.trim() === "") return DEFAULT_MACHINE_LOSS_GRACE_SECONDS;
      const ms = parseGoDuration(s.value.trim());
      if (ms === undefined) fail(s, `expected a Go duration such as 10s, or empty for the default (${DEFAULT_MACHINE_LOSS_GRACE_SECONDS}s)`);
      return ms / 1000;
    },
  },
  rebalance_interval: {
    field: "rebalanceIntervalSeconds",
    parse: (s) => {
      if (s.value.trim() === "" || s.value.trim() === "0") return 0;
      const ms = parseGoDuration(s.value.trim());
      if (ms === undefined || ms < 1000) fail(s, "expected 0 (never: the default) or a Go duration of at least 1s such as 10m");
      return ms / 1000;
    },
  },
  rebalance_max_moves: { field: "rebalanceMaxMoves", parse: int(1, 1000) },
  systemd_user: { field: "systemdUser", parse: bool },
  token_limit: { field: "tokenLimit", parse: int(1, 65535) },
  disable_engine: { field: "disableEngine", parse: bool },
  disable_watches: { field: "disableWatches", parse: bool },
  unit_manager: {
    field: "unitManager",
    parse: (s) => {
      const v = s.value.trim();
      if (v !== "dbus" && v !== "memory") fail(s, "expected dbus or memory");
      return v;
    },
  },
  machine_id_file: { field: "machineIdFile", parse: str },
  machine_id: {
    field: "machineId",
    parse: (s) => {
      const v = s.value.trim();
      if (v !== "" && !/^[A-Za-z0-9_.-]+$/.test(v)) fail(s, "expected letters, digits, '_', '.' or '-'");
      return v;
    },
  },
  api_socket: { field: "apiSocket", parse: str },
  lease_file: { field: "leaseFile", parse: str },
  api_tcp_listen: { field: "apiTcpListen", parse: str },
  api_token: { field: "apiToken", parse: str },
  api_tcp_open: { field: "apiTcpOpen", parse: bool },
};

/** Options fleet had that we accept and ignore (with a warning). */
const IGNORED = new Set(["enable_grpc", "verify_units", "authorized_keys_file"]);

export function defaultConfig(): FleetConfig {
  return {
    verbosity: 0,
    etcdServers: ["http://127.0.0.1:2379"],
    etcdUsername: "",
    etcdPassword: "",
    etcdCaFile: "",
    etcdCertFile: "",
    etcdKeyFile: "",
    etcdKeyPrefix: "/fleet/",
    etcdRequestTimeoutSeconds: 5,
    etcdKeepaliveIntervalSeconds: 6,
    engineReconcileIntervalSeconds: 2,
    publicIp: "",
    metadata: {},
    capacityCpus: undefined,
    capacityMemory: undefined,
    agentTtlSeconds: 30,
    leaseRenewIntervalMs: undefined,
    machineLossGraceSeconds: DEFAULT_MACHINE_LOSS_GRACE_SECONDS,
    rebalanceIntervalSeconds: 0,
    rebalanceMaxMoves: 1,
    unitsDirectory: "/run/fleet/units",
    systemdUser: false,
    tokenLimit: 100,
    disableEngine: false,
    disableWatches: false,
    unitManager: "dbus",
    machineIdFile: "/etc/machine-id",
    machineId: "",
    apiSocket: "/var/run/fleet.sock",
    leaseFile: "/run/fleet/lease",
    apiTcpListen: "",
    apiToken: "",
    apiTcpOpen: false,
  };
}

/** The result of {@link buildConfig}: the configuration and warnings worth logging. */
export interface LoadedConfig {
  config: FleetConfig;
  warnings: string[];
}

/**
 * Builds the configuration from file text (may be undefined: no file) and the environment.
 * `fileName` is used in messages. Throws {@link ConfigError}.
 */
export function buildConfig(fileText: string | undefined, env: NodeJS.ProcessEnv, fileName = "fleet.conf"): LoadedConfig {
  const config = defaultConfig();
  const warnings: string[] = [];
  const set = (s: Source): void => {
    const spec = SPECS[s.key];
    if (!spec) {
      if (IGNORED.has(s.key)) warnings.push(`Ignoring configuration option ${s.key} (from ${s.from}): not supported by corefleet`);
      else if (s.from === fileName) warnings.push(`Unknown configuration option ${s.key} in ${fileName}; ignored`);
      return;
    }
    (config as unknown as Record<string, unknown>)[spec.field] = spec.parse(s);
  };
  if (fileText !== undefined) {
    const parsed = parseIni(fileText) as Record<string, unknown>;
    for (const [key, value] of Object.entries(parsed)) {
      if (typeof value === "object" && value !== null) throw new ConfigError(`Invalid configuration: ${fileName} has a section or list "${key}"; fleet.conf is key=value lines without sections`);
      set({ key, value: String(value), from: fileName });
    }
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith("FLEET_") || value === undefined) continue;
    const key = name.slice("FLEET_".length).toLowerCase();
    if (SPECS[key] || IGNORED.has(key)) set({ key, value, from: `environment variable ${name}` });
  }
  if (config.apiTcpListen && !config.apiToken && !config.apiTcpOpen) {
    throw new ConfigError(`Invalid configuration: api_tcp_listen="${config.apiTcpListen}" needs api_token (or api_tcp_open=true to serve it without authentication)`);
  }
  if (config.leaseRenewIntervalMs !== undefined && config.leaseRenewIntervalMs > (config.agentTtlSeconds * 1000) / 3) {
    throw new ConfigError(
      `Invalid configuration: lease_renew_interval=${config.leaseRenewIntervalMs / 1000}s is longer than a third of agent_ttl=${config.agentTtlSeconds}s: a lease must be renewed at least 3 times per TTL; shorten it or raise agent_ttl`,
    );
  }
  const tls = [config.etcdCertFile, config.etcdKeyFile].filter((f) => f !== "").length;
  if (tls === 1) throw new ConfigError("Invalid configuration: etcd_certfile and etcd_keyfile must be given together");
  return { config, warnings };
}
