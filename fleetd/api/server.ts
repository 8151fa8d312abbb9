/**
 * fleetd's HTTP API v1, compatible with coreos/fleet's: routing under `/fleet/v1/` and `/v1-alpha/`,
 * the `Server` header, JSON errors, 503 while fleetd is not registered, and per-listener credentials.
 *
 * Entry point for fleetd's server: `createApiServer({ backend, version, tokenLimit })`, then
 * `api.listen(spec)` once per listener (see `listeners.ts` for `apiListenersFromConfig`), and
 * `api.close()` on shutdown.
 */
import { createServer, maxHeaderSize, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { API_UNAVAILABLE_MESSAGE } from "../../lib/api/types";
import type { DashboardRoutes } from "../dashboard/dashboard-routes";
import type { ApiBackend } from "./backend";
import { hasBearerToken, openListenerAllows } from "./bearer-auth";
import { discoveryDocument } from "./discovery";
import { errorResponse, HttpError, sendError, sendJson } from "./http-io";
import { bindListener, type ApiListenerSpec, type BoundListener } from "./listeners";
import { machines } from "./machines-resource";
import { ListingSnapshots } from "./paging";
import type { OperationsBackend } from "./operations-backend";
import { deploymentItem, scaleItem } from "./operations-resource";
import { rebalance, whyItem, type SchedulerBackend } from "./scheduler-resource";
import { listStates, stateItem } from "./state-resource";
import { listUnits, putUnits, unitItem, type ResourceContext } from "./units-resource";

export interface ApiServerOptions {
  backend: ApiBackend;
  /** fleetd's version, sent as `Server: fleetd/<version>`. */
  version: string;
  /** Scale and rolling deployments (`/scale/…`, `/deployments/…`); absent = those paths answer 404. */
  operations?: OperationsBackend;
  /** `fleetctl why` and `fleetctl rebalance` (`/why/…`, `/rebalance`); absent = those paths answer 404. */
  scheduler?: SchedulerBackend;
  /** Default page size of list responses (fleet's `token_limit`, default 100). */
  tokenLimit?: number;
  /** Called with every request that failed with a 5xx, for fleetd's log (libraries do not log). */
  onError?: (err: unknown, req: IncomingMessage) => void;
  /** The web dashboard (`fleetd/dashboard/`): its page at `/`, its live feed under `/dashboard/v1/`. */
  dashboard?: DashboardRoutes;
}

/** Who may use a listener: anybody who can reach it, or only holders of a bearer token. */
export type ListenerAuth = { kind: "open" } | { kind: "bearer"; token: string };

export interface ApiServer {
  /** Serves one request (exposed for embedding and tests). */
  handle(req: IncomingMessage, res: ServerResponse, auth?: ListenerAuth): void;
  /** Starts serving on a listener; resolves when it accepts connections. */
  listen(spec: ApiListenerSpec): Promise<BoundListener>;
  /** Stops every listener and waits for in-flight requests; unix socket files are removed. */
  close(): Promise<void>;
}

/** Default `token_limit`. */
export const DEFAULT_TOKEN_LIMIT = 100;

const PREFIXES = ["/fleet/v1", "/v1-alpha"];

/**
 * The request target as a URL, or undefined when it does not parse. A target starting with "/" is a
 * path: `new URL("//", base)` took "//…" for a host and threw (in the request listener, outside any
 * catch: one `GET //` from anyone who reached a listener stopped fleetd), and `//fleet/v1/units` became
 * the path `/v1/units` of host "fleet".
 */
function requestUrl(target: string): URL | undefined {
  try {
    return new URL(target.startsWith("/") ? `http://domain-sock${target}` : target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ERR_INVALID_URL") return undefined;
    throw err;
  }
}

/** Creates the API server; nothing listens until `listen()` is called. */
export function createApiServer(options: ApiServerOptions): ApiServer {
  const tokenLimit = options.tokenLimit ?? DEFAULT_TOKEN_LIMIT;
  if (!Number.isInteger(tokenLimit) || tokenLimit < 1 || tokenLimit > 0xffff) {
    throw new Error(`Cannot create the fleet API: token_limit ${tokenLimit} is out of range; use an integer from 1 to 65535`);
  }
  const servers: { server: Server; bound: BoundListener }[] = [];
  // Each request's own abort (its client went away, or the API closes). One controller per request
  // and no listener on a shared signal: EventTarget listeners were a tenth of a PUT's CPU.
  const inFlight = new Map<AbortController, { req: IncomingMessage; res: ServerResponse }>();
  let closed = false;
  const listings = new ListingSnapshots();
  // fleet's message, unless fleetd knows better (another live machine holds its ID: etcd is fine).
  const notRegistered = (): HttpError => new HttpError(503, options.backend.unregisteredReason?.() ?? API_UNAVAILABLE_MESSAGE);

  const route = async (req: IncomingMessage, res: ServerResponse, url: URL, auth: ListenerAuth, signal: AbortSignal): Promise<void> => {
    const path = url.pathname;
    if (path === "/") throw new HttpError(405, "method not allowed: the API lives under /fleet/v1/");
    const dashboard = options.dashboard;
    if (dashboard?.isData(path)) {
      if (!options.backend.isRegistered()) throw notRegistered();
      await dashboard.serveData(req, res, { path, listener: auth.kind, signal });
      return;
    }
    const prefix = PREFIXES.find((p) => path === p || path.startsWith(`${p}/`));
    if (prefix === undefined) throw new HttpError(404, `no such resource: ${path}`);
    if (!options.backend.isRegistered()) throw notRegistered();
    // HEAD is GET without the body (Node sends none for a HEAD request): `curl -I` and monitoring
    // probes got 405 with `Allow: GET`. Not for the dashboard's feed above, a stream that never ends.
    if (req.method === "HEAD") req.method = "GET";
    const rest = path.slice(prefix.length).replace(/^\/+/, "");
    const ctx: ResourceContext = { req, res, backend: options.backend, query: url.searchParams, tokenLimit, listings, signal };
    const [resource, ...tail] = rest.split("/");
    const item = tail.length > 0 ? decodeURIComponent(tail.join("/")) : undefined;
    if (item !== undefined && (item === "" || item.includes("/"))) throw new HttpError(404, `no such resource: ${path}`);
    switch (resource) {
      case "discovery":
      case "discovery.json":
        if (item !== undefined) break;
        if (req.method !== "GET") throw new HttpError(400, "only GET is supported on /discovery");
        sendJson(res, 200, discoveryDocument(prefix));
        return;
      case "machines":
        if (item !== undefined) break;
        await machines(ctx);
        return;
      case "units":
        if (item === undefined) {
          if (req.method === "POST") await putUnits(ctx);
          else if (req.method === "GET") await listUnits(ctx);
          else throw new HttpError(405, "method not allowed on /units: use GET (list) or POST (many PUTs in one request)", { headers: { Allow: "GET, POST" } });
        } else {
          await unitItem(ctx, item);
        }
        return;
      case "state":
        if (item === undefined) await listStates(ctx);
        else await stateItem(ctx, item);
        return;
      case "scale":
        if (item === undefined) break;
        await scaleItem(ctx, options.operations, item);
        return;
      case "deployments":
        if (item === undefined) break;
        await deploymentItem(ctx, options.operations, item);
        return;
      case "why":
        if (item === undefined) break;
        await whyItem(ctx, options.scheduler, item);
        return;
      case "rebalance":
        if (item !== undefined) break;
        await rebalance(ctx, options.scheduler);
        return;
    }
    throw new HttpError(404, `no such resource: ${path}`);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, auth: ListenerAuth = { kind: "open" }): void => {
    res.setHeader("Server", `fleetd/${options.version}`);
    const url = requestUrl(req.url ?? "/");
    if (url === undefined) {
      req.resume();
      sendError(res, 400, `malformed request target ${JSON.stringify(req.url)}: send a path such as /fleet/v1/units`);
      return;
    }
    const dashboard = options.dashboard;
    const assetPath = url.pathname;
    if (dashboard?.isAsset(assetPath)) {
      // The page holds no cluster data, and a browser cannot send a bearer token when it navigates
      // (nor does a wrong method's 405 need one).
      serveAsset(dashboard, req, res, assetPath);
      return;
    }
    if (auth.kind === "open" && !openListenerAllows(req)) {
      req.resume();
      sendError(res, 403, `refused: this listener needs no token, so it answers a browser only at an IP address or localhost, not at "${req.headers.host ?? ""}" (a page of that site could be one that points its name at this host); open http://127.0.0.1:<port>/ (fleetctl dashboard), or use a listener with an api_token`);
      return;
    }
    if (auth.kind === "bearer" && !hasBearerToken(req, auth.token)) {
      req.resume();
      sendError(res, 401, "missing or wrong credentials: send \"Authorization: Bearer <api_token>\" (see fleetd's api_token option)", {
        "WWW-Authenticate": 'Bearer realm="fleet"',
      });
      return;
    }
    const requestAbort = new AbortController();
    if (closed) requestAbort.abort(new Error("fleet API is shutting down"));
    inFlight.set(requestAbort, { req, res });
    const abortRequest = (): void => requestAbort.abort(new Error("client closed the connection"));
    res.on("close", abortRequest);
    route(req, res, url, auth, requestAbort.signal)
      .catch((err: unknown) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        const [status, message, headers] = errorResponse(err);
        if (status >= 500) options.onError?.(err, req);
        req.resume();
        sendError(res, status, message, headers);
      })
      .finally(() => {
        res.off("close", abortRequest);
        inFlight.delete(requestAbort);
      });
  };

  const serveAsset = (dashboard: DashboardRoutes, req: IncomingMessage, res: ServerResponse, path: string): void => {
    dashboard.serveAsset(req, res, path).catch((err: unknown) => {
      if (err instanceof HttpError && !res.headersSent) {
        req.resume();
        sendError(res, err.status, err.message, err.headers);
        return;
      }
      options.onError?.(err, req);
      if (res.headersSent) res.destroy();
      else sendError(res, 500, `internal error: cannot serve the dashboard's ${path}: ${(err as Error).message}`);
    });
  };

  return {
    handle,
    async listen(spec) {
      const auth: ListenerAuth =
        spec.kind === "tcp" && spec.token !== undefined ? { kind: "bearer", token: spec.token } : { kind: "open" };
      const server = createServer((req, res) => handle(req, res, auth));
      server.keepAliveTimeout = 30_000;
      server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket, options.version));
      const bound = await bindListener(server, spec);
      servers.push({ server, bound });
      return bound;
    },
    async close() {
      closed = true;
      for (const [request, { req, res }] of inFlight) {
        request.abort(new Error("fleet API is shutting down"));
        // A request whose body is still arriving would hold close() for as long as its client pleases
        // (a stalled upload: until Node's 5-minute request timeout): answered now, connection closed.
        // Its handler, still reading the body, ends when the connection does, and its signal is
        // aborted, so nothing of it is written.
        if (!req.complete && !res.headersSent) {
          res.setHeader("Connection", "close");
          sendError(res, 503, "fleet API is shutting down: send the request again once fleetd is back, or to another fleetd");
        }
      }
      await Promise.all(
        servers.splice(0).map(
          ({ server, bound }) =>
            new Promise<void>((resolve) => {
              server.close(() => {
                void bound.cleanup().finally(resolve);
              });
              server.closeIdleConnections();
            }),
        ),
      );
    },
  };
}

/**
 * A request Node's HTTP parser refused before it reached {@link ApiServer.handle}: Node answered a bare
 * `431` or `400` with no body (a URL over 16 KiB, such as a unit name of 70,000 characters, or a broken
 * request line); it now gets the API's JSON error saying what to change. The connection is closed.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, version: string): void {
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, message] =
    err.code === "HPE_HEADER_OVERFLOW"
      ? [431, `request line and headers too large: over ${maxHeaderSize} bytes, the most fleetd reads; shorten the URL (a unit name is at most 256 characters) or the headers`]
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, "request not received in time: send the whole request (headers and body) without pausing, then retry"]
        : [400, `malformed HTTP request (${err.code ?? err.message}): send an HTTP/1.1 request such as "GET /fleet/v1/units HTTP/1.1"`];
  const body = JSON.stringify({ error: { code: status, message } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\nServer: fleetd/${version}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
