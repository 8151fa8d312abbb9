/**
 * Machines whose units stay where they are for now: machines a new leader has not seen yet (until the
 * grace after it took over: their agents may simply not have re-registered) and machines whose
 * presence vanished less than the loss grace ago (a host briefly cut off from etcd keeps its units).
 */
import type { Clock } from "../../lib/async/clock";

export class MachineHolds {
  /** Machine → time until which units on it are held. */
  private readonly until = new Map<string, number>();
  /** End of the grace after taking over. */
  readonly graceUntil: number;

  constructor(
    private readonly clock: Clock,
    graceMs: number,
  ) {
    this.graceUntil = clock.now() + graceMs;
  }

  /** A machine with placements but absent from a snapshot: held until the grace after taking over (may be past). */
  holdUnseen(machine: string): void {
    if (!this.until.has(machine)) this.until.set(machine, this.graceUntil);
  }

  /** A machine whose presence vanished: held for `graceMs` from now. */
  lose(machine: string, graceMs: number): void {
    this.until.set(machine, this.clock.now() + graceMs);
  }

  /** A machine that is present: nothing to hold. */
  seen(machine: string): void {
    this.until.delete(machine);
  }

  /** Whether units on `machine` are held now. */
  held(machine: string, now = this.clock.now()): boolean {
    const until = this.until.get(machine);
    return until !== undefined && now < until;
  }

  /** Removes and returns the machines whose hold ran out. */
  takeExpired(now = this.clock.now()): string[] {
    const out: string[] = [];
    for (const [m, until] of [...this.until]) {
      if (now < until) continue;
      this.until.delete(m);
      out.push(m);
    }
    return out;
  }

  /** Milliseconds until the next hold (or the grace after taking over) ends, or Infinity. */
  msUntilNext(now = this.clock.now()): number {
    const next = Math.min(...[this.graceUntil, ...this.until.values()].filter((t) => t > now));
    return Number.isFinite(next) ? next - now : Number.POSITIVE_INFINITY;
  }
}
