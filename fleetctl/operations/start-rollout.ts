/**
 * Starts a rollout (`fleetctl deploy`, `rollback`) so that a lost answer neither fails the command nor
 * starts a second rollout. The request carries a `requestId` that fleetd records with the rollout.
 * When the request fails in a way that leaves its fate unknown (the connection dropped, a 502/503/504,
 * a 500 saying etcd timed out: fleetd may have written the rollout and lost only the answer), fleetctl
 * does not send it again at once: it reads the template's deployment and looks for its `requestId`.
 * Found: it follows that rollout as if the answer had come. Not found (and no other rollout running):
 * it sends the same request again after a backoff; fleetd answers a request whose `requestId` is the
 * current rollout's with that rollout's plan (`replayed`), so even a first write that lands late in
 * etcd is never recorded twice. At most {@link START_ATTEMPTS} attempts, then a clear error.
 */
import { randomUUID } from "node:crypto";
import type { ApiDeployPlan, ApiDeployRequest } from "../../lib/api/deploy-types";
import { planOfRollout, rolloutOfRequest } from "../../lib/api/deploy-plan";
import { ApiError } from "../../lib/api/client";
import { delay } from "../../lib/async/delay";
import { apiFailure, missingSocket, transientFailure } from "../api-errors";
import { CliError } from "../cli-error";
import type { CommandContext } from "../context";

/** Attempts (a request, or a look at whether the last one was recorded) before giving up. */
export const START_ATTEMPTS = 5;

/** Wait after attempt `n` (1-based): 0.5 s, 1 s, 2 s, 4 s (±20 %). */
export function startRetryDelay(n: number): number {
  return Math.min(4_000, 500 * 2 ** (n - 1)) * (0.8 + 0.4 * Math.random());
}

export interface StartedRollout {
  plan: ApiDeployPlan;
  /** Why the first answer was lost, when the plan came from a retry or from the recorded rollout. */
  lostAnswer?: string;
}

export interface StartOptions {
  attempts?: number;
  retryDelay?: (attempt: number) => number;
}

/** A new request ID (a UUID). */
export function newRequestId(): string {
  return randomUUID();
}

/**
 * Sends `request` (its `requestId` set here unless given) and returns the plan of the rollout it
 * started, recovering from lost answers as described above. `what` is "deploy" or "rollback".
 */
