/**
 * `fleetctl deploy web@.service` (new body from the local file and/or `--set KEY=VALUE`) and
 * `fleetctl rollback web@.service [--to N]`: record a rollout through the API, then follow it until
 * the leading engine reports its outcome.
 */
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import type { ApiDeployPlan, ApiDeployRequest } from "../../lib/api/deploy-types";
import { instanceRuns, isInstance, isTemplate, mangleUnitName, parseUnitName } from "../../lib/unit";
import { apiFailure } from "../api-errors";
import { CliError } from "../cli-error";
import type { CommandContext } from "../context";
import { durationInRange } from "../duration-option";
import { pinImageSets } from "../image-pinning";
import { followRollout } from "../operations/progress";
import { sendRepeatable, startRollout } from "../operations/start-rollout";
import { localFileOf, readLocalUnit } from "../unit-source";
import type { Action } from "./action";

interface RolloutOpts {
  set?: string[];
  to?: number;
  maxUnavailable?: string;
  maxSurge?: string;
  deadline?: number;
  dryRun?: boolean;
  block?: boolean;
}

/** The template (web@.service) or global unit (whether it is one, the API checks) a command rolls. */
function templateArg(args: readonly string[], command: string): string {
  if (args.length !== 1) throw new CliError(`One template or global unit required, e.g. fleetctl ${command} web@.service`);
  const name = mangleUnitName(args[0]!);
  if (isInstance(name)) {
    const p = parseUnitName(name);
    throw new CliError(`Cannot ${command} ${name}: it is an instance; ${command} works on its template ${p.prefix}@${p.suffix} (all instances together) or on a global unit`);
  }
  return name;
}

/** The instances a plan names (runs of numbers), or a global unit's machines (IDs shortened as in list-machines). */
function planTargets(template: string, names: readonly string[]): string {
  if (isTemplate(template)) return instanceRuns(template).format(names);
  const shown = names.slice(0, 10).map((id) => `${id.slice(0, 8)}...`);
  return `${shown.join(", ")}${names.length > shown.length ? ` and ${names.length - shown.length} more` : ""}`;
}

