/**
 * One etcd lease kept alive every min(TTL/3, 2 s) over a keepalive stream that is re-opened after
 * connection loss. The short period keeps the lease's expiry within 2 s of the moment a host lost
 * contact, so the engine's `machine_loss_grace` is measured from (almost) the real cut.
 *
 * While etcd has not acknowledged the lease for two periods, every tick also asks etcd directly
 * (a unary LeaseTimeToLive with a deadline): a failed call makes etcd3 open a fresh connection (a stream
 * on a connection whose packets were dropped may wait for TCP's back-off for tens of seconds), and the
 * first answer after an outage says at once whether the lease is still there, so a host that was cut
 * off re-registers within about a second of etcd being reachable again.
 *
 * Unlike etcd3's `Lease`, which declares the lease lost on its own after 2×TTL without contact, this
 * keeper declares loss only when etcd itself says the lease is gone (keepalive answers TTL 0, or a
 * request fails with "lease not found"). An etcd restart or leader change keeps leases alive (etcd
 * renews them on promotion), so a client must not give up on them just because etcd was away.
 */
import type { IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from "etcd3";
import { translateEtcdError, LeaseLostError } from "./errors";
import type { EtcdStore } from "./etcd-store";

export interface LeaseKeeperOptions {
  ttlSeconds: number;
  /** Keepalive period; default min(TTL/3, 2 s). */
  intervalMs?: number;
}

export class LeaseKeeper {
  private timer: NodeJS.Timeout | undefined;
  private stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> | undefined;
  private opening = false;
  private closed = false;
  private lostListeners = new Set<(err: LeaseLostError) => void>();
  private lastAckAt = Date.now();
  private probing = false;

  private constructor(
    private readonly store: EtcdStore,
    /** The lease ID as etcd prints it (decimal string). */
    readonly id: string,
    readonly ttlSeconds: number,
    private readonly intervalMs: number,
  ) {}

  /** Grants a lease and starts keeping it alive. */
  static async grant(store: EtcdStore, options: LeaseKeeperOptions, signal?: AbortSignal): Promise<LeaseKeeper> {
    const res = await store.call(`grant a ${options.ttlSeconds} s lease`, (o) => store.client.leaseClient.leaseGrant({ TTL: options.ttlSeconds }, o), signal);
    const keeper = new LeaseKeeper(store, res.ID, options.ttlSeconds, defaultInterval(options));
    keeper.start();
    return keeper;
  }

  /**
   * Resumes keeping alive a lease granted earlier (by a previous run of this process, e.g. before a
   * crash and restart). Returns undefined when etcd no longer has it.
   */
  static async resume(store: EtcdStore, leaseId: string, options: LeaseKeeperOptions, signal?: AbortSignal): Promise<LeaseKeeper | undefined> {
    const res = await store.call(`look up lease ${leaseId}`, (o) => store.client.leaseClient.leaseTimeToLive({ ID: leaseId }, o), signal);
    if (Number(res.TTL) <= 0) return undefined;
    const keeper = new LeaseKeeper(store, leaseId, options.ttlSeconds, defaultInterval(options));
    keeper.start();
    return keeper;
  }

  /** Milliseconds since etcd last confirmed the lease (for diagnostics). */
  get sinceLastAckMs(): number {
    return Date.now() - this.lastAckAt;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Called once when etcd says the lease is gone. Returns an unsubscribe function. */
  onLost(listener: (err: LeaseLostError) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  private start(): void {
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.tick();
  }

  private tick(): void {
    if (this.closed) return;
    if (this.sinceLastAckMs > 2 * this.intervalMs) this.probe();
    if (this.stream) {
      this.stream.write({ ID: this.id });
      return;
    }
    if (this.opening) return;
    this.opening = true;
    this.store.client.leaseClient
      .leaseKeepAlive()
      .then((stream) => {
        this.opening = false;
        if (this.closed) {
          stream.end();
          return;
        }
        this.stream = stream;
        const drop = (): void => {
          if (this.stream === stream) this.stream = undefined;
        };
        stream.on("data", (res: ILeaseKeepAliveResponse) => {
          if (res.TTL === "0") this.lost(new LeaseLostError(this.id, "keep the lease alive"));
          else this.lastAckAt = Date.now();
        });
        stream.on("error", drop);
        stream.on("end", drop);
        stream.write({ ID: this.id });
      })
      .catch((err: unknown) => {
        this.opening = false;
        const e = translateEtcdError(err, "open a lease keepalive stream", this.id);
        if (e instanceof LeaseLostError) this.lost(e);
        // Anything else (etcd away) is retried on the next tick.
      });
  }

  /** Asks etcd for the lease's TTL (unary call, with a deadline) while the stream gets no answers. */
  private probe(): void {
    if (this.probing) return;
    this.probing = true;
    this.store
      .call(`look up lease ${this.id}`, (o) => this.store.client.leaseClient.leaseTimeToLive({ ID: this.id }, o))
      .then(
        (res) => {
          if (Number(res.TTL) <= 0) {
            this.lost(new LeaseLostError(this.id, "keep the lease alive"));
            return;
          }
          // etcd is back and the lease lives: renew now over a fresh stream (the old one may be stuck).
          this.lastAckAt = Date.now();
          this.stream?.end();
          this.stream = undefined;
          this.tick();
        },
        (err: unknown) => {
          const e = translateEtcdError(err, `look up lease ${this.id}`, this.id);
          if (e instanceof LeaseLostError) this.lost(e);
          // Anything else (etcd still away) is retried on the next tick.
        },
      )
      .finally(() => {
        this.probing = false;
      });
  }

  /** Reports loss (idempotent) and stops keeping alive. */
  lost(err: LeaseLostError): void {
    if (this.closed) return;
    this.close();
    for (const l of [...this.lostListeners]) l(err);
  }

  /** Stops keepalives; the lease then expires after its TTL (what a crash would do). */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.stream?.end();
    this.stream = undefined;
  }

  /** Revokes the lease: every key attached to it disappears at once. Idempotent. */
  async revoke(signal?: AbortSignal): Promise<void> {
    this.close();
    try {
      await this.store.call(`revoke lease ${this.id}`, (o) => this.store.client.leaseClient.leaseRevoke({ ID: this.id }, o), signal);
    } catch (err) {
      const e = translateEtcdError(err, `revoke lease ${this.id}`, this.id);
      if (!(e instanceof LeaseLostError)) throw e;
    }
  }
}

function defaultInterval(options: LeaseKeeperOptions): number {
  return options.intervalMs ?? Math.min((options.ttlSeconds * 1000) / 3, 2_000);
}
