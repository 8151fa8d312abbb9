/** `fleetctl history web@.service`: a template's (or a global unit's) revisions and its current or last rollout. */
import type { Command } from "commander";
import { isInstance, mangleUnitName, parseUnitName } from "../../lib/unit";
import { apiFailure } from "../api-errors";
import { CliError } from "../cli-error";
import { formatTable } from "../tabwriter";
import type { Action } from "./action";

export const history: Action<{ legend?: boolean }> = async (ctx, args, opts) => {
  if (args.length !== 1) throw new CliError("One template or global unit required, e.g. fleetctl history web@.service");
  const template = mangleUnitName(args[0]!);
  if (isInstance(template)) {
    const p = parseUnitName(template);
    throw new CliError(`Cannot show the history of ${template}: it is an instance; history works on its template ${p.prefix}@${p.suffix} or on a global unit`);
  }
  let record;
  try {
    record = await (await ctx.api()).getDeploymentSummary(template, ctx.signal);
  } catch (err) {
    throw apiFailure(`Error reading the history of ${template}`, err);
  }
  if (record.revisions.length === 0) {
    ctx.out(`${template} has no deployment history yet (fleetctl deploy ${template} records one)`);
    return 0;
  }
  const rows: string[][] = opts.legend === false ? [] : [["REVISION", "HASH", "CREATED", "OUTCOME", "CHANGE"]];
  const running = record.rollout && record.rollout.phase !== "done" ? record.rollout.revision : undefined;
  for (const r of record.revisions) rows.push([String(r.revision), r.hash.slice(0, 7), r.createdAt, r.revision === running ? "running" : (r.outcome ?? "-"), r.change]);
  ctx.io.stdout.write(formatTable(rows));
  const ro = record.rollout;
  if (ro) {
    ctx.out("");
    ctx.out(`Rollout of revision ${ro.revision} (${ro.phase === "done" ? ro.outcome ?? "done" : ro.phase}), started ${ro.startedAt}${ro.finishedAt ? `, finished ${ro.finishedAt}` : ""}:`);
    ctx.out(`  ${ro.message}`);
    ctx.out(`  max unavailable ${ro.maxUnavailableSpec} (${ro.maxUnavailable}), max surge ${ro.maxSurgeSpec} (${ro.maxSurge}), most unavailable at once ${ro.maxUnavailableSeen}`);
    if (ro.surgeDisabled) ctx.out(`  surge: ${ro.surgeDisabled}`);
    if (ro.failed) ctx.out(`  failed at ${ro.failed.instance}: ${ro.failed.reason}`);
  }
  return 0;
};

export function registerHistory(program: Command, bind: <O>(a: Action<O>) => (...args: unknown[]) => Promise<void>): void {
  program
    .command("history")
    .argument("<template|global-unit>")
    .description("List the revisions of a template or global unit (deploy, rollback) and its current or last rollout")
    .option("--no-legend", "Do not print a legend (column headers)")
    .action(bind(history));
}
