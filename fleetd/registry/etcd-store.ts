/**
 * A thin layer over the etcd3 client that every registry side shares: the client's fault policy as
 * data, ranges/transactions with a per-request deadline, watches from a known revision, and the one
 * place where etcd errors are translated (`./errors`).
 */
import { Etcd3, type IOptions, type IKeyValue, type IRangeResponse, type IRequestOp, type ITxnRequest, type ITxnResponse, type IWatchResponse, type Watcher } from "etcd3";
import { ExponentialBackoff, noop, type IBackoff } from "cockatiel";
import { abortReason } from "../../lib/async/delay";
import { scopeConnectionResets } from "./connection-resets";
import { installEtcd3WatchFix } from "./etcd3-watch-fix";
import { translateEtcdError } from "./errors";
import { Keys, prefixEnd } from "./keys";

/** How to reach etcd. */
export interface EtcdConnectionOptions {
  /** Endpoints, e.g. `["http://127.0.0.1:2379"]`. */
  endpoints: readonly string[];
  /** Milliseconds per etcd request before it counts as failed. Default 5000. */
  requestTimeoutMs?: number;
  /** PEM contents for TLS to etcd (all three or only the CA). */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  auth?: { username: string; password: string };
  /** Keepalive ping interval on connections with open streams; 0 = none. Default 6000 ms (see below). */
  keepaliveMs?: number;
  /** Longest wait between watch reconnect attempts. Default 1000 ms (etcd3's own default is 30 s). */
  maxWatchBackoffMs?: number;
}

/** Keys per answer of a paged snapshot read ({@link EtcdStore.rangeMany}). */
export const RANGE_PAGE_KEYS = 2_000;

/** HTTP/2 flow-control window for etcd connections (bytes): grpc-go's upper bound. */
export const ETCD_FLOW_CONTROL_WINDOW = 16 * 1024 * 1024;

/**
 * Creates an etcd3 client whose retries are ours: no hidden retries or circuit breaker inside the
 * client (callers retry with their own policy and know when etcd is down), fast watch reconnects.
 */
export function createEtcdClient(options: EtcdConnectionOptions): Etcd3 {
  installEtcd3WatchFix();
  const opts: IOptions = {
    hosts: [...options.endpoints],
    dialTimeout: options.requestTimeoutMs ?? 5_000,
    grpcOptions: {
      // Notice a silently dead connection (packets dropped, no RST) within ~12 s and reconnect on a
      // fresh one instead of waiting for TCP's retransmission back-off, which grows to minutes.
      // etcd refuses pings more often than every 5 s (--grpc-keepalive-min-time), and pings on a
      // connection without an open stream (it does not permit them: GOAWAY "too many pings"). Each
      // etcd service has its own channel (below), so only those with a stream (watches, lease
      // keepalives) ping; a unary call on a dead connection fails at its deadline, which resets it.
      // etcd 3.4's gRPC proxy accepts no pings more often than every 5 minutes: proxy hosts pass 0.
      ...(options.keepaliveMs === 0 ? {} : {
        "grpc.keepalive_time_ms": options.keepaliveMs ?? 6_000,
        "grpc.keepalive_timeout_ms": 6_000,
        "grpc.keepalive_permit_without_calls": 0,
      }),
      // etcd is usually on loopback: retry connecting quickly once it is back.
      "grpc.initial_reconnect_backoff_ms": 200,
      "grpc.max_reconnect_backoff_ms": 2_000,
      // grpc-js has no connect timeout: a connection attempt whose SYNs are dropped (a firewall, a
      // cut-off host) waits out TCP's SYN back-off (1, 2, 4, 8, 16, 32 s...), so after a long outage
      // the host reconnected only at the next retransmission, seconds to a minute after etcd was
      // reachable again, and its units could be moved meanwhile. etcd3 resets its gRPC clients after
      // every failed call (deadline, unavailable; scoped to what failed by ./connection-resets); with a
      // subchannel pool per channel that reset really opens a new TCP connection (a fresh SYN) instead
      // of reusing the shared, stuck subchannel.
      "grpc.use_local_subchannel_pool": 1,
      // grpc-js refuses answers over 4 MiB by default: a listing of ~20,000 unit records or states
      // (the engine's resync, `GET /state`) failed with RESOURCE_EXHAUSTED and the engine stopped
      // placing at ~90,000 units. etcd's own answers are bounded by its data; accept them whole.
      "grpc.max_receive_message_length": -1,
      // HTTP/2 flow-control window of each stream and of the connection. grpc-js keeps HTTP/2's
      // 64 KiB unless told (grpc-go, which fleet's etcd client used, grows it up to 16 MiB by
      // bandwidth-delay estimation). At 64 KiB a watch stream that carries a burst (thousands of
      // schedule entries, each with its unit text; the engine's watch of a bulk submit) stalls
      // etcd's send loop, its watchers fall behind ("slow" watchers) and etcd re-reads their events
      // from its backend: at 100,000 units on 10,000 machines that was half of etcd's CPU. Bounded:
      // at most this much unread data per connection.
      "grpc-node.flow_control_window": ETCD_FLOW_CONTROL_WINDOW,
    },
    faultHandling: {
      host: () => noop,
      global: noop,
      // etcd3 declares an IBackoff here but calls `.next()` on it first, as on a factory (its own default
      // is `new ExponentialBackoff()`, a factory too), so a factory is what works at run time.
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: options.maxWatchBackoffMs ?? 1_000 }) as unknown as IBackoff<unknown>,
    },
  };
  if (options.tls) {
    opts.credentials = {
      rootCertificate: options.tls.ca ?? Buffer.alloc(0),
      ...(options.tls.cert ? { certChain: options.tls.cert } : {}),
      ...(options.tls.key ? { privateKey: options.tls.key } : {}),
    };
  }
  if (options.auth) opts.auth = { username: options.auth.username, password: options.auth.password };
  const client = new Etcd3(opts);
  scopeConnectionResets(client);
  return client;
}

