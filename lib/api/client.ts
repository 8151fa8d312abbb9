/**
 * Client of fleetd's HTTP API v1 (also speaks to coreos/fleet's). Transport: a unix socket
 * (`unix:///var/run/fleet.sock`), http(s) (with CA/client certificate, optional bearer token), or any
 * byte stream the caller opens (an SSH tunnel). Used by fleetctl, the tests, the qemu tool and bench.
 *
 * List calls ask for big pages (`pageSize`, our server's extension; fleet ignores it) and follow
 * `nextPageToken` until the end, so 65,535 units take one request against fleetd.
 */
import http from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import type {
  ApiErrorBody,
  ApiMachine,
  ApiMachineMetadataOp,
  ApiUnit,
  ApiUnitState,
  UnitOption,
  UnitTargetState,
} from "./types";
import { API_BASE_PATH } from "./types";
import type { ApiDeployPlan, ApiDeployRequest, ApiScalePlan, DeploymentRecord, DeploymentSummary } from "./deploy-types";
import type { ApiRebalancePlan, ApiRebalanceRequest, ApiWhy } from "./scheduler-types";
import { StreamSocket } from "./stream-socket";
import { delay } from "../async/delay";
import { mapLimit } from "../async/map-limit";
import { retry } from "../async/retry";

/** Per-request limit through a tunnel when none is configured: a stuck channel must not hang forever. */
export const TUNNEL_REQUEST_TIMEOUT_MS = 60_000;

/** Opens one byte stream to the API server (e.g. an SSH channel); called once per connection. */
export type StreamConnector = () => Promise<Duplex>;

