/**
 * Blocking for load/start/stop/unload: every round (50 ms growing to 250 ms) reads the state of ALL awaited units at
 * once (one request per unit for a few units, else one listing), prints a line per unit as it arrives,
 * and gives up after `attempts` × 2 s (fleet's `defaultSleepTime` per attempt; 0 = wait forever).
 */
import type { ApiUnit, ApiUnitState, UnitTargetState } from "../lib/api/types";
import { delay } from "../lib/async/delay";
import type { CommandContext } from "./context";
import { machineFullLegend } from "./legend";
import { lookupUnits, SINGLE_FETCH_LIMIT } from "./unit-lookup";
import { isUnscheduled, remedy } from "./unscheduled-reason";

/** Why a unit that wants a machine has none, for one line: summary and what to do. */
function unscheduledWhy(unit: ApiUnit): string {
  const reason = unit.unscheduledReason;
  const summary = reason ? reason.summary : "the engine has recorded no reason yet";
  return `it is not scheduled on any machine: ${summary}. ${remedy(unit.name, reason)} Per-machine reasons: "fleetctl status ${unit.name}"`;
}

/** Longest time between two rounds (fleet polled every 250 ms). */
export const POLL_INTERVAL_MS = 250;

/** Round `n` (from 0) waits 50, 100, 200, 250, 250 ... ms: quick answers stay quick, load stays bounded. */
export function pollDelay(round: number): number {
  return Math.min(POLL_INTERVAL_MS, 50 * 2 ** round);
}
/** One block attempt, as fleet. */
export const ATTEMPT_MS = 2_000;

/** fleet's `getBlockAttempts`: `--no-block` → -1 (do not wait), N > 0 → N, else 0 (forever). */
export function blockAttempts(opts: { block?: boolean; blockAttempts?: number }): number {
  if (opts.block === false) return -1;
  const n = opts.blockAttempts ?? 0;
  return n > 0 ? n : 0;
}

async function describeReached(ctx: CommandContext, unit: ApiUnit | undefined, name: string, target: UnitTargetState): Promise<string> {
  if (!unit?.machineID) return `Unit ${name} ${target}`;
  const machine = (await ctx.machines()).get(unit.machineID);
  return `Unit ${name} ${target} on ${machineFullLegend(unit.machineID, machine, false)}`;
}

/**
 * Waits until every unit's current state is `target`. Returns undefined on success, else fleet's
 * message for the first unit that did not make it ("timed out waiting for unit X to report state Y").
 */
export async function waitForUnitStates(
  ctx: CommandContext,
  names: readonly string[],
  target: UnitTargetState,
  attempts: number,
  options: { report?: "each" | "count" } = {},
): Promise<string | undefined> {
  let last = new Map<string, ApiUnit>();
  const deadline = attempts > 0 ? Date.now() + attempts * ATTEMPT_MS : Infinity;
  const pending = new Set(names);
  const count = options.report === "count" ? countReporter(ctx, names.length, target) : undefined;
  /** Units already said to be unschedulable (once each: the wait goes on, by default forever). */
  const explained = new Set<string>();
  for (let round = 0; pending.size > 0; round++) {
    const units = await lookupUnits(ctx, [...pending]);
    // Seen on the last round: a unit left without a machine says why in the timeout message.
    last = units;
    // A bounded wait puts the reason in its timeout message; a wait without end says it as it goes.
    if (target !== "inactive" && attempts <= 0) sayUnschedulable(ctx, [...pending].filter((n) => !explained.has(n)), units, explained);
    for (const name of [...pending]) {
      const unit = units.get(name);
      // A unit destroyed meanwhile is as inactive as it gets; global units have no current state, so
      // their desired state counts (as in fleet).
      const state = unit ? (unit.currentState ?? unit.desiredState) : "inactive";
      if (state !== target) continue;
      if (!count) ctx.out(await describeReached(ctx, unit, name, target));
      pending.delete(name);
    }
    count?.(names.length - pending.size);
    if (pending.size === 0) break;
    if (Date.now() + pollDelay(round) > deadline) {
      const name = pending.values().next().value!;
      const unit = last.get(name);
      const why = unit && target !== "inactive" && isUnscheduled(unit, false) ? `: ${unscheduledWhy(unit)}` : "";
      return `timed out waiting for unit ${name} to report state ${target}${why}`;
    }
    await delay(pollDelay(round), ctx.signal);
  }
  return undefined;
}

