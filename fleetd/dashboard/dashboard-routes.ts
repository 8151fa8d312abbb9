/**
 * The dashboard's HTTP routes on fleetd's API listeners. The page, its script and stylesheet hold no
 * cluster data and are served to anyone who reaches the listener (a browser cannot send a bearer
 * token when it navigates); everything with data (`/dashboard/v1/…`, and the fleet API the page calls
 * for details and actions) goes through the listener's credentials like any API request.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { DASHBOARD_EVENTS_PATH, type DashboardListenerAuth } from "../../lib/api/dashboard-types";
import { BackendUnavailableError } from "../api/backend";
import { HttpError } from "../api/http-io";
import { EtcdUnavailableError } from "../registry/errors";
import { loadDashboardAssets, type DashboardAssetFiles } from "./assets";
import type { ClusterFeed } from "./cluster-feed";
import { serveEventsStream } from "./events-stream";

/** The page may run only its own script and talk only to its own origin; nothing may frame it. */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const ASSETS: Record<string, { file: keyof Omit<DashboardAssetFiles, "etag">; type: string }> = {
  "/": { file: "html", type: "text/html; charset=utf-8" },
  "/dashboard/app.js": { file: "js", type: "text/javascript; charset=utf-8" },
  "/dashboard/app.css": { file: "css", type: "text/css; charset=utf-8" },
};

export interface DashboardRoutes {
  /** True for the static files' paths, which need no credentials (whatever the method). */
  isAsset(path: string): boolean;
  /** Serves GET and HEAD; any other method is an `HttpError` 405 with `Allow: GET, HEAD`. */
  serveAsset(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
  /** True for the data paths (`/dashboard/v1/…`), which follow the listener's credentials. */
  isData(path: string): boolean;
  /** Serves a data path; resolves when the answer (a stream for events) is complete. */
  serveData(req: IncomingMessage, res: ServerResponse, ctx: { path: string; listener: DashboardListenerAuth; signal: AbortSignal }): Promise<void>;
}

export interface DashboardRoutesOptions {
  feed: ClusterFeed;
  /** This fleetd's machine ID. */
  servedBy?: string;
  /** Default: {@link loadDashboardAssets}. */
  assets?: () => Promise<DashboardAssetFiles>;
  /** SSE heartbeat period (default 15 s). */
  heartbeatMs?: number;
}

export function createDashboardRoutes(options: DashboardRoutesOptions): DashboardRoutes {
  const assets = options.assets ?? loadDashboardAssets;
  return {
    isAsset: (path) => Object.hasOwn(ASSETS, path),
    async serveAsset(req, res, path) {
      if (req.method !== "GET" && req.method !== "HEAD") {
        throw new HttpError(405, `method ${req.method ?? "?"} not allowed on ${path}: use GET or HEAD`, { headers: { Allow: "GET, HEAD" } });
      }
      const asset = ASSETS[path]!;
      const files = await assets();
      const body = files[asset.file];
      const headers: Record<string, string | number> = {
        "Content-Type": asset.type,
        "Cache-Control": "no-cache",
        ETag: files.etag,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
      };
      if (asset.file === "html") {
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY;
        headers["X-Frame-Options"] = "DENY";
      }
      req.resume();
      if (req.headers["if-none-match"] === files.etag) {
        res.writeHead(304, headers);
        res.end();
        return;
      }
      headers["Content-Length"] = Buffer.byteLength(body);
      res.writeHead(200, headers);
      res.end(req.method === "HEAD" ? undefined : body);
    },
    isData: (path) => path.startsWith("/dashboard/v1/"),
    async serveData(req, res, ctx) {
      if (ctx.path !== DASHBOARD_EVENTS_PATH) throw new HttpError(404, `no such resource: ${ctx.path}`);
      if (req.method !== "GET") throw new HttpError(405, `method not allowed on ${ctx.path}: use GET`, { headers: { Allow: "GET" } });
      try {
        await serveEventsStream(req, res, {
          feed: options.feed,
          listener: ctx.listener,
          signal: ctx.signal,
          ...(options.servedBy ? { servedBy: options.servedBy } : {}),
          ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
        });
      } catch (err) {
        // The feed's first read failed before the stream began: the API's 503, like every other route.
        if (err instanceof EtcdUnavailableError) throw new BackendUnavailableError(err.message, { cause: err });
        throw err;
      }
    },
  };
}