/** A key/value read from etcd, decoded. */
export interface StoredKv {
  key: string;
  value: Buffer;
  modRevision: number;
  createRevision: number;
  lease: string;
}

/** Result of a consistent read: the values and the revision they were read at. */
export interface Snapshot {
  revision: number;
  kvs: StoredKv[];
}

/** One change seen by a watch. */
export interface WatchChange {
  type: "put" | "delete";
  key: string;
  value: Buffer;
  modRevision: number;
}

/** A running watch; `close()` cancels it. */
export interface WatchHandle {
  close(): Promise<void>;
}

export function decodeKv(kv: IKeyValue): StoredKv {
  return {
    key: kv.key.toString("utf8"),
    value: kv.value,
    modRevision: Number(kv.mod_revision),
    createRevision: Number(kv.create_revision),
    lease: kv.lease,
  };
}

/** Shared etcd access for the registry sides. Does not own the client (the caller closes it). */
export class EtcdStore {
  readonly keys: Keys;
  private readonly timeoutMs: number;

  constructor(
    readonly client: Etcd3,
    options: { prefix: string; requestTimeoutMs?: number },
  ) {
    this.keys = new Keys(options.prefix);
    this.timeoutMs = options.requestTimeoutMs ?? 5_000;
  }

  private callOptions(): { deadline: Date } {
    return { deadline: new Date(Date.now() + this.timeoutMs) };
  }

