/**
 * `fleetctl rebalance [--max-moves N] [--dry-run]`: moves placed units onto new or recovered machines
 * (less loaded, or spreading a template better), one at a time, each waited for on its new machine
 * before the next. `--dry-run` prints the plan and changes nothing. Asks the fleetd fleetctl talks to
 * (`POST /rebalance`, one request per move so each is reported as it happens).
 */
import type { Command } from "commander";
import type { ApiRebalanceMove } from "../../lib/api/scheduler-types";
import { apiFailure } from "../api-errors";
import { CliError } from "../cli-error";
import { durationInRange } from "../duration-option";
import { machineIdLegend } from "../legend";
import type { Action } from "./action";
import { parseCount } from "./action";

interface RebalanceOpts {
  maxMoves?: number;
  dryRun?: boolean;
  full?: boolean;
  /** Milliseconds (`--deadline 90s`; a bare number is seconds). */
  deadline?: number;
}

/** The API's bounds of a move's deadline. */
const MIN_DEADLINE_MS = 1_000;
const MAX_DEADLINE_MS = 3_600_000;
const DEFAULT_DEADLINE_MS = 60_000;

export const rebalance: Action<RebalanceOpts> = async (ctx, args, opts) => {
  if (args.length > 0) throw new CliError(`fleetctl rebalance takes no arguments (got ${args.join(" ")}); use --max-moves N to bound the moves`);
  const maxMoves = opts.maxMoves ?? 1;
  if (!Number.isInteger(maxMoves) || maxMoves < 1 || maxMoves > 1000) throw new CliError(`Invalid --max-moves ${maxMoves}: use a whole number from 1 to 1000 (the most units moved)`);
  // Bounded by the option's parser (durationInRange).
  const deadlineMs = opts.deadline ?? DEFAULT_DEADLINE_MS;
  const full = opts.full === true;
  const at = (id: string): string => machineIdLegend(id, full);
  const describe = (m: ApiRebalanceMove): string => `${m.unit} from ${at(m.from)} to ${at(m.to)} (${m.reason})`;
  const api = await ctx.api();
  if (opts.dryRun) {
    let plan;
    try {
      plan = await api.rebalance({ maxMoves, dryRun: true }, ctx.signal);
    } catch (err) {
      throw apiFailure("Error planning the rebalance", err);
    }
    for (const m of plan.moves) ctx.out(`Would move ${describe(m)}`);
    ctx.out(plan.moves.length === 0 ? `Nothing to move: no move of the ${plan.considered} movable unit(s) lowers the load or the spread skew (dry run)` : `Dry run: ${plan.moves.length} unit(s) would move (at most ${maxMoves}), nothing changed`);
    return 0;
  }
  let moved = 0;
  while (moved < maxMoves) {
    let plan;
    try {
      plan = await api.rebalance({ maxMoves: 1, deadlineMs }, ctx.signal);
    } catch (err) {
      throw apiFailure(`Error rebalancing (after ${moved} move(s))`, err);
    }
    const done = plan.moves.filter((m) => m.outcome === "moved");
    for (const m of plan.moves) {
      if (m.outcome === "moved") ctx.out(`Moved ${describe(m)}`);
      else if (m.outcome === "conflict") ctx.out(`Skipped ${m.unit}: the cluster changed while moving it (planned again)`);
    }
    const failed = plan.moves.find((m) => m.outcome === "timeout");
    if (failed) throw new CliError(`Stopped rebalancing: ${failed.unit} was moved to ${at(failed.to)} but is not active there within ${deadlineMs / 1000} s; see fleetctl status ${failed.unit} (moved ${moved + done.length} unit(s) before it)`);
    if (done.length === 0) break;
    moved += done.length;
  }
  ctx.out(moved === 0 ? "Nothing to move: no move lowers the load or the spread skew" : `Rebalanced: moved ${moved} unit(s) (at most ${maxMoves})`);
  return 0;
};

export function registerRebalance(program: Command, bind: <O>(a: Action<O>) => (...args: unknown[]) => Promise<void>): void {
  program
    .command("rebalance")
    .description("Move units onto new or recovered machines (less loaded, or a template spread better), one at a time, never breaking a rule; never automatic unless fleet.conf sets rebalance_interval")
    .option("--max-moves <n>", "Most units to move (the disruption budget)", parseCount, 1)
    .option("--dry-run", "Print the moves without changing anything")
    .option("--deadline <duration>", "Per move, how long to wait for the unit to be active on its new machine before stopping: 90s, 2m, or seconds (default 60s)", durationInRange(MIN_DEADLINE_MS, MAX_DEADLINE_MS, "1s to 1h"))
    .option("-l, --full", "Do not ellipsize machine IDs")
    .action(bind(rebalance));
}
