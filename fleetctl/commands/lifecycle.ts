/** submit, load, start (incl. templates with --instances), stop, unload, destroy. */
import type { Command } from "commander";
import type { ApiUnit, UnitTargetState } from "../../lib/api/types";
import { isTemplate, mangleUnitName, parseUnitName } from "../../lib/unit";
import { CliError } from "../cli-error";
import type { CommandContext } from "../context";
import { lazyCreateUnits } from "../lazy-create";
import { checkInstancesUse, instancesToStart, parseInstances, planStart } from "../operations/start-plan";
import { MAX_INSTANCES } from "../../lib/api/deploy-types";
import { localFileOf } from "../unit-source";
import { mapLimit } from "../../lib/async/map-limit";
import { existingUnitsOrNothing, isGlobalUnit, lookupUnits, WRITE_CONCURRENCY } from "../unit-lookup";
import { isUnscheduled } from "../unscheduled-reason";
import { blockAttempts, waitForSystemdActive, waitForUnitStates } from "../wait-states";
import type { Action } from "./action";
import { parseCount } from "./action";

interface BlockOpts {
  block?: boolean;
  blockAttempts?: number;
  replace?: boolean;
  sign?: boolean;
  instances?: number;
  dryRun?: boolean;
}

function signRefused(opts: BlockOpts): void {
  if (opts.sign) throw new CliError("WARNING: The signed/verified units feature is DEPRECATED and cannot be used.", 2);
}

/** Sets the desired state of the named units unless already so (fleet's `setTargetStateOfUnits`). */
async function setTargetStates(ctx: CommandContext, names: readonly string[], state: UnitTargetState): Promise<ApiUnit[]> {
  const api = await ctx.api();
  const units = await lookupUnits(ctx, names);
  const triggered: ApiUnit[] = [];
  for (const name of new Set(names)) {
    const unit = units.get(name);
    if (!unit) throw new CliError(`Error setting target state: unable to find unit ${name}`);
    if (unit.desiredState === state) {
      ctx.debug(`Unit(${name}) already ${state}, skipping.`);
      continue;
    }
    triggered.push(unit);
  }
  for (const u of triggered) ctx.debug(`Setting Unit(${u.name}) target state to ${state}`);
  await api.putUnits(triggered.map((u) => ({ name: u.name, desiredState: state })), ctx.signal);
  return triggered;
}

/** Prints "Triggered unit X action" (no-block) or waits; returns the exit status. */
async function waitOrTrigger(ctx: CommandContext, names: readonly string[], action: string, target: UnitTargetState, attempts: number): Promise<number> {
  if (attempts < 0) {
    for (const n of names) ctx.out(`Triggered unit ${n} ${action}`);
    return 0;
  }
  const failure = await waitForUnitStates(ctx, names, target, attempts);
  if (failure) {
    ctx.err(`Error waiting for units: ${failure}`);
    return 1;
  }
  return 0;
}

function splitGlobal(ctx: CommandContext, units: readonly ApiUnit[], action: string): string[] {
  const waitFor: string[] = [];
  for (const u of units) {
    if (isGlobalUnit(u)) ctx.out(`Triggered global unit ${u.name} ${action}`);
    else waitFor.push(u.name);
  }
  return waitFor;
}

/**
 * `start web@.service`: starts every instance of the template in the cluster; with `--instances N`
 * first makes sure web@1 … web@N exist (created from the template, local file or registry).
 */
async function expandTemplates(ctx: CommandContext, args: readonly string[], opts: BlockOpts, attempts: number): Promise<string[]> {
  const expanded: string[] = [];
  const templates = args.filter((a) => isTemplate(mangleUnitName(a)));
  if (templates.length === 0) return [...args];
  const api = await ctx.api();
  const all = await api.listUnits(ctx.signal);
  // Every template's instances first: a template without any fails the start before anything is
  // written (it submitted the local template file, then failed).
  const instances = new Map(templates.map((t) => [t, instancesToStart(all, mangleUnitName(t), opts.instances)]));
  for (const arg of args) {
    const these = instances.get(arg);
    if (!these) {
      expanded.push(arg);
      continue;
    }
    // A local template file is submitted first, so instances can be created from the registry copy.
    if ((await localFileOf(ctx, arg)) || opts.replace) {
      await lazyCreateUnits(ctx, [arg], { command: "submit", replace: opts.replace ?? false, attempts });
    }
    expanded.push(...these);
  }
  return expanded;
}