/**
 * A wait without end (no --block-attempts) for units the engine cannot place went on silently: says
 * once, on stderr, which unit has no machine and why (the first, and how many more), and that
 * the wait goes on.
 */
function sayUnschedulable(ctx: CommandContext, names: readonly string[], units: ReadonlyMap<string, ApiUnit>, explained: Set<string>): void {
  const stuck = names.filter((n) => {
    const u = units.get(n);
    return u !== undefined && u.unscheduledReason !== undefined && isUnscheduled(u, false);
  });
  if (stuck.length === 0) return;
  const more = stuck.length > 1 ? ` (and ${stuck.length - 1} more unit${stuck.length > 2 ? "s" : ""} not scheduled)` : "";
  ctx.err(`Still waiting: ${stuck[0]} ${unscheduledWhy(units.get(stuck[0]!)!)}${more}`);
  for (const n of stuck) explained.add(n);
}

/** Seconds between two progress lines of a wait that reports a count. */
const COUNT_REPORT_MS = 2_000;

/**
 * For waits on many units: a line on stderr at most every 2 s while the count of units in `target`
 * grows ("4,180 of 10,000 units launched"), and one on stdout when all are.
 */
export function countReporter(ctx: CommandContext, total: number, target: UnitTargetState): (reached: number) => void {
  let lastAt = Date.now();
  let lastCount = 0;
  return (reached) => {
    if (reached === total) {
      ctx.out(`All ${total.toLocaleString("en-US")} units ${target}`);
    } else if (reached !== lastCount && Date.now() - lastAt >= COUNT_REPORT_MS) {
      ctx.err(`${reached.toLocaleString("en-US")} of ${total.toLocaleString("en-US")} units ${target}`);
      lastAt = Date.now();
      lastCount = reached;
    }
  };
}

/** The state each unit's machine reports (one request per unit for a few units, else one listing); a unit no machine reports is absent. */
export async function currentStates(ctx: CommandContext, names: readonly string[]): Promise<Map<string, ApiUnitState>> {
  const api = await ctx.api();
  const lists =
    names.length <= SINGLE_FETCH_LIMIT
      ? await Promise.all(names.map((n) => api.listUnitStates({ unitName: n }, ctx.signal)))
      : [await api.listUnitStates({}, ctx.signal)];
  const out = new Map<string, ApiUnitState>();
  for (const s of lists.flat()) if (!out.has(s.name)) out.set(s.name, s);
  return out;
}

/**
 * After `start` reached launched: waits until systemd reports each unit loaded and active (or, for a
 * oneshot that already finished, `exited`, or a batch unit whose run to success fleetd recorded as
 * `completed`). Unlike fleet, a unit systemd reports `failed` ends the wait at once with the reason
 * instead of timing out.
 */
