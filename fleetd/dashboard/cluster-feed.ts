/**
 * One live view of the cluster per fleetd, shared by every dashboard client: a snapshot read of the
 * viewed prefixes, then etcd watches from its revision + 1 (multiplexed by etcd3 over one stream).
 * Changes are coalesced for `flushDelayMs` and sent to every subscriber as one delta. The watches run
 * only while someone looks (plus `lingerMs`, so a page reload does not re-read 10,000 units); a watch
 * that cannot resume (compaction, reconnect to a new etcd) re-reads and sends every subscriber a new
 * snapshot.
 *
 * Every event has a position (`<epoch>.<sequence>`, the SSE `id:`): a client that reconnects with the
 * last one it got (`Last-Event-ID`) is sent one delta of what changed since instead of everything, as
 * long as this feed still knows (same watches, removal not forgotten); otherwise a snapshot.
 */
import { randomBytes } from "node:crypto";
import type { DashboardDelta, DashboardMachine, DashboardUnit } from "../../lib/api/dashboard-types";
import { abortReason, delay } from "../../lib/async/delay";
import type { EtcdStore, WatchChange, WatchHandle } from "../registry/etcd-store";
import { ClusterView, emptyViewTouched, viewedPrefixes, type ViewTouched } from "./cluster-view";

/** What a subscriber receives: first a snapshot, then deltas (a snapshot again after a re-read). */
export interface FeedSubscriber {
  snapshot(view: { revision: number; machines: DashboardMachine[]; units: DashboardUnit[] }, position: string): void;
  delta(delta: DashboardDelta, position: string): void;
}

/** Removals remembered for resuming clients; a client further behind gets a snapshot. */
const MAX_TOMBSTONES = 10_000;

export interface ClusterFeedOptions {
  /** The current etcd store (a getter: fleetd reconnects on SIGHUP). */
  store: () => EtcdStore;
  /** How long changes are collected into one delta. Default 50 ms. */
  flushDelayMs?: number;
  /** How long the watches outlive the last subscriber. Default 30 s. */
  lingerMs?: number;
  /** Pause before re-reading after a watch failed. Default 1 s. */
  retryDelayMs?: number;
  /** Warnings for fleetd's log (watch failures, corrupt values). */
  onWarning?: (message: string) => void;
}

interface Live {
  generation: number;
  /** Random per start: positions of an earlier start (or another fleetd) never match. */
  epoch: string;
  view: ClusterView;
  revision: number;
  watches: WatchHandle[];
  /** Sequence number of the last event sent (deltas count up from 0, the snapshot). */
  sequence: number;
  /** Oldest sequence a client may resume from (raised when tombstones are forgotten). */
  resumableFrom: number;
  /** Sequence of the event that carried (or will carry) each object's last change or removal. */
  machineChanged: Map<string, number>;
  unitChanged: Map<string, number>;
  /** Removed objects (in removal order) → sequence of the event that carries the removal. */
  machineRemoved: Map<string, number>;
  unitRemoved: Map<string, number>;
  /** A watch failed while the others were still being created. */
  failed?: Error;
}

function position(live: Live): string {
  return `${live.epoch}.${live.sequence}`;
}

export class ClusterFeed {
  private readonly subscribers = new Set<FeedSubscriber>();
  private live: Live | undefined;
  private starting: Promise<Live> | undefined;
  private generation = 0;
  private pending: ViewTouched = emptyViewTouched();
  private pendingRevision = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private readonly closed = new AbortController();

  constructor(private readonly options: ClusterFeedOptions) {}

  /** True once `close()` was called (fleetd is shutting down): subscribing fails. */
  get isClosed(): boolean {
    return this.closed.signal.aborted;
  }

  /** Number of subscribers right now. */
  get size(): number {
    return this.subscribers.size;
  }

  /**
   * Adds a subscriber: resolves once it got its snapshot; returns the function that removes it.
   * Rejects (etcd unavailable, aborted) without adding it.
   */
  async subscribe(subscriber: FeedSubscriber, signal: AbortSignal, lastPosition?: string): Promise<() => void> {
    clearTimeout(this.lingerTimer);
    const live = await this.ensureLive(signal);
    if (signal.aborted) throw abortReason(signal);
    const since = lastPosition !== undefined ? this.resumableSequence(live, lastPosition) : undefined;
    if (since !== undefined) subscriber.delta(this.changesSince(live, since), position(live));
    else subscriber.snapshot(snapshotOf(live), position(live));
    this.subscribers.add(subscriber);
    return () => this.unsubscribe(subscriber);
  }