  /** Runs one etcd call with the deadline, the signal checked, and errors translated. */
  async call<T>(operation: string, fn: (opts: { deadline: Date }) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) throw abortReason(signal);
    try {
      return await fn(this.callOptions());
    } catch (err) {
      throw translateEtcdError(err, operation);
    }
  }

  /** Every key under `prefix` (or exactly `key` when `exact`), at one revision (latest unless given). */
  async range(operation: string, prefix: string, opts: { exact?: boolean; revision?: number; signal?: AbortSignal; keysOnly?: boolean } = {}): Promise<Snapshot> {
    const res: IRangeResponse = await this.call(
      operation,
      (o) =>
        this.client.kv.range(
          {
            key: Buffer.from(prefix),
            ...(opts.exact ? {} : { range_end: prefixEnd(prefix) }),
            ...(opts.revision !== undefined ? { revision: opts.revision } : {}),
            ...(opts.keysOnly ? { keys_only: true } : {}),
          },
          o,
        ),
      opts.signal,
    );
    return { revision: Number(res.header.revision), kvs: res.kvs.map(decodeKv) };
  }

  /**
   * Several prefix ranges read as one consistent snapshot: one transaction reads the first
   * {@link RANGE_PAGE_KEYS} keys of each at one revision, and ranges with more keys continue in
   * pages at that same revision. Pages keep every answer small (a 100,000-unit cluster is ~50 MB in
   * one answer, decoded in one go). At 100,000 units on 2 cores the engine's connection still
   * dropped with pages (issue 11): that cause is not known yet.
   */
  async rangeMany(operation: string, prefixes: readonly { prefix: string; exact?: boolean; keysOnly?: boolean }[], signal?: AbortSignal): Promise<{ revision: number; results: StoredKv[][] }> {
    const request = (p: { prefix: string; exact?: boolean; keysOnly?: boolean }, from?: Buffer) => ({
      key: from ?? Buffer.from(p.prefix),
      ...(p.exact ? {} : { range_end: prefixEnd(p.prefix), limit: RANGE_PAGE_KEYS }),
      ...(p.keysOnly ? { keys_only: true } : {}),
    });
    const res = await this.txn(operation, { success: prefixes.map((p) => ({ request_range: request(p) })) }, signal);
    const revision = Number(res.header.revision);
    const results: StoredKv[][] = [];
    for (const [i, r] of res.responses.entries()) {
      const kvs = r.response_range.kvs.map(decodeKv);
      let more = r.response_range.more;
      while (more && kvs.length > 0) {
        // The next page starts right after the last key read (key + NUL), at the same revision.
        const after = Buffer.concat([Buffer.from(kvs[kvs.length - 1]!.key), Buffer.from([0])]);
        const page: IRangeResponse = await this.call(`${operation} (keys after ${kvs.length})`, (o) => this.client.kv.range({ ...request(prefixes[i]!, after), revision }, o), signal);
        for (const kv of page.kvs) kvs.push(decodeKv(kv));
        more = page.more && page.kvs.length > 0;
      }
      results.push(kvs);
    }
    return { revision, results };
  }

  async txn(operation: string, req: ITxnRequest, signal?: AbortSignal): Promise<ITxnResponse> {
    return this.call(operation, (o) => this.client.kv.txn(req, o), signal);
  }

  /**
   * Unconditional writes, all or none: a single put or delete goes as a plain Put / DeleteRange
   * request, more as one transaction. etcd 3.4 evaluates every transaction through a read that copies
   * its buffer of uncommitted writes; a put skips that: for one write on a lease, etcd's CPU per request
   * fell by about a quarter (10,000 leases renewed every 10 s plus 2,000 writes/s: 56-64 % of a core as
   * transactions, 41-45 % as puts).
   */
  async write(operation: string, ops: readonly IRequestOp[], signal?: AbortSignal): Promise<void> {
    const only = ops.length === 1 ? ops[0]! : undefined;
    if (only?.request_put) {
      const put = only.request_put;
      await this.call(operation, (o) => this.client.kv.put(put, o), signal);
    } else if (only?.request_delete_range) {
      const del = only.request_delete_range;
      await this.call(operation, (o) => this.client.kv.deleteRange(del, o), signal);
    } else if (ops.length > 0) {
      await this.txn(operation, { success: [...ops] }, signal);
    }
  }

  /**
   * Watches every key under `prefix` from `fromRevision` (inclusive; pass snapshot revision + 1). The
   * etcd3 client multiplexes all watches of one client over one gRPC stream and, after a reconnect,
   * resumes from the last revision it delivered, so no event is lost or repeated. `onError` is called
   * when the watch cannot resume (e.g. the revision was compacted): the owner must re-read and re-watch.
   */
  async watch(
    prefix: string,
    fromRevision: number,
    handlers: { onChanges: (changes: WatchChange[], revision: number) => void; onError: (err: Error) => void; onDisconnect?: () => void; onReconnect?: () => void },
  ): Promise<WatchHandle> {
    let watcher: Watcher;
    try {
      watcher = await this.client.watch().prefix(prefix).startRevision(String(fromRevision)).create();
    } catch (err) {
      throw translateEtcdError(err, `watch ${prefix}`);
    }
    /** Set by close(): a handle being closed reports nothing more to its owner. */
    let closing = false;
    watcher.on("data", (res: IWatchResponse) => {
      if (closing || res.events.length === 0) return; // closing, or a progress notification
      const changes: WatchChange[] = res.events.map((e) => ({
        type: e.type === "Delete" ? "delete" : "put",
        key: e.kv.key.toString("utf8"),
        value: e.kv.value,
        modRevision: Number(e.kv.mod_revision),
      }));
      handlers.onChanges(changes, Number(res.header.revision));
    });
    // etcd3 drops a watcher it reports an error for (e.g. canceled because its revision was
    // compacted): cancelling it then waits forever for an answer that never comes, so close() must not.
    let failed = false;
    watcher.on("error", (err) => {
      failed = true;
      if (!closing) handlers.onError(translateEtcdError(err, `watch ${prefix}`));
    });
    if (handlers.onDisconnect) watcher.on("disconnected", handlers.onDisconnect);
    if (handlers.onReconnect) watcher.on("connected", handlers.onReconnect);
    return {
      close: async () => {
        closing = true;
        if (failed) return;
        // etcd3 waits for a watch still being created to connect before it cancels it; one that etcd
        // cancels instead (its revision compacted) is dropped with an error and never connects.
        let onDropped: (() => void) | undefined;
        const dropped = new Promise<void>((resolve) => watcher.once("error", (onDropped = resolve)));
        try {
          await Promise.race([watcher.cancel(), dropped]);
        } catch (err) {
          // Cancelling while etcd is away fails; the stream goes with the client anyway.
          const e = translateEtcdError(err, `cancel watch ${prefix}`);
          if (!e.retriable) throw e;
        } finally {
          if (onDropped) watcher.removeListener("error", onDropped);
        }
      },
    };
  }
}