function parseSet(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    if (eq <= 0) throw new CliError(`Invalid --set "${v}": use KEY=VALUE, e.g. --set image=registry.cluster:5000/web:2`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

function limits(opts: RolloutOpts): Pick<ApiDeployRequest, "maxUnavailable" | "maxSurge" | "deadlineMs" | "dryRun"> {
  return {
    ...(opts.maxUnavailable !== undefined ? { maxUnavailable: opts.maxUnavailable } : {}),
    ...(opts.maxSurge !== undefined ? { maxSurge: opts.maxSurge } : {}),
    ...(opts.deadline !== undefined ? { deadlineMs: opts.deadline } : {}),
    dryRun: opts.dryRun === true,
  };
}

/**
 * `localFile`: the local file the new body was read from. The plan names it, since a stale local copy
 * next to the operator would otherwise silently revert what the cluster runs.
 */
async function run(ctx: CommandContext, template: string, request: ApiDeployRequest, opts: RolloutOpts, what: string, localFile?: string): Promise<number> {
  // A lost answer (dropped connection, 5xx from etcd timing out) is reconciled, not reported blindly.
  const { plan } = await startRollout(ctx, template, request, what);
  const from = plan.fromRevision !== undefined ? `revision ${plan.fromRevision}` : "its current body";
  const head = plan.dryRun ? "Would roll" : "Rolling";
  ctx.out(`${head} ${template} from ${from} to revision ${plan.revision} (${plan.change}, hash ${plan.hash.slice(0, 7)})`);
  if (localFile !== undefined) ctx.out(`  new body from the local file ${localFile}${request.set ? ", with --set applied" : ""}`);
  const [noun, each] = isTemplate(template) ? ["instance(s)", "instance"] : ["machine(s)", "machine"];
  ctx.out(`  ${plan.instances.length} ${noun} to update${plan.instances.length > 0 ? `: ${planTargets(template, plan.instances)}` : ""}; max unavailable ${plan.maxUnavailable}, max surge ${plan.maxSurge}, deadline ${plan.deadlineMs / 1000} s per ${each}`);
  for (const line of plan.diff) ctx.out(`  ${line}`);
  return afterPlan(ctx, template, plan, opts);
}

/** Once the plan is printed: ends a dry run or `--no-block`, else follows the rollout to its end. */
async function afterPlan(ctx: CommandContext, template: string, plan: ApiDeployPlan, opts: RolloutOpts, follow: { stopping?: boolean } = {}): Promise<number> {
  if (plan.dryRun) {
    ctx.out("Dry run: nothing changed");
    return 0;
  }
  if (opts.block === false) {
    ctx.out(`Follow it with: fleetctl history ${template}`);
    return 0;
  }
  await followRollout(ctx, template, plan.revision, follow);
  return 0;
}

export const deploy: Action<RolloutOpts> = async (ctx, args, opts) => {
  const template = templateArg(args, "deploy");
  const request: ApiDeployRequest = limits(opts);
  const file = await localFileOf(ctx, args[0]!);
  if (file) request.options = [...(await readLocalUnit(ctx, file, template)).options];
  // image=HOST:PORT/NAME:TAG is pinned to the digest the registry serves now (fleetctl/image-pinning.ts).
  if (opts.set && opts.set.length > 0) request.set = await pinImageSets(ctx, parseSet(opts.set));
  if (!file && !request.set) {
    throw new CliError(`Nothing to deploy for ${template}: no local file ${args[0]!} and no --set; give the changed template file (e.g. units/web@.service) or --set KEY=VALUE`);
  }
  return run(ctx, template, request, opts, "deploy", file);
};

export const rollback: Action<RolloutOpts> = async (ctx, args, opts) => {
  const template = templateArg(args, "rollback");
  let to = opts.to;
  if (to === undefined) {
    const api = await ctx.api();
    let record;
    try {
      record = await api.getDeploymentSummary(template, ctx.signal);
    } catch (err) {
      throw apiFailure(`Error reading the history of ${template}`, err);
    }
    if (record.rollout && record.rollout.phase !== "done") return stopRollout(ctx, template, opts);
    // The current body is the last revision that rolled out; the target is the successful one before it.
    const succeeded = record.revisions.filter((r) => r.outcome === "succeeded");
    const target = succeeded.at(-2);
    if (!target) {
      throw new CliError(`Cannot roll back ${template}: it has no earlier successful revision (history: ${record.revisions.map((r) => r.revision).join(", ") || "none"}); name one with --to N`);
    }
    to = target.revision;
  }
  return run(ctx, template, { ...limits(opts), toRevision: to }, opts, "rollback");
};

/**
 * `rollback` while a rollout runs: stops it (`abort`) and follows it back to where it started. Stopping
 * is idempotent, so a request whose answer was lost is simply sent again.
 */
async function stopRollout(ctx: CommandContext, template: string, opts: RolloutOpts): Promise<number> {
  const given = (["maxUnavailable", "maxSurge", "deadline"] as const).filter((o) => opts[o] !== undefined);
  if (given.length > 0) {
    const flags = given.map((o) => `--${o.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(", ");
    throw new CliError(`Cannot use ${flags} to stop the running rollout of ${template}: it rolls back with its own limits; leave ${given.length > 1 ? "them" : "it"} out`);
  }
  const api = await ctx.api();
  const failed = (err: unknown): Error => apiFailure(`Error stopping the rollout of ${template}`, err);
  const { value: plan } = await sendRepeatable(ctx, () => api.deploy(template, { abort: true, dryRun: opts.dryRun === true }, ctx.signal), {
    what: `the stop request for ${template}`,
    safe: "stopping is safe to repeat",
    refused: failed,
    exhausted: failed,
  });
  const to = plan.fromRevision !== undefined ? ` (revision ${plan.fromRevision})` : "";
  ctx.out(`${plan.dryRun ? "Would stop" : "Stopping"} the rollout of ${template} to revision ${plan.revision}; its instances go back to the bodies they had${to}`);
  return afterPlan(ctx, template, plan, opts, { stopping: true });
}

const collect = (v: string, all: string[] = []): string[] => [...all, v];

function rolloutOptions(c: Command): Command {
  return c
    .option("--max-unavailable <n|pct>", 'Instances that may be unavailable at once: a count or a percentage of the instances, rounded down (default "1")')
    .option("--max-surge <n|pct>", 'Extra instances of the new body started before old ones stop: a count or a percentage, rounded up (default "0")')
    .option("--deadline <duration>", "Time an instance has to become active on its new body before the rollout fails and is rolled back: 90s, 2m, or seconds; from 1s to 24h (default 120s)", durationInRange(1_000, 86_400_000, "1s to 24h"))
    .option("--dry-run", "Print the plan (instances, limits, body diff), change nothing")
    .option("--no-block", "Return once the rollout is recorded; do not follow it");
}

export function registerDeploy(program: Command, bind: <O>(a: Action<O>) => (...args: unknown[]) => Promise<void>): void {
  rolloutOptions(
    program
      .command("deploy")
      .argument("<template|global-unit>")
      .description("Roll every instance of a template, or every machine of a global unit, to a new body (local file and/or --set), a few at a time")
      .option("--set <KEY=VALUE>", "Set Environment=KEY=VALUE in the body's [Service] (repeatable), e.g. --set image=registry.cluster:5000/web:2", collect),
  )
    .addHelpText(
      "after",
      `
The new body is the local file named by the argument (units/web@.service) when it exists, else the
template's body in the cluster; --set then sets environment variables in it (the unit uses them as
\${KEY}). --set image=HOST:PORT/NAME:TAG is first resolved to HOST:PORT/NAME@sha256:... by asking that
registry (through the --tunnel host when one is set), so every instance runs the same image. Each instance is switched to the new body on its machine (stop, then start) while at most
--max-unavailable instances are down; --max-surge first starts extra instances web@surge-R-K.service
of the new body (make-before-break) where placement allows, and removes them at the end. The first
instance not active within --deadline stops the rollout and every instance is rolled back. The
rollout is driven by the leading engine and resumes after an engine failover. See "fleetctl history".

A global unit ([X-Fleet] Global=true) is rolled the same way with its machines for instances: at most
--max-unavailable machines switch at once while the others keep the old body (--max-surge does not
apply), and a machine not active on the new body within --deadline rolls the others back.`,
    )
    .action(bind(deploy));
  rolloutOptions(
    program
      .command("rollback")
      .argument("<template|global-unit>")
      .description("Redeploy an earlier revision of a template (default: the last successful one before the current), or stop a running rollout")
      .option("--to <revision>", "Revision to redeploy (see fleetctl history)", (v) => {
        if (!/^[1-9]\d*$/.test(v)) throw new InvalidArgumentError(`"${v}" is not a revision number.`);
        return Number(v);
      }),
  )
    .addHelpText(
      "after",
      `
While a rollout of the template runs, "rollback" without --to stops it: every instance goes back to
the body it had before that rollout (the rollout's own --max-unavailable and --max-surge apply, so
the limit options are refused), surge instances are removed, and the rollout ends "rolled-back".
With --to N it is refused until the running rollout ends.`,
    )
    .action(bind(rollback));
}
