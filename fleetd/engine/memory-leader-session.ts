/**
 * Leadership granted and taken away by the test (`elect`, `depose`): several engines on one
 * `MemoryScheduleStore`, each with its own session, fail over exactly when the test says. A session
 * that leads holds a lease id; `MemoryPlacementWriter` writes only while its session leads.
 */
import type { LeaderSession } from "./leader-session";

let nextLease = 1;

export class MemoryLeaderSession implements LeaderSession {
  private leading = false;
  private lease = "0";
  private readonly listeners = new Set<(leader: boolean) => void>();
  /** Events for tests: "resigned", "abandoned". */
  readonly ended: string[] = [];

  get isLeader(): boolean {
    return this.leading;
  }

  /** The lease this session leads on ("0" when it does not lead). */
  get leaseId(): string {
    return this.leading ? this.lease : "0";
  }

  onChange(listener: (leader: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  run(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }

  /** Makes this session the leader. */
  elect(): void {
    this.lease = String(nextLease++);
    this.set(true);
  }

  /** Takes leadership away (another engine was elected, or the lease expired). */
  depose(): void {
    this.set(false);
  }

  resign(): Promise<void> {
    this.ended.push("resigned");
    this.set(false);
    return Promise.resolve();
  }

  abandon(): void {
    this.ended.push("abandoned");
    this.set(false);
  }

  private set(value: boolean): void {
    if (this.leading === value) return;
    this.leading = value;
    for (const l of [...this.listeners]) l(value);
  }
}
