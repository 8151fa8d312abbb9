/**
 * fleet's server monitor: when no heartbeat (lease keepalive acknowledged by etcd) succeeded for
 * longer than the agent TTL, say so with fleet's own line, which operators grep for:
 * `Server monitor triggered: Monitor timed out before successful heartbeat`. Recovery is the lease
 * keeper's and the agent's (they reconnect and re-register by themselves, no unit is stopped); the
 * monitor says when heartbeats succeed again and then re-arms.
 */
import type { Clock } from "../lib/async/clock";

export const MONITOR_TRIGGERED = "Server monitor triggered: Monitor timed out before successful heartbeat";

export interface ServerMonitorOptions {
  clock: Clock;
  /** The agent TTL: how long without a heartbeat counts as timed out. */
  ttlMs: () => number;
  /** When etcd last acknowledged our lease (epoch ms), or undefined while not registered. */
  lastHeartbeatAt: () => number | undefined;
  onEvent: (e: { level: "info" | "error"; message: string }) => void;
  /** How often to look. Default a quarter of the TTL, at least 100 ms. */
  checkMs?: number;
}

export class ServerMonitor {
  private lastOk: number;
  /** The last successful heartbeat before the monitor triggered, while triggered. */
  private silentSince: number | undefined;

  constructor(private readonly options: ServerMonitorOptions) {
    this.lastOk = options.clock.now();
  }

  /** Whether the monitor has triggered and no heartbeat has succeeded since. */
  get isTriggered(): boolean {
    return this.silentSince !== undefined;
  }

  /** Looks once: triggers, or says heartbeats are back. */
  check(): void {
    const now = this.options.clock.now();
    const at = this.options.lastHeartbeatAt();
    if (at !== undefined && at > this.lastOk) this.lastOk = at;
    const timedOut = now - this.lastOk > this.options.ttlMs();
    if (timedOut && this.silentSince === undefined) {
      this.silentSince = this.lastOk;
      this.options.onEvent({ level: "error", message: MONITOR_TRIGGERED });
    } else if (!timedOut && this.silentSince !== undefined) {
      const silentMs = this.lastOk - this.silentSince;
      this.silentSince = undefined;
      this.options.onEvent({ level: "info", message: `Server monitor: heartbeat succeeded again after ${(silentMs / 1000).toFixed(1)} s without one` });
    }
  }

  /** Checks every `checkMs` until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      this.check();
      await this.options.clock.sleep(this.options.checkMs ?? Math.max(100, this.options.ttlMs() / 4), signal).catch((err: unknown) => {
        if (!signal.aborted) throw err;
      });
    }
  }
}