  /** The sequence a client at `lastPosition` can resume from, or undefined (it needs a snapshot). */
  private resumableSequence(live: Live, lastPosition: string): number | undefined {
    const dot = lastPosition.lastIndexOf(".");
    if (dot < 0 || lastPosition.slice(0, dot) !== live.epoch) return undefined;
    const seq = Number(lastPosition.slice(dot + 1));
    if (!Number.isSafeInteger(seq) || seq < live.resumableFrom || seq > live.sequence) return undefined;
    return seq;
  }

  /** One delta of everything changed or removed after event `since` (the current views). */
  private changesSince(live: Live, since: number): DashboardDelta {
    const d: DashboardDelta = { revision: live.revision, machines: [], removedMachines: [], units: [], removedUnits: [] };
    for (const [id, seq] of live.machineChanged) {
      const m = seq > since ? live.view.machine(id) : undefined;
      if (m) d.machines.push(m);
    }
    for (const [name, seq] of live.unitChanged) {
      const u = seq > since ? live.view.unit(name) : undefined;
      if (u) d.units.push(u);
    }
    for (const [id, seq] of live.machineRemoved) if (seq > since) d.removedMachines.push(id);
    for (const [name, seq] of live.unitRemoved) if (seq > since) d.removedUnits.push(name);
    return d;
  }

  private unsubscribe(subscriber: FeedSubscriber): void {
    if (!this.subscribers.delete(subscriber) || this.subscribers.size > 0) return;
    clearTimeout(this.lingerTimer);
    this.lingerTimer = setTimeout(() => void this.stopWatching(), this.options.lingerMs ?? 30_000);
    this.lingerTimer.unref();
  }

