/** cat, version, restart. */
import type { Command } from "commander";
import type { ApiUnit, ApiUnitState } from "../../lib/api/types";
import { delay } from "../../lib/async/delay";
import { isTemplate, mangleUnitName, serializeUnitFile } from "../../lib/unit";
import { apiFailure } from "../api-errors";
import { CliError } from "../cli-error";
import { lazyCreateUnits } from "../lazy-create";
import type { CommandContext } from "../context";
import { machineFullLegend } from "../legend";
import { existingUnitsOrNothing, findUnits, isGlobalUnit } from "../unit-lookup";
import { ATTEMPT_MS, blockAttempts, currentStates, pollDelay, waitForRestarted, waitForUnitStates } from "../wait-states";
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

/** systemd active states in which a unit still runs (or is on its way up or down). */
const RUNNING_STATES = new Set(["active", "activating", "deactivating", "reloading"]);

/**
 * Waits until every machine in `machines` reports `name` in a state `done` accepts (a machine whose
 * state is gone, e.g. it left the cluster, counts as done). Returns undefined, or why it gave up.
 */
async function waitOnMachines(
  ctx: CommandContext,
  name: string,
  machines: readonly string[],
  done: (s: ApiUnitState) => boolean | string,
  what: string,
  attempts: number,
): Promise<string | undefined> {
  const api = await ctx.api();
  const deadline = attempts > 0 ? Date.now() + attempts * ATTEMPT_MS : Infinity;
  for (let round = 0; ; round++) {
    const states = new Map((await api.listUnitStates({ unitName: name }, ctx.signal)).filter((s) => s.name === name).map((s) => [s.machineID, s]));
    let pending: ApiUnitState | undefined;
    for (const m of machines) {
      const s = states.get(m);
      if (!s) continue;
      const verdict = done(s);
      if (typeof verdict === "string") return verdict;
      if (!verdict) {
        pending = s;
        break;
      }
    }
    if (!pending) return undefined;
    if (Date.now() + pollDelay(round) > deadline) {
      return `timed out waiting for global unit ${name} to be ${what} on machine ${pending.machineID} (last: ${pending.systemdLoadState}/${pending.systemdActiveState}/${pending.systemdSubState})`;
    }
    await delay(pollDelay(round), ctx.signal);
  }
}

/**
 * A global unit: desired loaded, wait until every machine that ran it stopped it, then launched and
 * (blocking) wait until each runs it again. The stop is awaited even with --no-block: setting
 * launched before the agents stopped it would restart nothing.
 */
async function restartGlobal(ctx: CommandContext, unit: ApiUnit, attempts: number): Promise<string | undefined> {
  const api = await ctx.api();
  const name = unit.name;
  const machines = [...new Set((await api.listUnitStates({ unitName: name }, ctx.signal)).filter((s) => s.name === name).map((s) => s.machineID))];
  if (unit.desiredState === "launched") {
    await api.setUnitTargetState(name, "loaded", ctx.signal);
    const stopped = await waitOnMachines(ctx, name, machines, (s) => !RUNNING_STATES.has(s.systemdActiveState), "stopped", Math.max(attempts, 0));
    if (stopped) return stopped;
  }
  await api.setUnitTargetState(name, "launched", ctx.signal);
  if (attempts < 0) {
    ctx.out(`Triggered global unit ${name} restart`);
    return undefined;
  }
  const started = await waitOnMachines(
    ctx,
    name,
    machines,
    (s) => {
      if (s.systemdActiveState === "failed") return `global unit ${name} failed on machine ${s.machineID}: systemd reports ${s.systemdLoadState}/${s.systemdActiveState}/${s.systemdSubState}; see "fleetctl status ${name}"`;
      return s.systemdLoadState === "loaded" && (s.systemdActiveState === "active" || s.systemdSubState === "exited");
    },
    "active",
    attempts,
  );
  if (started) return started;
  const all = await ctx.machines();
  const where = machines.map((m) => machineFullLegend(m, all.get(m), false)).join(", ");
  ctx.out(machines.length > 0 ? `Global unit ${name} restarted on ${where}` : `Triggered global unit ${name} restart (no machine ran it)`);
  return undefined;
}

/**
 * Restart: loaded → start; launched → stop (wait loaded) then start (wait launched). Unlike fleet,
 * global units really restart: stopped on every machine that runs them, then started again. A
 * template (`web@.service`) stands for its registered instances, as for stop. Units that do not exist
 * yet are created (submitted) only. Restarting nothing at all (no such unit) exits 1.
 */
export const restart: Action<{ blockAttempts?: number; block?: boolean }> = async (ctx, args, opts) => {
  if (args.length === 0) {
    ctx.err("No units given");
    return 0;
  }
  const attempts = blockAttempts(opts);
  const templates = args.filter((a) => isTemplate(mangleUnitName(a)));
  const plain = args.filter((a) => !isTemplate(mangleUnitName(a)));
  const existing = plain.length > 0 ? await findUnits(ctx, plain) : [];
  const known = new Set(existing.map((u) => u.name));
  const missing = plain.filter((a) => !known.has(mangleUnitName(a)));
  if (templates.length > 0) {
    const instances = await existingUnitsOrNothing(ctx, templates);
    for (const u of instances ?? []) if (!known.has(u.name)) existing.push(u);
  }
  if (missing.length > 0) await lazyCreateUnits(ctx, missing, { command: "restart", replace: false, attempts });
  const api = await ctx.api();
  const fail = (failure: string | undefined): void => {
    if (failure) {
      ctx.err(`Error waiting for units: ${failure}`);
      throw new CliError("Error waiting for unit states, exit status: 1");
    }
  };
  let restarted = missing.length;
  for (const u of existing) {
    if (isGlobalUnit(u)) {
      if (u.desiredState === "inactive") {
        ctx.err(`Unable to restart global unit ${u.name}: it is inactive (start it with "fleetctl start ${u.name}")`);
        continue;
      }
      fail(await restartGlobal(ctx, u, attempts));
      restarted++;
      continue;
    }
    if (u.currentState === "inactive" || !u.currentState) {
      ctx.err(`Unable to restart unit ${u.name} in state inactive`);
      continue;
    }
    if (u.currentState === "launched") {
      await api.setUnitTargetState(u.name, "loaded", ctx.signal);
      // Awaited even with --no-block, as for a global unit: launched again before its agent stopped
      // it, the agent saw no change and nothing restarted (while "Triggered unit X restart" was printed).
      fail(await waitForUnitStates(ctx, [u.name], "loaded", Math.max(attempts, 0)));
    }
    // What systemd reported once stopped: a failed state after the start that is the same as this may
    // still be the old run's (the published state has no start time to tell them apart).
    const before = attempts >= 0 ? (await currentStates(ctx, [u.name])).get(u.name) : undefined;
    await api.setUnitTargetState(u.name, "launched", ctx.signal);
    if (attempts >= 0) {
      fail(await waitForUnitStates(ctx, [u.name], "launched", attempts));
      // Launched only says its agent asked systemd to start it: a unit whose ExecStart exits at once
      // was "restarted" with exit 0. It must be active, and still be a moment later.
      const failure = await waitForRestarted(ctx, u.name, before, attempts);
      if (failure) throw new CliError(`Error restarting units: ${failure}`);
    } else ctx.out(`Triggered unit ${u.name} restart`);
    restarted++;
  }
  if (restarted === 0) throw new CliError("No unit was restarted: none of the named units is loaded or launched");
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
    .option("--no-block", "Do not wait until the units are launched again (they are still stopped first, a global unit everywhere)")
    .action(bind(restart));
}
