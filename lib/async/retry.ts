import { delay } from "./delay";

/** Retry policy as data. Defaults: 5 attempts, 200 ms doubling to at most 10 s, full jitter. */
export interface RetryOptions {
  attempts?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Which errors are worth another attempt; default: all. */
  retriable?: (err: unknown) => boolean;
  signal?: AbortSignal;
  /** Source of randomness for jitter (inject for tests). */
  random?: () => number;
  onRetry?: (err: unknown, attempt: number, waitMs: number) => void;
  /** How to wait between attempts (inject a `ManualClock`'s sleep in tests). Default: real time. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Calls `fn` until it succeeds, the policy gives up (the last error is thrown) or the signal aborts. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 5;
  const initial = options.initialDelayMs ?? 200;
  const max = options.maxDelayMs ?? 10_000;
  const random = options.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || options.signal?.aborted || !(options.retriable?.(err) ?? true)) throw err;
      const wait = Math.round(random() * Math.min(max, initial * 2 ** (attempt - 1)));
      options.onRetry?.(err, attempt, wait);
      await (options.sleep ?? delay)(wait, options.signal);
    }
  }
}
