/**
 * A level-triggered wake-up: `notify()` before `wait()` is not lost (the next `wait()` returns at once).
 * Loops that sleep "until something changed" use it instead of polling.
 */
import { systemClock, type Clock } from "../../lib/async/clock";

export class Waker {
  private pending = false;
  private resolve: (() => void) | undefined;

  constructor(private readonly clock: Clock = systemClock) {}

  notify(): void {
    this.pending = true;
    const r = this.resolve;
    this.resolve = undefined;
    r?.();
  }

  /** Resolves at the next (or a missed) `notify()`, after `timeoutMs` if given, or when `signal` aborts. */
  wait(signal: AbortSignal, timeoutMs?: number): Promise<void> {
    if (this.pending || signal.aborted) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        cancel?.();
        signal.removeEventListener("abort", done);
        this.pending = false;
        if (this.resolve === done) this.resolve = undefined;
        resolve();
      };
      const cancel = timeoutMs !== undefined && Number.isFinite(timeoutMs) ? this.clock.setTimer(timeoutMs, done) : undefined;
      this.resolve = done;
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
