/** `fleetctl scale web@.service=5`: creates or destroys numbered instances (highest first) to reach N. */
import type { Command } from "commander";
import { isTemplate, mangleUnitName } from "../../lib/unit";
import { apiFailure } from "../api-errors";
import { CliError } from "../cli-error";
import { delay } from "../../lib/async/delay";
import type { CommandContext } from "../context";
import { ATTEMPT_MS, blockAttempts, pollDelay, waitForSystemdActive, waitForUnitStates } from "../wait-states";
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
  return [name, Number(count)];
}

/** Waits until no agent reports a state for the destroyed instances any more (they were stopped and unloaded). */
async function waitForUnloaded(ctx: CommandContext, names: readonly string[], attempts: number): Promise<void> {
  const api = await ctx.api();
  const deadline = attempts > 0 ? Date.now() + attempts * ATTEMPT_MS : Infinity;
  const pending = new Set(names);
  for (let round = 0; pending.size > 0; round++) {
    for (const n of [...pending]) if ((await api.listUnitStates({ unitName: n }, ctx.signal)).length === 0) pending.delete(n);
    if (pending.size === 0) return;
    if (Date.now() + pollDelay(round) > deadline) {
      throw new CliError(`Error waiting for the destroyed instances to stop: ${[...pending].join(", ")} still reported by their machines; see fleetctl list-units`);
    }
    await delay(pollDelay(round), ctx.signal);
  }
}

export const scale: Action<ScaleOpts> = async (ctx, args, opts) => {
  if (args.length !== 1) throw new CliError("One argument required: TEMPLATE=COUNT, e.g. fleetctl scale web@.service=5");
  const [template, count] = parseScaleArgument(args[0]!);
  const api = await ctx.api();
  let plan;
  try {
    plan = await api.scale(template, count, { dryRun: opts.dryRun === true }, ctx.signal);
  } catch (err) {
    throw apiFailure(`Error scaling ${template}`, err);
  }
  const verb = plan.dryRun ? "Would " : "";
  for (const n of plan.create) ctx.out(`${verb}${plan.dryRun ? "create" : "Created"} ${n}`);
  for (const n of plan.destroy) ctx.out(`${verb}${plan.dryRun ? "destroy" : "Destroyed"} ${n}`);
  if (plan.dryRun) {
    ctx.out(`Would scale ${template} from ${plan.from} to ${plan.to} instances (dry run: nothing changed)`);
    return 0;
  }
  const attempts = blockAttempts(opts);
  if (attempts >= 0 && plan.create.length > 0) {
    const failure = (await waitForUnitStates(ctx, plan.create, "launched", attempts)) ?? (await waitForSystemdActive(ctx, plan.create, attempts));
    if (failure) throw new CliError(`Error waiting for the new instances of ${template}: ${failure}`);
  }
  if (attempts >= 0 && plan.destroy.length > 0) await waitForUnloaded(ctx, plan.destroy, attempts);
  ctx.out(`Scaled ${template} from ${plan.from} to ${plan.to} instances`);
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
rollout of the template runs (fleetctl deploy).`,
    )
    .action(bind(scale));
}