export async function startRollout(ctx: CommandContext, template: string, request: ApiDeployRequest, what: string, options: StartOptions = {}): Promise<StartedRollout> {
  const api = await ctx.api();
  const attempts = options.attempts ?? START_ATTEMPTS;
  const wait = options.retryDelay ?? startRetryDelay;
  const req: ApiDeployRequest = request.dryRun === true ? request : { ...request, requestId: request.requestId ?? newRequestId() };
  const failed = `Error starting the ${what} of ${template}`;
  /** Why the first answer was lost (set once a request's fate became unknown). */
  let lost: string | undefined;
  /** The last request's fate is unknown: look before sending it again. */
  let unknown = false;
  let last = "";
  for (let attempt = 1; ; attempt++) {
    if (!unknown) {
      try {
        const plan = await api.deploy(template, req, ctx.signal);
        if (lost && plan.replayed === true) ctx.err(`fleetd had recorded the ${what} of ${template} (revision ${plan.revision}) before its answer was lost; following that rollout`);
        return lost ? { plan, lostAnswer: lost } : { plan };
      } catch (err) {
        const why = missingSocket(err) ? undefined : transientFailure(err);
        // After a lost answer, a 409 may come from the first request's own write landing late in etcd
        // ("changed while starting"): look whose rollout it is before reporting it.
        const lateConflict = lost !== undefined && err instanceof ApiError && err.status === 409;
        if (why === undefined && !lateConflict) throw apiFailure(failed, err);
        last = why ?? `HTTP 409: ${(err as Error).message}`;
        if (req.dryRun === true) {
          // A plan changes nothing: simply ask again.
          ctx.err(`No answer to the ${what} plan of ${template} (attempt ${attempt} of ${attempts}: ${last}); asking again`);
        } else {
          lost ??= last;
          unknown = true;
          ctx.err(`No answer to the ${what} request of ${template} (attempt ${attempt} of ${attempts}: ${last}); checking whether fleetd recorded it`);
        }
      }
    }
    if (unknown) {
      let record;
      try {
        record = await api.getDeployment(template, ctx.signal);
      } catch (err) {
        const why = transientFailure(err);
        if (why === undefined) throw apiFailure(`${failed}: its answer was lost (${lost}), and reading the history of ${template} to see whether it was recorded failed`, err);
        last = why;
      }
      if (record) {
        const ours = rolloutOfRequest(record, req.requestId!);
        if (ours) {
          ctx.err(`The answer to the ${what} request of ${template} was lost (${lost}), but fleetd recorded it as revision ${ours.revision}; following that rollout`);
          return { plan: planOfRollout(record, ours), lostAnswer: lost! };
        }
        const running = record.rollout && record.rollout.phase !== "done" ? record.rollout : undefined;
        if (running) {
          const whose =
            running.requestId === undefined
              ? "it carries no request ID (an older fleetctl started it, or this fleetd records none), so it may be this one"
              : "another request started it";
          throw new CliError(
            `${failed}: its answer was lost (${lost}) and the rollout of revision ${running.revision} (started ${running.startedAt}) is running: ${whose} (${running.message}); follow it with fleetctl history ${template} and deploy again once it finished if needed`,
          );
        }
        // Not recorded, nothing running: sending it again is safe (and would be answered with the
        // rollout itself, should the first write still land first).
        unknown = false;
      }
    }
    if (attempt >= attempts) {
      if (unknown) {
        throw new CliError(
          `${failed}: its answer was lost (${lost}) and after ${attempts} attempts fleetctl could not find out whether fleetd recorded it (last: ${last}). It may be rolling: see fleetctl history ${template} before deploying again; check that etcd is healthy (fleetctl list-machines)`,
        );
      }
      throw new CliError(`${failed}: ${attempts} attempts failed (last: ${last}); fleetd recorded no rollout for it, nothing changed. Check that etcd is healthy (fleetctl list-machines) and run the command again`);
    }
    await delay(wait(attempt), ctx.signal);
  }
}

/**
 * Sends a request that is safe to repeat (scale to N, stop a rollout) until it is answered: a failure
 * that leaves its fate unknown (`transientFailure`, or what `alsoRetry` accepts once an answer was
 * lost) is noted on stderr ("No answer to {what} …; sending it again ({safe})") and the request sent
 * again after a backoff, at most {@link START_ATTEMPTS} times. Returns the answer and why the first
 * answer was lost, if one was.
 */
export async function sendRepeatable<T>(
  ctx: CommandContext,
  send: () => Promise<T>,
  o: {
    what: string;
    safe: string;
    alsoRetry?: (err: unknown) => string | undefined;
    refused: (err: unknown) => Error;
    exhausted: (err: unknown, first: string, last: string) => Error;
  },
): Promise<{ value: T; lostAnswer?: string }> {
  let lost: string | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      const value = await send();
      return lost ? { value, lostAnswer: lost } : { value };
    } catch (err) {
      const why = missingSocket(err) ? undefined : (transientFailure(err) ?? (lost !== undefined ? o.alsoRetry?.(err) : undefined));
      if (why === undefined) throw o.refused(err);
      lost ??= why;
      if (attempt >= START_ATTEMPTS) throw o.exhausted(err, lost, why);
      ctx.err(`No answer to ${o.what} (attempt ${attempt} of ${START_ATTEMPTS}: ${why}); sending it again (${o.safe})`);
      await delay(startRetryDelay(attempt), ctx.signal);
    }
  }
}
