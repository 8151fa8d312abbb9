/** Follows a rollout until it ends, printing each new step (`fleetctl deploy`, `rollback`). */
import type { DeploymentRecord, RolloutRecord } from "../../lib/api/deploy-types";
import { delay } from "../../lib/async/delay";
import { CliError } from "../cli-error";
import type { CommandContext } from "../context";

/** Poll period while following a rollout. */
export const FOLLOW_INTERVAL_MS = 250;

/** Waits for the rollout of `revision` to finish; returns it, throws a CliError unless it succeeded. */
export async function followRollout(ctx: CommandContext, template: string, revision: number): Promise<RolloutRecord> {
  const api = await ctx.api();
  let last = "";
  const started = Date.now();
  for (;;) {
    const record: DeploymentRecord = await api.getDeployment(template, ctx.signal);
    const r = record.rollout;
    if (!r || r.revision !== revision) throw new CliError(`Rollout of ${template} to revision ${revision} is no longer recorded (another deploy replaced it); see fleetctl history ${template}`);
    if (r.message !== last) {
      last = r.message;
      ctx.out(`${template} revision ${revision}: ${r.message}`);
    }
    if (r.phase === "done") {
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      if (r.outcome === "succeeded") {
        ctx.out(`Rollout of ${template} to revision ${revision} succeeded in ${secs} s (most instances unavailable at once: ${r.maxUnavailableSeen})`);
        return r;
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
