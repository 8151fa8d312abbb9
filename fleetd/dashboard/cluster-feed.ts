/**
 * One live view of the cluster per fleetd, shared by every dashboard client: a snapshot read of the
 * viewed prefixes, then etcd watches from its revision + 1 (multiplexed by etcd3 over one stream).
 * Changes are coalesced for `flushDelayMs` and sent to every subscriber as one delta. The watches run
 * only while someone looks (plus `lingerMs`, so a page reload does not re-read 10,000 units); a watch
 * that cannot resume (compaction, reconnect to a new etcd) re-reads and sends every subscriber a new
 * snapshot.
 */
import type { DashboardDelta, DashboardMachine, DashboardUnit } from "../../lib/api/dashboard-types";
import { abortReason, delay } from "../../lib/async/delay";
import type { EtcdStore, WatchChange, WatchHandle } from "../registry/etcd-store";
import { ClusterView, emptyViewTouched, viewedPrefixes, type ViewTouched } from "./cluster-view";

/** What a subscriber receives: first a snapshot, then deltas (a snapshot again after a re-read). */
export interface FeedSubscriber {
  snapshot(view: { revision: number; machines: DashboardMachine[]; units: DashboardUnit[] }): void;
  delta(delta: DashboardDelta): void;
}

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
  view: ClusterView;
  revision: number;
  watches: WatchHandle[];
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

  /** Number of subscribers right now. */
  get size(): number {
    return this.subscribers.size;
  }

  /**
   * Adds a subscriber: resolves once it got its snapshot; returns the function that removes it.
   * Rejects (etcd unavailable, aborted) without adding it.
   */
  async subscribe(subscriber: FeedSubscriber, signal: AbortSignal): Promise<() => void> {
    clearTimeout(this.lingerTimer);
    const live = await this.ensureLive(signal);
    if (signal.aborted) throw abortReason(signal);
    subscriber.snapshot({ revision: live.revision, machines: live.view.allMachines(), units: live.view.allUnits() });
    this.subscribers.add(subscriber);
    return () => this.unsubscribe(subscriber);
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
    const watches: WatchHandle[] = [];
    try {
      for (const prefix of prefixes) {
        watches.push(
          await store.watch(prefix, revision + 1, {
            onChanges: (changes, rev) => this.onChanges(generation, changes, rev),
            onError: (err) => this.onWatchError(generation, err),
          }),
        );
      }
    } catch (err) {
      await Promise.allSettled(watches.map((w) => w.close()));
      throw err;
    }
    const live: Live = { generation, view, revision, watches };
    if (this.closed.signal.aborted || generation !== this.generation) {
      await Promise.allSettled(watches.map((w) => w.close()));
      throw new Error("the dashboard feed was stopped while it started");
    }
    this.live = live;
    return live;
  }

  private onChanges(generation: number, changes: WatchChange[], revision: number): void {
    const live = this.live;
    if (!live || live.generation !== generation) return;
    for (const c of changes) live.view.apply(c, this.pending);
    this.reportProblems(live.view);
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
    for (const s of this.subscribers) s.delta(delta);
  }

  private onWatchError(generation: number, err: Error): void {
    if (this.live?.generation !== generation || this.closed.signal.aborted) return;
    this.options.onWarning?.(`Dashboard feed: ${err.message}; reading the cluster again`);
    void this.restart();
  }

  /** Re-reads from scratch and sends every subscriber a new snapshot; retries while anyone listens. */
  private async restart(): Promise<void> {
    await this.stopWatching();
    while (this.subscribers.size > 0 && !this.closed.signal.aborted) {
      try {
        const live = await this.ensureLive(this.closed.signal);
        const snapshot = { revision: live.revision, machines: live.view.allMachines(), units: live.view.allUnits() };
        for (const s of this.subscribers) s.snapshot(snapshot);
        return;
      } catch (err) {
        if (this.closed.signal.aborted) return;
        this.options.onWarning?.(`Dashboard feed: cannot read the cluster: ${(err as Error).message}; retrying`);
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
