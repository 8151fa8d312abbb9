/**
 * Time as a dependency: code that waits or compares deadlines takes a `Clock`, so tests drive it
 * with a {@link ManualClock} (`./manual-clock`) instead of sleeping.
 */
import { delay } from "./delay";

export interface Clock {
  /** Milliseconds since the epoch (like `Date.now()`). */
  now(): number;
  /** Waits `ms`, or rejects with the signal's reason as soon as it aborts (like `delay`). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Calls `fn` after `ms`; the returned function cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: delay,
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};
