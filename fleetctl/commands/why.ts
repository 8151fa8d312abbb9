/**
 * `fleetctl why UNIT`: per machine, what the scheduler makes of the unit there: the machine it is on,
 * where it would go now, machines that could take it, and the rule excluding each other machine.
 * Asked of the fleetd fleetctl talks to (`GET /why/<unit>`), which builds the scheduler's model from
 * one consistent etcd read.
 */
import type { Command } from "commander";
import type { ApiWhy } from "../../lib/api/scheduler-types";
import type { ApiMachine } from "../../lib/api/types";
import { mangleUnitName } from "../../lib/unit";
import { ApiError } from "../../lib/api/client";
import { apiFailure } from "../api-errors";
import { CliError } from "../cli-error";
import { machineFullLegend, machineIdLegend } from "../legend";
import { formatTable } from "../tabwriter";
import type { Action } from "./action";

interface WhyOpts {
  output?: string;
  full?: boolean;
  legend?: boolean;
}

/** The first line: where the unit is, or why it is nowhere. */
function headline(w: ApiWhy, legend: (id: string) => string): string {
  const best = w.machines.find((m) => m.verdict === "best");
  const fits = w.machines.filter((m) => m.verdict !== "excluded").length;
  const of = `${w.machines.length} machine${w.machines.length === 1 ? "" : "s"}`;
  if (w.global) return `${w.unit} is global (desired ${w.desiredState}): scheduled on ${w.globalMachines?.length ?? 0} of ${of}; it runs on every machine no rule excludes`;
  if (w.machineID !== undefined) {
    const current = w.machines.find((m) => m.machineID === w.machineID);
    if (w.machineGone) return `${w.unit} (desired ${w.desiredState}) is placed on ${legend(w.machineID)}, which is not registered now; the engine moves it once the machine's grace has passed${best ? ` (it would go to ${legend(best.machineID)})` : ""}`;
    const stay = current?.rule !== undefined ? `; ${current.rule} no longer allows it there (${current.detail}), the engine moves it` : "";
    return `${w.unit} (desired ${w.desiredState}) is on ${legend(w.machineID)}${stay}; ${fits} of ${of} could run it`;
  }
  if (w.desiredState === "inactive") return `${w.unit} is inactive: the scheduler places it only once it is loaded or started${best ? `; it would go to ${legend(best.machineID)}` : "; no machine could run it now"}`;
  if (best !== undefined) return `${w.unit} (desired ${w.desiredState}) has no machine yet; the scheduler would put it on ${legend(best.machineID)}`;
  return `${w.unit} (desired ${w.desiredState}) has no machine: ${w.unscheduledReason ?? `no machine can run it (${of})`}`;
}

export const why: Action<WhyOpts> = async (ctx, args, opts) => {
  if (args.length !== 1) throw new CliError("One unit required, e.g. fleetctl why web@1.service");
  const output = opts.output ?? "table";
  if (output !== "table" && output !== "json") throw new CliError(`Invalid --output "${output}": use table or json`);
  const name = mangleUnitName(args[0]!);
  const api = await ctx.api();
  let answer: ApiWhy;
  try {
    answer = await api.why(name, ctx.signal);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && err.message.startsWith(`unit ${name} `)) {
      throw new CliError(`Cannot explain ${name}: no such unit in the cluster; "fleetctl list-unit-files" lists the units`);
    }
    if (err instanceof ApiError && err.status === 400) throw new CliError(`Cannot explain ${name}: ${err.message.replace(/^cannot explain [^:]+: /, "")}`);
    throw apiFailure(`Error asking fleet why ${name} is where it is`, err);
  }
  if (output === "json") {
    ctx.out(JSON.stringify(answer, null, 2));
    return 0;
  }
  const full = opts.full === true;
  const machines = await ctx.machines().catch(() => new Map<string, ApiMachine>());
  ctx.out(headline(answer, (id) => machineFullLegend(id, machines.get(id), full)));
  if (answer.machines.length === 0) {
    ctx.out("No machines are registered.");
    return 0;
  }
  const rows: string[][] = opts.legend === false ? [] : [["MACHINE", "VERDICT", "RULE", "DETAIL"]];
  for (const m of answer.machines) rows.push([machineIdLegend(m.machineID, full), m.verdict, m.rule ?? "-", m.detail || "-"]);
  ctx.io.stdout.write(formatTable(rows));
  return 0;
};

export function registerWhy(program: Command, bind: <O>(a: Action<O>) => (...args: unknown[]) => Promise<void>): void {
  program
    .command("why")
    .argument("<unit>")
    .description("Explain, per machine, where the scheduler puts a unit and which rule (MachineID, MachineOf, MachineMetadata, Conflicts, Replaces, Resources, Spread) keeps it off each other machine")
    .option("-o, --output <format>", "Output format: table, or json (the API's answer, for scripts)", "table")
    .option("-l, --full", "Do not ellipsize machine IDs")
    .option("--no-legend", "Do not print a legend (column headers)")
    .action(bind(why));
}
