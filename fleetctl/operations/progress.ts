/** Follows a rollout until it ends, printing each new step (`fleetctl deploy`, `rollback`). */
import type { DeploymentSummary } from "../../lib/api/deploy-types";
import { delay } from "../../lib/async/delay";
import { isTemplate } from "../../lib/unit";
import { apiFailure, transientFailure } from "../api-errors";
import { CliError } from "../cli-error";
import type { CommandContext } from "../context";

/** Poll period while following a rollout. */
export const FOLLOW_INTERVAL_MS = 250;

/** How long polls may keep failing transiently (fleetd or etcd briefly away) before following gives up. */
export const FOLLOW_OUTAGE_MS = 60_000;

/** Wait after the n-th failed poll in a row (1-based): 0.5 s doubling up to 5 s. */
function outageDelay(n: number): number {
  return Math.min(5_000, 500 * 2 ** (n - 1));
}

/**
 * Reads the deployment; transient failures (connection errors, 502/503/504, a 500 about etcd) are
 * retried with backoff for up to `outageMs`, with one note when they start and one when they end.
 */
async function pollDeployment(ctx: CommandContext, template: string, revision: number, outageMs: number): Promise<DeploymentSummary> {
  const api = await ctx.api();
  let since: number | undefined;
  for (let failures = 1; ; failures++) {
    try {
      const record = await api.getDeploymentSummary(template, ctx.signal);
      if (since !== undefined) ctx.err(`Reading the rollout of ${template} works again; following it`);
      return record;
    } catch (err) {
      const why = transientFailure(err);
      if (why === undefined) throw apiFailure(`Error following the rollout of ${template} to revision ${revision}`, err);
      since ??= Date.now();
      if (failures === 1) ctx.err(`Cannot read the rollout of ${template} (${why}); retrying for up to ${Math.round(outageMs / 1000)} s (the rollout goes on in the cluster)`);
      if (Date.now() - since + outageDelay(failures) > outageMs) {
        throw new CliError(
          `Error following the rollout of ${template} to revision ${revision}: reading it failed for ${((Date.now() - since) / 1000).toFixed(0)} s (last: ${why}); the rollout goes on in the cluster without fleetctl: see fleetctl history ${template}`,
          1,
          { cause: err },
        );
      }
      await delay(outageDelay(failures), ctx.signal);
    }
  }
}

/**
 * Waits for the rollout of `revision` to finish; returns it, throws a CliError unless it succeeded
 * (or, with `stopping`, unless it was rolled back as `fleetctl rollback` asked). Ctrl-C stops
 * following, not the rollout: a line on stderr says so and how to stop it.
 */
export async function followRollout(
  ctx: CommandContext,
  template: string,
  revision: number,
  options: { outageMs?: number; stopping?: boolean } = {},
): Promise<NonNullable<DeploymentSummary["rollout"]>> {
  try {
    return await follow(ctx, template, revision, options);
  } catch (err) {
    if (ctx.signal.aborted) {
      ctx.err(
        options.stopping === true
          ? `Stopped following; the rollback of ${template} goes on in the cluster: see fleetctl history ${template}`
          : `Stopped following; the rollout of ${template} to revision ${revision} goes on in the cluster: see fleetctl history ${template}, or stop it and roll it back with fleetctl rollback ${template}`,
      );
    }
    throw err;
  }
}

async function follow(ctx: CommandContext, template: string, revision: number, options: { outageMs?: number; stopping?: boolean }): Promise<NonNullable<DeploymentSummary["rollout"]>> {
  let last = "";
  const started = Date.now();
  for (;;) {
    const record = await pollDeployment(ctx, template, revision, options.outageMs ?? FOLLOW_OUTAGE_MS);
    const r = record.rollout;
    if (!r || r.revision !== revision) throw new CliError(`Rollout of ${template} to revision ${revision} is no longer recorded (another deploy replaced it); see fleetctl history ${template}`);
    if (r.message !== last) {
      last = r.message;
      ctx.out(`${template} revision ${revision}: ${r.message}`);
    }
    if (r.phase === "done") {
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      if (r.outcome === "succeeded") {
        ctx.out(`Rollout of ${template} to revision ${revision} succeeded in ${secs} s (most ${isTemplate(template) ? "instances" : "machines"} unavailable at once: ${r.maxUnavailableSeen})`);
        return r;
      }
      if (r.outcome === "rolled-back" && options.stopping === true) {
        ctx.out(`Rollout of ${template} to revision ${revision} stopped and rolled back in ${secs} s (${r.message})`);
        return r;
      }
      if (r.outcome === "rolled-back" && r.aborted !== undefined) {
        throw new CliError(`Rollout of ${template} to revision ${revision} was stopped by an operator at ${r.aborted} (fleetctl rollback) and rolled back`);
      }
      if (r.outcome === "rolled-back" && r.failed && !isTemplate(template)) {
        // A global unit's rollout fails on a machine (its ID), where the unit's own status is.
        const id = r.failed.instance;
        throw new CliError(
          `Rollout of ${template} to revision ${revision} failed and was rolled back: on machine ${id}, ${template} ${r.failed.reason}; see "fleetctl ssh ${id} systemctl status ${template}" and fix the body before deploying again`,
        );
      }
      if (r.outcome === "rolled-back") {
        throw new CliError(
          `Rollout of ${template} to revision ${revision} failed and was rolled back: ${r.failed?.instance ?? "an instance"} ${r.failed?.reason ?? ""}; see "fleetctl status ${r.failed?.instance ?? template}" and fix the body before deploying again`,
        );
      }
      throw new CliError(`Rollout of ${template} to revision ${revision} failed: ${r.message}`);
    }
    await delay(FOLLOW_INTERVAL_MS, ctx.signal);
  }
}
