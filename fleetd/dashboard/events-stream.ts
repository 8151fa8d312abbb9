/**
 * `GET /dashboard/v1/events`: the dashboard's live feed as Server-Sent Events. The first event is a
 * `snapshot` (everything), then `delta`s as the cluster changes; a `snapshot` again replaces
 * everything (after fleetd re-read etcd). A comment line every `heartbeatMs` keeps proxies and SSH
 * tunnels from closing an idle stream. The browser reads it with `fetch` (so it can send the bearer
 * token in a header; `EventSource` cannot), and reconnects after an error.
 *
 * Every event carries an `id:` (the feed's position). A client that reconnects with `Last-Event-ID:`
 * set to the last one it got receives, as its first event, a `delta` of what changed meanwhile when
 * the feed can tell, or else a `snapshot`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { DashboardDelta, DashboardListenerAuth, DashboardSnapshot } from "../../lib/api/dashboard-types";
import type { ClusterFeed } from "./cluster-feed";

export interface EventsStreamOptions {
  feed: ClusterFeed;
  listener: DashboardListenerAuth;
  /** This fleetd's machine ID, shown by the page. */
  servedBy?: string;
  /** Aborted when the client goes away or the API shuts down. */
  signal: AbortSignal;
  /** Default 15 s. */
  heartbeatMs?: number;
  /**
   * A client that does not read (its socket buffer holds more than this many bytes) is dropped; it
   * reconnects and gets a fresh snapshot instead of making fleetd buffer without bound. Default 32 MiB.
   */
  maxBufferedBytes?: number;
}

/** Serves one event stream until the client disconnects or the API closes. */
export async function serveEventsStream(req: IncomingMessage, res: ServerResponse, options: EventsStreamOptions): Promise<void> {
  const maxBuffered = options.maxBufferedBytes ?? 32 * 1024 * 1024;
  const done = new AbortController();
  const begin = (extra: Record<string, string> = {}): void => {
    if (res.headersSent) return;
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      "X-Accel-Buffering": "no",
      "X-Content-Type-Options": "nosniff",
      ...extra,
    });
  };
  const send = (event: string, data: unknown, id: string): void => {
    if (done.signal.aborted) return;
    begin();
    res.write(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    if (res.writableLength > maxBuffered) done.abort();
  };
  // The stream ends with its connection: left open for another request (keep-alive), it kept the
  // API's close() waiting for the client to drop it (5 s for Node's agent, more for a browser).
  const socket = req.socket;
  const end = (): void => {
    begin({ Connection: "close" });
    res.end(() => socket.end());
  };
  const lastEventId = req.headers["last-event-id"];
  let unsubscribe: () => void;
  try {
    unsubscribe = await options.feed.subscribe(
      {
        snapshot: (view, id) => {
          const snapshot: DashboardSnapshot = { ...view, listener: options.listener, ...(options.servedBy ? { servedBy: options.servedBy } : {}) };
          send("snapshot", snapshot, id);
        },
        delta: (delta: DashboardDelta, id) => send("delta", delta, id),
      },
      options.signal,
      typeof lastEventId === "string" && lastEventId !== "" ? lastEventId : undefined,
    );
  } catch (err) {
    // The API is shutting down (or the client left) while the first read was pending, or the feed is
    // already closed (fleetd stopping): not a failure. The stream ends with no event (answered 500
    // and logged as an error before); the page reconnects, to this fleetd once it is back or another.
    if (!options.signal.aborted && !options.feed.isClosed) throw err;
    req.resume();
    end();
    return;
  }
  req.resume();
  const heartbeat = setInterval(() => {
    if (!done.signal.aborted) res.write(": keep-alive\n\n");
  }, options.heartbeatMs ?? 15_000);
  try {
    await new Promise<void>((resolve) => {
      if (options.signal.aborted || done.signal.aborted) resolve();
      options.signal.addEventListener("abort", () => resolve(), { once: true });
      done.signal.addEventListener("abort", () => resolve(), { once: true });
    });
  } finally {
    done.abort();
    clearInterval(heartbeat);
    unsubscribe();
    end();
  }
}
