/**
 * One engine leader at a time: the leader holds `P/engine/leader` on its own lease (create-only).
 * Others watch the key and campaign again when it disappears (leader left or its lease expired).
 * Every placement write of the leader is guarded by "leader key is on my lease" (`leaderGuard`), so
 * an engine that lost leadership without noticing yet cannot write.
 */
import type { ICompare } from "etcd3";
import { delay } from "../../lib/async/delay";
import { isRetriable, LeaseLostError } from "../registry/errors";
import type { EtcdStore, WatchHandle } from "../registry/etcd-store";
import { LeaseKeeper } from "../registry/lease-keeper";
import { Waker } from "../common/waker";

export interface LeaderElectionOptions {
  machineId: string;
  /** TTL of the leader lease; fleet used 5 × engine_reconcile_interval. */
  ttlSeconds: number;
  onEvent?: (e: { level: "info" | "warn"; message: string }) => void;
  /** Wait between campaign attempts while etcd is away. Default 1000 ms. */
  retryMs?: number;
}

export class LeaderElection {
  private lease: LeaseKeeper | undefined;
  private leading = false;
  private readonly listeners = new Set<(leader: boolean) => void>();
  private readonly emit: NonNullable<LeaderElectionOptions["onEvent"]>;
  private readonly waker = new Waker();

  constructor(
    private readonly store: EtcdStore,
    private readonly options: LeaderElectionOptions,
  ) {
    this.emit = options.onEvent ?? (() => undefined);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  get leaseId(): string | undefined {
    return this.leading ? this.lease?.id : undefined;
  }

  /** Compare that holds only while we lead; add it to every guarded transaction. */
  leaderGuard(): ICompare {
    return { key: Buffer.from(this.store.keys.leader), target: "Lease", result: "Equal", lease: this.lease?.id ?? "0" };
  }

  /** Called with true when leadership is acquired and false when it is lost. */
  onChange(listener: (leader: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private setLeading(value: boolean): void {
    if (this.leading === value) return;
    this.leading = value;
    this.emit({ level: "info", message: value ? `Engine leadership acquired by ${this.options.machineId}` : `Engine leadership lost by ${this.options.machineId}` });
    for (const l of [...this.listeners]) l(value);
  }

  /** Campaigns until `signal` aborts; then resigns (deletes the key by revoking the lease). */
  async run(signal: AbortSignal): Promise<void> {
    const key = Buffer.from(this.store.keys.leader);
    let watch: WatchHandle | undefined;
    try {
      while (!signal.aborted) {
        try {
          if (!this.lease || this.lease.isClosed) {
            this.setLeading(false);
            this.lease = await LeaseKeeper.grant(this.store, { ttlSeconds: this.options.ttlSeconds }, signal);
            this.lease.onLost(() => {
              this.setLeading(false);
              this.nudge();
            });
          }
          const res = await this.store.txn(
            "campaign for engine leadership",
            {
              compare: [{ key, target: "Version", result: "Equal", version: 0 }],
              success: [{ request_put: { key, value: Buffer.from(this.options.machineId), lease: this.lease.id } }],
              failure: [{ request_range: { key } }],
            },
            signal,
          );
          const holder = res.succeeded ? undefined : res.responses[0]?.response_range.kvs[0];
          if (res.succeeded || holder?.lease === this.lease.id) {
            this.setLeading(true);
          } else {
            this.setLeading(false);
            if (holder) this.emit({ level: "info", message: `Engine leader is ${holder.value.toString()}` });
          }
          // Sleep until the leader key changes or our lease is lost; then look again.
          await watch?.close();
          watch = await this.store.watch(this.store.keys.leader, Number(res.header.revision) + 1, {
            onChanges: (changes) => {
              if (changes.some((c) => c.type === "delete")) this.nudge();
            },
            onError: () => this.nudge(),
          });
          await this.waker.wait(signal);
        } catch (err) {
          if (signal.aborted) break;
          if (err instanceof LeaseLostError && this.lease) {
            // etcd refused a put on our lease ("lease not found"): it expired, even if its keepalives
            // have not said so yet (a stream stuck on a saturated connection). Campaign on a new one
            // at once; retrying on the dead lease would fail forever and leave the cluster leaderless.
            this.emit({ level: "warn", message: `Engine election: lease ${this.lease.id} expired; campaigning on a new lease` });
            this.lease.lost(new LeaseLostError(this.lease.id, "campaign for engine leadership", { cause: err }));
            continue;
          }
          // Keep campaigning whatever failed: an engine that gives up can leave the cluster leaderless.
          this.emit({ level: "warn", message: `Engine election${isRetriable(err) ? "" : " (unexpected error)"}: ${(err as Error).message}` });
          // Rejects only when aborted, which ends the loop.
          await delay(this.options.retryMs ?? 1_000, signal).catch(() => undefined);
        }
      }
    } finally {
      // Expected: closing fails only while etcd is away; the stream goes with the client.
      await watch?.close().catch(() => undefined);
    }
  }

  private nudge(): void {
    this.waker.notify();
  }

  /** Resigns: revoking the lease deletes the leader key at once, so another engine takes over. */
  async resign(): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    this.setLeading(false);
    await lease?.revoke().catch((err: unknown) =>
      this.emit({ level: "warn", message: `Cannot revoke the engine leader lease: ${(err as Error).message}; another engine takes over when it expires` }),
    );
  }

  /** Stops keepalives without revoking (as a crash would): leadership passes after the TTL. */
  abandon(): void {
    this.lease?.close();
    this.lease = undefined;
    this.setLeading(false);
  }
}