/**
 * `load web@.service` is refused before anything is written: the API refused it only after a local
 * template file had been submitted, with its raw "cannot activate template" (HTTP 400).
 */
function refuseLoadingTemplates(args: readonly string[]): void {
  const template = args.map(mangleUnitName).find(isTemplate);
  if (template === undefined) return;
  const { prefix, suffix } = parseUnitName(template);
  throw new CliError(
    `Cannot load template ${template}: only its instances can be loaded; load instances by name ("fleetctl load ${prefix}@1${suffix}"), or start every instance with "fleetctl start ${template}"`,
  );
}

async function runLoadOrStart(ctx: CommandContext, args: string[], opts: BlockOpts, command: "load" | "start"): Promise<number> {
  signRefused(opts);
  if (args.length === 0) {
    ctx.err("No units given");
    return 0;
  }
  if (opts.dryRun) {
    if (command !== "start") throw new CliError("--dry-run is only valid with start");
    return planStart(ctx, args, opts.instances, opts.replace ?? false);
  }
  const attempts = blockAttempts(opts);
  if (command === "start") checkInstancesUse(args, opts.instances);
  if (command === "start") args = await expandTemplates(ctx, args, opts, attempts);
  else if (opts.instances !== undefined) throw new CliError("--instances is only valid with start");
  else refuseLoadingTemplates(args);
  try {
    await lazyCreateUnits(ctx, args, { command, replace: opts.replace ?? false, attempts });
  } catch (err) {
    if (err instanceof CliError) throw new CliError(`Error creating units: ${err.message}`, err.exitCode, { cause: err });
    throw err;
  }
  const target: UnitTargetState = command === "start" ? "launched" : "loaded";
  const triggered = await setTargetStates(ctx, args.map(mangleUnitName), target);
  const waitFor = splitGlobal(ctx, triggered, command);
  const status = await waitOrTrigger(ctx, waitFor, command, target, attempts);
  if (status !== 0) throw new CliError(`Error waiting for unit states, exit status: ${status}`);
  if (command === "start" && attempts >= 0 && waitFor.length > 0) {
    const failure = await waitForSystemdActive(ctx, waitFor, attempts);
    if (failure) throw new CliError(`Error waiting for systemd unit states, err: ${failure}`);
  }
  return 0;
}

export const submit: Action<BlockOpts> = async (ctx, args, opts) => {
  signRefused(opts);
  if (args.length === 0) {
    ctx.err("No units given");
    return 0;
  }
  try {
    await lazyCreateUnits(ctx, args, { command: "submit", replace: opts.replace ?? false, attempts: 0 });
  } catch (err) {
    if (err instanceof CliError) throw new CliError(`Error creating units: ${err.message}`, err.exitCode, { cause: err });
    throw err;
  }
  return 0;
};

export const load: Action<BlockOpts> = (ctx, args, opts) => runLoadOrStart(ctx, args, opts, "load");
export const start: Action<BlockOpts> = (ctx, args, opts) => runLoadOrStart(ctx, args, opts, "start");

export const stop: Action<BlockOpts> = async (ctx, args, opts) => {
  const units = await existingUnitsOrNothing(ctx, args);
  if (units === undefined) return 0;
  const api = await ctx.api();
  const change: ApiUnit[] = [];
  // Every unit is checked before the first write: an inactive one fails the command without half-doing it.
  for (const u of units) {
    if (!isGlobalUnit(u)) {
      if (u.currentState === "inactive") {
        // Wanted but not placed: it starts as soon as a machine can take it, which stop cannot prevent.
        const pending = isUnscheduled(u, false) ? `: it is not scheduled on any machine yet and starts once placed; "fleetctl unload ${u.name}" keeps it from being placed` : "";
        throw new CliError(`Unable to stop unit ${u.name} in state inactive${pending}`);
      }
      if (u.currentState === "loaded" && u.desiredState !== "launched") {
        ctx.debug(`Unit(${u.name}) already loaded, skipping.`);
        continue;
      }
    }
    change.push(u);
  }
  await api.putUnits(change.map((u) => ({ name: u.name, desiredState: "loaded" as const })), ctx.signal);
  const stopping = splitGlobal(ctx, change, "stop");
  const status = await waitOrTrigger(ctx, stopping, "stop", "loaded", blockAttempts(opts));
  if (status !== 0) throw new CliError(`Failed to stop units [${stopping.join(" ")}]. exit status ${status}`);
  ctx.err(`Successfully stopped units [${stopping.join(" ")}].`);
  return 0;
};