  private async ensureLive(signal: AbortSignal): Promise<Live> {
    if (this.closed.signal.aborted) throw new Error("the dashboard feed is closed (fleetd is shutting down)");
    if (this.live) return this.live;
    this.starting ??= this.start().finally(() => {
      this.starting = undefined;
    });
    const starting = this.starting;
    return new Promise<Live>((resolve, reject) => {
      const onAbort = (): void => reject(abortReason(signal));
      signal.addEventListener("abort", onAbort, { once: true });
      starting.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  /** Snapshot read, then one watch per prefix from the snapshot's revision + 1. */
  private async start(): Promise<Live> {
    const generation = ++this.generation;
    const store = this.options.store();
    const view = new ClusterView(store.keys);
    const prefixes = viewedPrefixes(store.keys);
    const { revision, results } = await store.rangeMany("read the dashboard's view of the cluster", prefixes.map((prefix) => ({ prefix })));
    view.load(results);
    this.reportProblems(view);
    const live: Live = {
      generation,
      epoch: randomBytes(6).toString("hex"),
      view,
      revision,
      watches: [],
      sequence: 0,
      resumableFrom: 0,
      machineChanged: new Map(),
      unitChanged: new Map(),
      machineRemoved: new Map(),
      unitRemoved: new Map(),
    };
    // The watches are created one after another, and each one's changes arrive as soon as it exists:
    // they are applied to this view from the start (dropping those that came before the last watch
    // was created lost them for good), and a watch failing meanwhile fails the start.
    try {
      for (const prefix of prefixes) {
        live.watches.push(
          await store.watch(prefix, revision + 1, {
            onChanges: (changes, rev) => this.onChanges(live, changes, rev),
            onError: (err) => this.onWatchError(live, err),
          }),
        );
        if (live.failed) throw live.failed;
      }
      if (this.closed.signal.aborted || generation !== this.generation) throw new Error("the dashboard feed was stopped while it started");
    } catch (err) {
      await Promise.allSettled(live.watches.map((w) => w.close()));
      throw err;
    }
    this.live = live;
    return live;
  }

  private onChanges(live: Live, changes: WatchChange[], revision: number): void {
    if (live.generation !== this.generation) return;
    const batch = emptyViewTouched();
    for (const c of changes) live.view.apply(c, batch);
    this.reportProblems(live.view);
    // Stamped with the sequence of the delta that will carry them (the next flush).
    const next = live.sequence + 1;
    stamp(batch.machines, next, (id) => live.view.machine(id) !== undefined, live.machineChanged, live.machineRemoved);
    stamp(batch.units, next, (name) => live.view.unit(name) !== undefined, live.unitChanged, live.unitRemoved);
    this.forgetOldTombstones(live);
    for (const id of batch.machines) this.pending.machines.add(id);
    for (const name of batch.units) this.pending.units.add(name);
    live.revision = Math.max(live.revision, revision);
    this.pendingRevision = live.revision;
    this.flushTimer ??= setTimeout(() => this.flush(), this.options.flushDelayMs ?? 50);
  }

  private flush(): void {
    this.flushTimer = undefined;
    const live = this.live;
    const touched = this.pending;
    this.pending = emptyViewTouched();
    if (!live || (touched.machines.size === 0 && touched.units.size === 0)) return;
    const delta = live.view.delta(touched, this.pendingRevision);
    live.sequence++;
    const at = position(live);
    for (const s of this.subscribers) s.delta(delta, at);
  }

  private forgetOldTombstones(live: Live): void {
    for (const removed of [live.machineRemoved, live.unitRemoved]) {
      while (removed.size > MAX_TOMBSTONES) {
        const [key, seq] = removed.entries().next().value as [string, number];
        removed.delete(key);
        // A client before this removal can no longer be told about it.
        live.resumableFrom = Math.max(live.resumableFrom, seq);
      }
    }
  }

  private onWatchError(live: Live, err: Error): void {
    if (live.generation !== this.generation || this.closed.signal.aborted) return;
    if (this.live !== live) {
      live.failed = err; // still starting: start() gives up and the caller retries
      return;
    }
    this.options.onWarning?.(`Dashboard feed: ${err.message}; reading the cluster again`);
    void this.restart();
  }

  /** Re-reads from scratch and sends every subscriber a new snapshot; retries while anyone listens. */
  private async restart(): Promise<void> {
    await this.stopWatching();
    while (this.subscribers.size > 0 && !this.closed.signal.aborted) {
      try {
        const live = await this.ensureLive(this.closed.signal);
        const snapshot = snapshotOf(live);
        for (const s of this.subscribers) s.snapshot(snapshot, position(live));
        return;
      } catch (err) {
        if (this.closed.signal.aborted) return;
        this.options.onWarning?.(`Dashboard feed: cannot read the cluster: ${(err as Error).message}; retrying`);
        // Rejects only when the feed is closed, which the next pass checks.
        await delay(this.options.retryDelayMs ?? 1_000, this.closed.signal).catch(() => undefined);
      }
    }
  }

  private async stopWatching(): Promise<void> {
    const live = this.live;
    this.live = undefined;
    this.generation++;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.pending = emptyViewTouched();
    if (live) await Promise.allSettled(live.watches.map((w) => w.close()));
  }

  private reportProblems(view: ClusterView): void {
    for (const p of view.problems.splice(0)) this.options.onWarning?.(`Dashboard feed: ${p}`);
  }

  /** Stops the watches; subscribers get nothing more (their streams end with the API). */
  async close(): Promise<void> {
    this.closed.abort(new Error("the dashboard feed is closed"));
    clearTimeout(this.lingerTimer);
    this.subscribers.clear();
    await this.stopWatching();
  }
}

function snapshotOf(live: Live): { revision: number; machines: DashboardMachine[]; units: DashboardUnit[] } {
  return { revision: live.revision, machines: live.view.allMachines(), units: live.view.allUnits() };
}

/** Records the sequence that carries each touched object's change (or its removal). */
function stamp(touched: ReadonlySet<string>, seq: number, exists: (key: string) => boolean, changed: Map<string, number>, removed: Map<string, number>): void {
  for (const key of touched) {
    removed.delete(key);
    if (exists(key)) {
      changed.set(key, seq);
    } else {
      changed.delete(key);
      removed.set(key, seq);
    }
  }
}
