/** `fleetctl scale web@.service=5`: creates or destroys numbered instances (highest first) to reach N. */
import type { Command } from "commander";
import type { ApiScalePlan } from "../../lib/api/deploy-types";
import { ApiError } from "../../lib/api/client";
import { isTemplate, mangleUnitName, parseUnitName } from "../../lib/unit";
import { apiFailure } from "../api-errors";
import { CliError } from "../cli-error";
import { delay } from "../../lib/async/delay";
import type { CommandContext } from "../context";
import { START_ATTEMPTS, sendRepeatable } from "../operations/start-rollout";
import { instanceRuns } from "../../lib/unit/instance-runs";
import { ATTEMPT_MS, blockAttempts, currentStates, pollDelay, waitForSystemdActive, waitForUnitStates } from "../wait-states";
import type { Action } from "./action";
import { parseCount } from "./action";

interface ScaleOpts {
  dryRun?: boolean;
  block?: boolean;
  blockAttempts?: number;
}

/** `web@.service=5` → ["web@.service", 5]. */
export function parseScaleArgument(arg: string): [string, number] {
  const eq = arg.lastIndexOf("=");
  const count = eq === -1 ? "" : arg.slice(eq + 1);
  if (eq <= 0 || !/^\d+$/.test(count)) throw new CliError(`Invalid scale argument "${arg}": use TEMPLATE=COUNT, e.g. web@.service=5`);
  const name = mangleUnitName(arg.slice(0, eq));
  if (!isTemplate(name)) throw new CliError(`Cannot scale ${name}: it is not a template; scale works on templates such as web@.service (instances web@1.service, web@2.service …)`);
  const n = Number(count);
  // Past 2^53 a count is rounded (99999999999999999999 → 1e20) and fleetd would echo the rounded
  // number; refused here with the text as given. Smaller counts are fleetd's to bound (it names its maximum).
  if (!Number.isSafeInteger(n)) throw new CliError(`Cannot scale ${name} to ${count} instances: the count is far more than fleetd allows; use a whole number such as ${name}=5`);
  return [name, n];
}

/**
 * Waits until no agent reports a state for the destroyed instances any more (they were stopped and
 * unloaded). Each round reads the states of all of them at once: one request per instance for a few,
 * else one listing (a request per instance per round was 10,000 requests a round for a scale down by 10,000).
 */
async function waitForUnloaded(ctx: CommandContext, names: readonly string[], attempts: number): Promise<void> {
  const deadline = attempts > 0 ? Date.now() + attempts * ATTEMPT_MS : Infinity;
  const pending = new Set(names);
  for (let round = 0; pending.size > 0; round++) {
    const reported = await currentStates(ctx, [...pending]);
    for (const n of [...pending]) if (!reported.has(n)) pending.delete(n);
    if (pending.size === 0) return;
    if (Date.now() + pollDelay(round) > deadline) {
      throw new CliError(`Error waiting for the destroyed instances to stop: ${[...pending].join(", ")} still reported by their machines; see fleetctl list-units`);
    }
    await delay(pollDelay(round), ctx.signal);
  }
}

/** The template's numbered instances (web@1.service …) in the cluster now. */
async function numberedInstances(ctx: CommandContext, template: string): Promise<string[]> {
  const { prefix, suffix } = parseUnitName(template);
  let units;
  try {
    units = await (await ctx.api()).listUnits(ctx.signal);
  } catch (err) {
    throw apiFailure(`Error listing the instances of ${template}`, err);
  }
  return units.map((u) => u.name).filter((n) => {
    const p = parseUnitName(n);
    return p.prefix === prefix && p.suffix === suffix && /^\d+$/.test(p.instance);
  });
}

/**
 * `POST /scale/<template>`. "Scale to N" is declarative, so a request whose answer was lost (the
 * connection dropped, a 502/503/504, a 500 saying etcd timed out) is simply sent again, with backoff,
 * at most {@link START_ATTEMPTS} times: had the first been carried out, the retry finds N instances
 * and changes nothing. A 409 "changed while scaling" after a lost answer (the first write landing
 * late) is retried too; every other error is final.
 */