export async function waitForSystemdActive(ctx: CommandContext, names: readonly string[], attempts: number): Promise<string | undefined> {
  const deadline = attempts > 0 ? Date.now() + attempts * ATTEMPT_MS : Infinity;
  const pending = new Set(names);
  let last = new Map<string, ApiUnitState>();
  for (let round = 0; pending.size > 0; round++) {
    last = await currentStates(ctx, [...pending]);
    const notRunning: string[] = [];
    for (const name of [...pending]) {
      const s = last.get(name);
      if (s?.systemdActiveState === "failed") {
        return `unit ${name} failed on machine ${s.machineID}: systemd reports ${s.systemdLoadState}/${s.systemdActiveState}/${s.systemdSubState}; see "fleetctl status ${name}" and "fleetctl journal ${name}"`;
      }
      if (s?.systemdLoadState === "loaded" && (s.systemdActiveState === "active" || s.systemdSubState === "exited")) {
        pending.delete(name);
      } else if (!s || s.systemdActiveState === "inactive") {
        notRunning.push(name);
      }
    }
    // A oneshot without RemainAfterExit= that ran to success is inactive/dead again (or already
    // unloaded, without a state): only its completion, recorded on the unit, tells it from one that
    // has not started yet. The wait on it went on forever.
    if (notRunning.length > 0) {
      const units = await lookupUnits(ctx, notRunning);
      for (const name of notRunning) if (units.get(name)?.completed) pending.delete(name);
    }
    if (pending.size === 0) break;
    if (Date.now() + pollDelay(round) > deadline) {
      const name = pending.values().next().value!;
      const s = last.get(name);
      const seen = s ? `${s.systemdLoadState}/${s.systemdActiveState}/${s.systemdSubState}` : "no state published yet";
      return `timed out waiting for unit ${name} to report systemd state active (last: ${seen})`;
    }
    await delay(pollDelay(round), ctx.signal);
  }
  return undefined;
}

/**
 * How long a unit restarted by `fleetctl restart` must stay up before the restart counts as done: a
 * service whose main process exits right after it started is first reported active/running (the start
 * job succeeded), then failed/failed once its agent publishes the exit (within ~250 ms).
 */
export const RESTART_SETTLE_MS = 1_000;

/**
 * How long a failed state that is the same as the one reported before the restart is taken for the
 * old run's: the state fleetd publishes (load/active/sub state and hash) carries no start time or
 * invocation ID, so a new failure cannot be told from the old one by what is reported, only by the time
 * the state stays the same.
 */
export const RESTART_STALE_FAILED_MS = 2_000;

const show = (s: ApiUnitState): string => `${s.systemdLoadState}/${s.systemdActiveState}/${s.systemdSubState}`;

/**
 * After `restart` set a unit launched again and its agent reported it launched: waits until systemd
 * reports it active (or, for a oneshot, exited or completed) and still not failed {@link RESTART_SETTLE_MS}
 * later. `before` is the state its machine reported once it had been stopped. Returns undefined when it
 * came back, else why not (what systemd reports, where, and what to do).
 */
export async function waitForRestarted(ctx: CommandContext, name: string, before: ApiUnitState | undefined, attempts: number): Promise<string | undefined> {
  const started = Date.now();
  const deadline = attempts > 0 ? started + attempts * ATTEMPT_MS : Infinity;
  const failedBefore = before?.systemdActiveState === "failed";
  let upSince: number | undefined;
  let last: ApiUnitState | undefined;
  for (let round = 0; ; round++) {
    last = (await currentStates(ctx, [name])).get(name);
    if (last?.systemdActiveState === "failed") {
      const stale = failedBefore && upSince === undefined && show(last) === show(before) && Date.now() - started < RESTART_STALE_FAILED_MS;
      if (!stale) {
        const machine = machineFullLegend(last.machineID, (await ctx.machines()).get(last.machineID), false);
        const when = upSince !== undefined ? "it was active, then failed" : failedBefore ? `it was failed before the restart and still is ${RESTART_STALE_FAILED_MS / 1000} s after` : "it failed after its start";
        return `unit ${name} did not come back after the restart: systemd reports ${show(last)} on ${machine} (${when}); see "fleetctl status ${name}" and "fleetctl journal ${name}", fix the unit and start it again ("fleetctl start ${name}")`;
      }
    } else if (last?.systemdLoadState === "loaded" && (last.systemdActiveState === "active" || last.systemdSubState === "exited")) {
      upSince ??= Date.now();
      if (Date.now() - upSince >= RESTART_SETTLE_MS) return undefined;
    } else if (upSince === undefined && (!last || last.systemdActiveState === "inactive") && (await lookupUnits(ctx, [name])).get(name)?.completed) {
      return undefined; // a batch unit that ran to success again
    }
    if (Date.now() + pollDelay(round) > deadline) {
      return `timed out waiting for unit ${name} to report systemd state active after the restart (last: ${last ? show(last) : "no state published"})`;
    }
    await delay(pollDelay(round), ctx.signal);
  }
}