export const unload: Action<BlockOpts> = async (ctx, args, opts) => {
  const units = await existingUnitsOrNothing(ctx, args);
  if (units === undefined) return 0;
  const api = await ctx.api();
  const change = units.filter((u) => {
    const skip = !isGlobalUnit(u) && u.currentState === "inactive" && u.desiredState === "inactive";
    if (skip) ctx.debug(`Target state of Unit(${u.name}) already inactive, skipping.`);
    return !skip;
  });
  await api.putUnits(change.map((u) => ({ name: u.name, desiredState: "inactive" as const })), ctx.signal);
  const waitFor = splitGlobal(ctx, change, "unload");
  const status = await waitOrTrigger(ctx, waitFor, "unload", "inactive", blockAttempts(opts));
  if (status !== 0) throw new CliError(`Failed to unload units [${waitFor.join(" ")}]. exit status ${status}`);
  ctx.err(`Successfully unloaded units [${waitFor.join(" ")}].`);
  return 0;
};

export const destroy: Action<BlockOpts> = async (ctx, args) => {
  const units = await existingUnitsOrNothing(ctx, args, { includeTemplates: true });
  if (units === undefined) return 0;
  const api = await ctx.api();
  // "not found" means somebody else destroyed it meanwhile: the outcome we want.
  await mapLimit(units, WRITE_CONCURRENCY, (u) => api.destroyUnit(u.name, ctx.signal));
  for (const u of units) ctx.out(`Destroyed ${u.name}`);
  return 0;
};

/** Registers the lifecycle commands. */
export function registerLifecycle(program: Command, bind: <O>(a: Action<O>) => (...args: unknown[]) => Promise<void>): void {
  const blockOptions = (c: Command): Command =>
    c
      .option("--block-attempts <n>", "Wait until the units reach the desired state, trying N times 2 s (0 = forever)", parseCount)
      .option("--no-block", "Do not wait until the units reach the desired state");
  const replace = (c: Command): Command =>
    c.option("--replace", "Replace the unit in the cluster if the local unit file (or template) changed").option("--sign", "DEPRECATED - signing units is not supported");

  replace(program.command("submit").argument("[units...]").description("Upload one or more units to the cluster without starting them")).action(bind(submit));
  replace(blockOptions(program.command("load").argument("[units...]").description("Schedule one or more units in the cluster, first submitting them if necessary"))).action(bind(load));
  replace(
    blockOptions(
      program
        .command("start")
        .argument("[units...]")
        .description("Instruct systemd to start one or more units in the cluster, first submitting and loading if necessary")
        .option("--instances <n>", `With a template (web@.service): make sure web@1 … web@N exist before starting (N from 1 to ${MAX_INSTANCES})`, parseInstances)
        .option("--dry-run", "Print which units would be created and started, change nothing"),
    ),
  )
    .addHelpText(
      "after",
      `
Templates: "fleetctl start web@.service" starts every instance of web@.service already in the
cluster; with "--instances 3" it first creates web@1.service, web@2.service and web@3.service from
the template (local file beside the argument, else the template in the cluster) and starts them.
Instances are created with the template's body; fleet refused to start a template at all.`,
    )
    .action(bind(start));
  blockOptions(program.command("stop").argument("[units...]").description("Instruct systemd to stop one or more units in the cluster")).action(bind(stop));
  blockOptions(program.command("unload").argument("[units...]").description("Unschedule one or more units in the cluster")).action(bind(unload));
  program
    .command("destroy")
    .argument("[units...]")
    .description("Destroy one or more units in the cluster (does not wait for them to stop; list-units shows them until they have)")
    // fleet's destroy takes both and does not wait either (fleet-reference.md): accepted, ignored.
    .option("--block-attempts <n>", "Accepted for compatibility with fleet; destroy does not wait", parseCount)
    .option("--no-block", "Accepted for compatibility with fleet; destroy does not wait")
    .action(bind(destroy));
}