export interface ApiClientOptions {
  /** `unix:///path`, `file:///path`, `http://host:port` or `https://host:port`. */
  endpoint: string;
  /** Carry HTTP over streams from this connector instead of dialing the endpoint (tunnels). */
  connect?: StreamConnector;
  /** TLS material for https endpoints (PEM). */
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Sent as `Authorization: Bearer <token>` (fleetd's TCP listener). */
  token?: string;
  /**
   * Limit for one request (connecting, sending, the whole answer) in milliseconds; 0 = none. Default:
   * none for direct connections (like fleet's API client), {@link TUNNEL_REQUEST_TIMEOUT_MS} through a
   * tunnel (`connect`), where a channel can stall without any error reaching us.
   */
  requestTimeoutMs?: number;
  /** Page size asked of list endpoints. Default 65,535 (the most a fleet page token can carry). */
  pageSize?: number;
  /** Connections at most to a direct (not tunnelled) endpoint, i.e. requests in flight. Default 8. */
  maxSockets?: number;
}

/** The server answered with an error status; `message` is the server's text. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly status: number,
    message: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(message);
  }
}

/** The server could not be reached (or the connection broke). `cause` is the socket error. */
export class ApiUnreachableError extends Error {
  override readonly name = "ApiUnreachableError";
}

/** A request got no answer within the request timeout. */
export class RequestTimeoutError extends Error {
  override readonly name = "RequestTimeoutError";
}

/** A reused keep-alive connection failed before any answer (internal: decides a retry). */
class StaleConnectionError extends Error {
  constructor(readonly original: Error) {
    super(original.message, { cause: original });
  }
}

/** The endpoint URL itself is unusable. */
export class EndpointError extends Error {
  override readonly name = "EndpointError";
}

interface Target {
  kind: "unix" | "http" | "https";
  socketPath?: string;
  host?: string;
  port?: number;
  /** Path prefix in front of /fleet/v1/ (from the endpoint URL). */
  prefix: string;
}

/** Parses an endpoint like fleetctl does (scheme mandatory; no host after `unix://`). */
export function parseEndpoint(endpoint: string): Target {
  const first = endpoint.split(",")[0]!.trim();
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(first)?.[1]?.toLowerCase();
  if (!scheme) throw new EndpointError(`Invalid endpoint "${endpoint}": URL scheme undefined; use unix:///path or http(s)://host:port`);
  if (scheme === "unix" || scheme === "file") {
    const rest = first.slice(scheme.length + 3);
    if (!rest.startsWith("/")) {
      const host = rest.split("/")[0] ?? "";
      throw new EndpointError(
        `Invalid endpoint "${endpoint}": unable to connect to host ${JSON.stringify(host)} with scheme ${JSON.stringify(scheme)}; a socket path needs three slashes, e.g. unix:///var/run/fleet.sock`,
      );
    }
    return { kind: "unix", socketPath: decodeURIComponent(rest), prefix: "" };
  }
  if (scheme !== "http" && scheme !== "https") {
    throw new EndpointError(`Invalid endpoint "${endpoint}": unsupported scheme "${scheme}"; use unix, http or https`);
  }
  let url: URL;
  try {
    url = new URL(first);
  } catch (err) {
    throw new EndpointError(`Invalid endpoint "${endpoint}": ${(err as Error).message}`, { cause: err });
  }
  return {
    kind: scheme,
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port ? Number(url.port) : scheme === "https" ? 443 : 80,
    prefix: url.pathname.replace(/\/+$/, ""),
  };
}

/**
 * An http.Agent whose connections come from a stream connector (e.g. SSH channels). One connection,
 * kept alive: through a tunnel every new connection starts a `fleetctl fd-forward` process on the
 * remote host, which costs far more than queueing requests. Each stream is wrapped in a
 * {@link StreamSocket} so a connection the server closed (EOF) leaves the pool instead of being reused.
 */
class StreamAgent extends http.Agent {
  constructor(private readonly connector: StreamConnector) {
    super({ keepAlive: true, maxSockets: 1 });
  }
  override createConnection(_options: object, callback?: (err: Error | null, stream: Duplex) => void): Duplex | undefined {
    this.connector().then(
      (stream) => callback?.(null, new StreamSocket(stream)),
      (err: unknown) => callback?.(err as Error, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

interface RawResponse {
  status: number;
  body: string;
}

/** The fleet API, one method per call fleetctl makes. */
/** One unit of {@link ApiClient.putUnits}: the body of its `PUT /units/<name>`. */
export interface UnitPut {
  name: string;
  options?: readonly UnitOption[];
  desiredState?: UnitTargetState;
}

/** Unit PUTs in flight at once when the server has no `POST /units` (fleet). */
const UNIT_PUTS_IN_FLIGHT = 32;

/**
 * A unit write answered 503 (the server cannot reach etcd, or etcd is too busy to answer in time) is
 * back-pressure: `putUnits` sends it again after 0.5, 1, 2, 4, 8 s (with jitter), 6 attempts in all,
 * before reporting the 503. Unit PUTs are idempotent, so a write that landed but lost its answer is
 * harmless to repeat.
 */
const UNAVAILABLE_RETRY = { attempts: 6, initialDelayMs: 500, maxDelayMs: 8_000, retriable: (err: unknown) => isUnavailable(err), random: () => 0.5 + Math.random() / 2 } as const;
const isUnavailable = (err: unknown): boolean => err instanceof ApiError && err.status === 503;
const backOffMs = (attempt: number): number =>
  Math.round(Math.min(UNAVAILABLE_RETRY.maxDelayMs, UNAVAILABLE_RETRY.initialDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2));

export class ApiClient {
  /** The server answered `POST /units` with 405 (fleet): unit writes go one PUT each. */
  private bulkUnsupported = false;
  private readonly target: Target;
  private readonly agent: http.Agent;
  private readonly pageSize: number;

  constructor(private readonly options: ApiClientOptions) {
    this.target = parseEndpoint(options.endpoint);
    this.pageSize = options.pageSize ?? 65_535;
    if (options.connect) this.agent = new StreamAgent(options.connect);
    else if (this.target.kind === "https") {
      this.agent = new https.Agent({
        keepAlive: true,
        ...(options.maxSockets ? { maxSockets: options.maxSockets } : {}),
        ...(options.ca ? { ca: options.ca } : {}),
        ...(options.cert ? { cert: options.cert } : {}),
        ...(options.key ? { key: options.key } : {}),
      });
    } else this.agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 8 });
  }

  /** Human-readable endpoint for messages. */
  get endpoint(): string {
    return this.options.endpoint;
  }

  /** Releases keep-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  private request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<RawResponse> {
    const fullPath = `${this.target.prefix}${API_BASE_PATH}${path}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = { Accept: "application/json" };
    if (payload !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["Content-Length"] = Buffer.byteLength(payload);
    }
    if (this.options.token) headers.Authorization = `Bearer ${this.options.token}`;
    const base: http.RequestOptions = { method, path: fullPath, headers, agent: this.agent };
    if (this.options.connect) base.host = "domain-sock";
    else if (this.target.kind === "unix") {
      base.socketPath = this.target.socketPath!;
      base.host = "domain-sock";
    } else {
      base.host = this.target.host!;
      base.port = this.target.port!;
    }
    if (signal) base.signal = signal;
    const lib = this.target.kind === "https" && !this.options.connect ? https : http;
    return this.send(lib, base, payload, signal).catch((err: unknown) => {
      // A kept-alive connection the server closed just as we reused it: the request never got an
      // answer, and a GET may be repeated on a fresh connection (Node's documented remedy).
      if (err instanceof StaleConnectionError && method === "GET" && !signal?.aborted) {
        return this.send(lib, base, payload, signal).catch((again: unknown) => {
          throw this.unreachable(method, fullPath, again as Error);
        });
      }
      throw signal?.aborted ? err : this.unreachable(method, fullPath, err instanceof StaleConnectionError ? err.original : (err as Error));
    });
  }

  /** The request timeout in force: configured, else 60 s through a tunnel, else none (0). */
  private get timeoutMs(): number {
    return this.options.requestTimeoutMs ?? (this.options.connect ? TUNNEL_REQUEST_TIMEOUT_MS : 0);
  }

  /** One attempt. Settles exactly once: answer, error, abort, or the request timeout. */
  private send(lib: typeof http | typeof https, base: http.RequestOptions, payload: string | undefined, signal?: AbortSignal): Promise<RawResponse> {
    return new Promise<RawResponse>((resolve, reject) => {
      let answered = false;
      let timer: NodeJS.Timeout | undefined;
      const fail = (err: Error): void => {
        clearTimeout(timer);
        reject(req.reusedSocket && !answered && !(err instanceof RequestTimeoutError) && !signal?.aborted ? new StaleConnectionError(err) : err);
      };
      const req = lib.request(base, (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", fail);
        res.on("close", () => {
          if (!res.complete) fail(new Error("the connection closed before the whole answer arrived"));
        });
        res.on("end", () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
        });
      });
      const ms = this.timeoutMs;
      if (ms > 0) {
        const how = this.options.connect ? "through the tunnel " : "";
        timer = setTimeout(() => req.destroy(new RequestTimeoutError(`no answer ${how}within ${ms} ms (raise or set --request-timeout, in seconds; 0 = no limit)`)), ms);
      }
      req.on("error", fail);
      req.end(payload);
    });
  }

  private unreachable(method: string, path: string, err: Error): ApiUnreachableError {
    return new ApiUnreachableError(`${method} ${path} via ${this.options.endpoint} failed: ${err.message}`, { cause: err });
  }

  private async call<T>(method: string, path: string, expect: readonly number[], body?: unknown, signal?: AbortSignal): Promise<T | undefined> {
    const res = await this.request(method, path, body, signal);
    if (expect.includes(res.status)) {
      return res.body.trim() === "" ? undefined : (JSON.parse(res.body) as T);
    }
    let message = res.body.trim() || `HTTP ${res.status}`;
    try {
      const parsed = JSON.parse(res.body) as Partial<ApiErrorBody>;
      if (parsed.error?.message) message = parsed.error.message;
    } catch {
      // Not JSON (a proxy's page, say): keep the raw text as the message.
    }
    throw new ApiError(res.status, message, method, path);
  }

  private async listAll<T>(path: string, field: string, query: Record<string, string>, signal?: AbortSignal): Promise<T[]> {
    const out: T[] = [];
    let token: string | undefined;
    do {
      const params = new URLSearchParams({ ...query, pageSize: String(this.pageSize) });
      if (token) params.set("nextPageToken", token);
      const page = await this.call<Record<string, unknown>>("GET", `${path}?${params.toString()}`, [200], undefined, signal);
      const items = page?.[field];
      if (Array.isArray(items)) out.push(...(items as T[]));
      token = typeof page?.nextPageToken === "string" && page.nextPageToken !== "" ? page.nextPageToken : undefined;
    } while (token);
    return out;
  }

  /** Live machines, sorted by ID. */
  listMachines(signal?: AbortSignal): Promise<ApiMachine[]> {
    return this.listAll<ApiMachine>("machines", "machines", {}, signal);
  }

  /** Applies dynamic-metadata operations (`PATCH /machines`). */
  async patchMachines(ops: readonly ApiMachineMetadataOp[], signal?: AbortSignal): Promise<void> {
    await this.call("PATCH", "machines", [204], ops, signal);
  }

  /** All units, sorted by name. */
  listUnits(signal?: AbortSignal): Promise<ApiUnit[]> {
    return this.listAll<ApiUnit>("units", "units", {}, signal);
  }

  /** One unit, or undefined when it does not exist. */
  async getUnit(name: string, signal?: AbortSignal): Promise<ApiUnit | undefined> {
    try {
      return await this.call<ApiUnit>("GET", `units/${encodeURIComponent(name)}`, [200], undefined, signal);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** Creates (or, with other options, replaces) a unit. */
  async createUnit(unit: { name: string; options: readonly UnitOption[]; desiredState?: UnitTargetState }, signal?: AbortSignal): Promise<void> {
    await this.call("PUT", `units/${encodeURIComponent(unit.name)}`, [201, 204], unit, signal);
  }

  /**
   * Many unit PUTs (creates with options, desired-state changes without) in few requests:
   * `POST /units` to fleetd, ~1 MiB or 1,000 units per request, two requests in flight; a server
   * without it (fleet answers 405) gets one PUT per unit, 32 in flight, and is remembered. Every
   * unit is tried, a 503 again after a back-off ({@link UNAVAILABLE_RETRY}); then the first failure is
   * thrown as the `ApiError` its own PUT would have thrown.
   */
  async putUnits(units: readonly UnitPut[], signal?: AbortSignal): Promise<void> {
    const failures: ApiError[] = [];
    const one = async (u: UnitPut): Promise<void> => {
      await retry(() => this.call("PUT", `units/${encodeURIComponent(u.name)}`, [201, 204], u, signal), { ...UNAVAILABLE_RETRY, ...(signal ? { signal } : {}) }).catch((err: unknown) => {
        if (!(err instanceof ApiError)) throw err;
        failures.push(err);
      });
    };
    if (this.bulkUnsupported || units.length === 1) {
      await mapLimit(units, UNIT_PUTS_IN_FLIGHT, one);
    } else {
      const chunks: UnitPut[][] = [];
      let chunk: UnitPut[] = [];
      let bytes = 0;
      for (const u of units) {
        const size = JSON.stringify(u).length;
        if (chunk.length > 0 && (chunk.length >= 1_000 || bytes + size > 1024 * 1024)) {
          chunks.push(chunk);
          chunk = [];
          bytes = 0;
        }
        chunk.push(u);
        bytes += size;
      }
      if (chunk.length > 0) chunks.push(chunk);
      await mapLimit(chunks, 2, async (c) => {
        // Units the server answered 503 for (etcd busy or away) go again after a back-off, as a PUT
        // of its own would be retried; any other answer is final.
        let pending = c;
        for (let attempt = 1; pending.length > 0; attempt++) {
          if (this.bulkUnsupported) return void (await mapLimit(pending, UNIT_PUTS_IN_FLIGHT, one));
          const last = attempt >= UNAVAILABLE_RETRY.attempts;
          let answer: { results?: { name: string; code: number; message?: string }[] } | undefined;
          try {
            answer = await this.call("POST", "units", [200], { units: pending }, signal);
          } catch (err) {
            if (err instanceof ApiError && err.status === 405) {
              this.bulkUnsupported = true;
              continue;
            }
            if (!isUnavailable(err) || last) throw err;
            await delay(backOffMs(attempt), signal);
            continue;
          }
          const byName = new Map(pending.map((u) => [u.name, u]));
          const again: UnitPut[] = [];
          for (const r of answer?.results ?? []) {
            const unit = byName.get(r.name);
            if (r.code === 503 && !last && unit) again.push(unit);
            else if (r.code >= 300) failures.push(new ApiError(r.code, r.message ?? `HTTP ${r.code}`, "PUT", `units/${encodeURIComponent(r.name)}`));
          }
          pending = again;
          if (pending.length > 0) await delay(backOffMs(attempt), signal);
        }
      });
    }
    if (failures.length > 0) throw failures[0]!;
  }

  /** Sets the desired state of an existing unit. */
  async setUnitTargetState(name: string, desiredState: UnitTargetState, signal?: AbortSignal): Promise<void> {
    await this.call("PUT", `units/${encodeURIComponent(name)}`, [201, 204], { name, desiredState }, signal);
  }

  /** Deletes a unit; false when it did not exist. */
  async destroyUnit(name: string, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.call("DELETE", `units/${encodeURIComponent(name)}`, [204], undefined, signal);
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return false;
      throw err;
    }
  }

  /** Published unit states, sorted by unit then machine; filters read only what they name. */
  listUnitStates(filter: { machineID?: string; unitName?: string } = {}, signal?: AbortSignal): Promise<ApiUnitState[]> {
    const query: Record<string, string> = {};
    if (filter.machineID) query.machineID = filter.machineID;
    if (filter.unitName) query.unitName = filter.unitName;
    return this.listAll<ApiUnitState>("state", "states", query, signal);
  }

  /** Extension: creates or destroys numbered instances of a template to reach `instances` (`POST /scale/<template>`). */
  async scale(template: string, instances: number, options: { dryRun?: boolean } = {}, signal?: AbortSignal): Promise<ApiScalePlan> {
    return (await this.call<ApiScalePlan>("POST", `scale/${encodeURIComponent(template)}`, [200], { instances, dryRun: options.dryRun === true }, signal))!;
  }

  /** Extension: starts (or plans, with `dryRun`) a rolling deployment of a template (`POST /deployments/<template>`). */
  async deploy(template: string, request: ApiDeployRequest, signal?: AbortSignal): Promise<ApiDeployPlan> {
    return (await this.call<ApiDeployPlan>("POST", `deployments/${encodeURIComponent(template)}`, [200, 201], request, signal))!;
  }

  /** Extension: a template's revisions and its current or last rollout (`GET /deployments/<template>`). */
  async getDeployment(template: string, signal?: AbortSignal): Promise<DeploymentRecord> {
    return (await this.call<DeploymentRecord>("GET", `deployments/${encodeURIComponent(template)}`, [200], undefined, signal))!;
  }

  /**
   * Extension: the same without the rollout's per-instance lists and bodies and the revisions' texts
   * (`GET /deployments/<template>?brief=true`; a fleetd without `brief` answers the whole record).
   */
  async getDeploymentSummary(template: string, signal?: AbortSignal): Promise<DeploymentSummary> {
    return (await this.call<DeploymentSummary>("GET", `deployments/${encodeURIComponent(template)}?brief=true`, [200], undefined, signal))!;
  }

  /** Extension: per machine, why the scheduler would or would not put the unit there (`GET /why/<unit>`). */
  async why(unit: string, signal?: AbortSignal): Promise<ApiWhy> {
    return (await this.call<ApiWhy>("GET", `why/${encodeURIComponent(unit)}`, [200], undefined, signal))!;
  }

  /** Extension: moves placed units onto less loaded machines, or plans it with `dryRun` (`POST /rebalance`). */
  async rebalance(request: ApiRebalanceRequest, signal?: AbortSignal): Promise<ApiRebalancePlan> {
    return (await this.call<ApiRebalancePlan>("POST", "rebalance", [200], request, signal))!;
  }
}