async function requestScale(ctx: CommandContext, template: string, count: number, dryRun: boolean): Promise<{ plan: ApiScalePlan; lostAnswer?: string }> {
  const api = await ctx.api();
  const { value: plan, lostAnswer } = await sendRepeatable(ctx, () => api.scale(template, count, { dryRun }, ctx.signal), {
    what: `the scale request of ${template}`,
    safe: `scaling to ${count} is safe to repeat`,
    alsoRetry: (err) => (err instanceof ApiError && err.status === 409 && /changed while scaling/.test(err.message) ? `HTTP 409: ${err.message}` : undefined),
    refused: (err) => apiFailure(`Error scaling ${template}`, err),
    exhausted: (err, first, last) =>
      new CliError(
        `Error scaling ${template}: ${START_ATTEMPTS} attempts got no answer (first: ${first}; last: ${last}); some instances may have been created or destroyed: see fleetctl list-unit-files. Check that etcd is healthy (fleetctl list-machines) and run the command again`,
        1,
        { cause: err },
      ),
  });
  return lostAnswer ? { plan, lostAnswer } : { plan };
}

/** Up to this many instances created, destroyed or awaited are printed one line each; more as one line and a count. */
export const LIST_EACH_LIMIT = 10;

/** "Created web@4.service" per instance, or for many one line with runs: "Created 10000 instances: app@{1..10000}.service". */
function listChanges(ctx: CommandContext, template: string, verb: string, names: readonly string[]): void {
  if (names.length <= LIST_EACH_LIMIT) for (const n of names) ctx.out(`${verb} ${n}`);
  else ctx.out(`${verb} ${names.length} instances: ${instanceRuns(template).format([...names].sort((a, b) => Number(parseUnitName(a).instance) - Number(parseUnitName(b).instance)))}`);
}

export const scale: Action<ScaleOpts> = async (ctx, args, opts) => {
  if (args.length !== 1) throw new CliError("One argument required: TEMPLATE=COUNT, e.g. fleetctl scale web@.service=5");
  const [template, count] = parseScaleArgument(args[0]!);
  const { plan, lostAnswer } = await requestScale(ctx, template, count, opts.dryRun === true);
  if (lostAnswer && plan.create.length === 0 && plan.destroy.length === 0 && !plan.dryRun) {
    ctx.err(`The answer to the first scale request of ${template} was lost (${lostAnswer}); it now has ${plan.to} instance(s): that request was carried out, or nothing had to change`);
  }
  listChanges(ctx, template, plan.dryRun ? "Would create" : "Created", plan.create);
  listChanges(ctx, template, plan.dryRun ? "Would destroy" : "Destroyed", plan.destroy);
  if (plan.dryRun) {
    ctx.out(`Would scale ${template} from ${plan.from} to ${plan.to} instances (dry run: nothing changed)`);
    return 0;
  }
  const attempts = blockAttempts(opts);
  // After a lost answer the instances the first request created are not known: wait for all of them.
  const waitFor = lostAnswer ? await numberedInstances(ctx, template) : plan.create;
  if (attempts >= 0 && waitFor.length > 0) {
    const report = waitFor.length > LIST_EACH_LIMIT ? "count" : "each";
    const failure = (await waitForUnitStates(ctx, waitFor, "launched", attempts, { report })) ?? (await waitForSystemdActive(ctx, waitFor, attempts));
    if (failure) throw new CliError(`Error waiting for the new instances of ${template}: ${failure}`);
  }
  if (attempts >= 0 && plan.destroy.length > 0) await waitForUnloaded(ctx, plan.destroy, attempts);
  // After a lost answer the retry saw the state the first request left: "from" is not the start.
  ctx.out(lostAnswer && plan.from === plan.to ? `Scaled ${template} to ${plan.to} instances` : `Scaled ${template} from ${plan.from} to ${plan.to} instances`);
  return 0;
};

export function registerScale(program: Command, bind: <O>(a: Action<O>) => (...args: unknown[]) => Promise<void>): void {
  program
    .command("scale")
    .argument("<template=count>")
    .description("Create or destroy instances of a template until it has COUNT, e.g. scale web@.service=5")
    .option("--dry-run", "Print which instances would be created or destroyed, change nothing")
    .option("--block-attempts <n>", "Wait until new instances are active, trying N times 2 s (0 = forever)", parseCount)
    .option("--no-block", "Do not wait for the instances")
    .addHelpText(
      "after",
      `
Counts the template's numbered instances (web@1.service, web@2.service …). Scaling up creates the
lowest free numbers from the template's body in the cluster and starts them; scaling down destroys
the highest numbers first. Like "start", it waits until new instances are active. Refused while a
rollout of the template runs (fleetctl deploy). Up to ${LIST_EACH_LIMIT} instances are listed one per line; more as
one line of runs (app@{1..500}.service, as bash expands it), with the wait reported as a count.`,
    )
    .action(bind(scale));
}
