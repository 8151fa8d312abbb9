/** cat, version, restart. */
import type { Command } from "commander";
import { mangleUnitName, serializeUnitFile } from "../../lib/unit";
import { apiFailure } from "../api-errors";
import { CliError } from "../cli-error";
import { lazyCreateUnits } from "../lazy-create";
import { findUnits, isGlobalUnit } from "../unit-lookup";
import { blockAttempts, waitForUnitStates } from "../wait-states";
import type { Action } from "./action";
import { parseCount } from "./action";

export const cat: Action<object> = async (ctx, args) => {
  if (args.length !== 1) throw new CliError("One unit file must be provided");
  const name = mangleUnitName(args[0]!);
  let unit;
  try {
    unit = await (await ctx.api()).getUnit(name, ctx.signal);
  } catch (err) {
    throw apiFailure(`Error retrieving Unit ${name}`, err);
  }
  if (!unit) throw new CliError(`Unit ${name} not found`);
  // fleet prints the canonical text as is, without adding a newline.
  ctx.io.stdout.write(serializeUnitFile(unit.options));
  return 0;
};

export const version: Action<object> = async (ctx) => {
  ctx.out(`fleetctl version ${ctx.version}`);
  return 0;
};

/**
 * Restart: loaded → start; launched → stop (wait loaded) then start (wait launched). Unlike fleet,
 * global units really restart (desired loaded, then launched: every agent stops and starts them).
 * Units that do not exist yet are created (submitted) only.
 */
export const restart: Action<{ blockAttempts?: number; block?: boolean }> = async (ctx, args, opts) => {
  if (args.length === 0) {
    ctx.err("No units given");
    return 0;
  }
  const attempts = blockAttempts(opts);
  const existing = await findUnits(ctx, args);
  const known = new Set(existing.map((u) => u.name));
  const missing = args.filter((a) => !known.has(mangleUnitName(a)));
  if (missing.length > 0) await lazyCreateUnits(ctx, missing, { command: "restart", replace: false, attempts });
  if (existing.length === 0 && missing.length === 0) {
    ctx.err("Units not found in registry");
    return 0;
  }
  const api = await ctx.api();
  const fail = (failure: string | undefined): void => {
    if (failure) {
      ctx.err(`Error waiting for units: ${failure}`);
      throw new CliError("Error waiting for unit states, exit status: 1");
    }
  };
  for (const u of existing) {
    if (isGlobalUnit(u)) {
      await api.setUnitTargetState(u.name, "loaded", ctx.signal);
      await api.setUnitTargetState(u.name, "launched", ctx.signal);
      ctx.out(`Triggered global unit ${u.name} restart`);
      continue;
    }
    if (u.currentState === "inactive" || !u.currentState) {
      ctx.err(`Unable to restart unit ${u.name} in state inactive`);
      continue;
    }
    if (u.currentState === "launched") {
      await api.setUnitTargetState(u.name, "loaded", ctx.signal);
      if (attempts >= 0) fail(await waitForUnitStates(ctx, [u.name], "loaded", attempts));
    }
    await api.setUnitTargetState(u.name, "launched", ctx.signal);
    if (attempts >= 0) fail(await waitForUnitStates(ctx, [u.name], "launched", attempts));
    else ctx.out(`Triggered unit ${u.name} restart`);
  }
  return 0;
};

/** fleet's deprecated `verify`: signing was removed; kept so old scripts fail clearly (exit 2). */
export const verify: Action<object> = async () => {
  throw new CliError("WARNING: The signed/verified units feature is DEPRECATED and cannot be used.", 2);
};

/** Registers cat, version, restart and the deprecated verify. */
export function registerInspect(program: Command, bind: <O>(a: Action<O>) => (...args: unknown[]) => Promise<void>): void {
  program.command("cat").argument("[unit]").description("Output the contents of a submitted unit").action(bind(cat));
  program.command("version").description("Print the version and exit").action(bind(version));
  program.command("verify", { hidden: true }).argument("[unit]").description("DEPRECATED - No longer works").action(bind(verify));
  program
    .command("restart")
    .argument("[units...]")
    .description("Instruct systemd to restart one or more units in the cluster")
    .option("--block-attempts <n>", "Wait until the units are launched again, trying N times 2 s (0 = forever)", parseCount)
    .option("--no-block", "Do not wait until the units are launched again")
    .action(bind(restart));
}
