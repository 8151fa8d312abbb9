/** Waiting on a condition in the end-to-end suite: every wait names what it waits for. */
import { delay } from "../../../lib/async/delay";

export interface WaitForOptions {
  timeoutMs: number;
  intervalMs?: number;
  signal?: AbortSignal;
}

/**
 * Calls `probe` until it returns `{ done: true, value }`. On timeout the error names `what` and the
 * last observation the probe reported, so a failure says where it stood.
 */
export async function waitFor<T>(what: string, probe: () => Promise<{ done: boolean; value: T; seen?: string }>, options: WaitForOptions): Promise<T> {
  const started = Date.now();
  let seen = "nothing yet";
  for (;;) {
    try {
      const r = await probe();
      if (r.done) return r.value;
      seen = r.seen ?? JSON.stringify(r.value);
    } catch (err) {
      seen = `error: ${err instanceof Error ? err.message.split("\n").slice(0, 3).join(" | ") : String(err)}`;
    }
    if (Date.now() - started > options.timeoutMs) {
      throw new Error(`Timed out after ${Math.round(options.timeoutMs / 1000)} s waiting for ${what}; last seen: ${seen}`);
    }
    await delay(options.intervalMs ?? 3_000, options.signal);
  }
}
