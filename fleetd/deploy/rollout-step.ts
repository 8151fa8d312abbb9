/**
 * One decision of a rolling deployment, as a pure function of the rollout record and what the cluster
 * shows now (unit hashes, agent-reported states). The controller runs it every tick, carries out the
 * actions (leader-guarded) and stores the returned record, so a new leader resumes from etcd alone.
 *
 * Rules (Kubernetes' rolling update on fleet's instances):
 * - `available` = targeted instances active on their current body + active surge instances; an update
 *   of an active instance is allowed only while `available - 1 >= N - maxUnavailable`; an instance that
 *   is not active anyway is updated at once (it costs no availability).
 * - Surge instances (`maxSurge`, new body, extra names) are created first, so a new instance is active
 *   before an old one stops (make-before-break); a surge instance the scheduler cannot place turns
 *   surge off for the rest of the rollout (stop-then-start within `maxUnavailable`).
 * - An instance written to its new body that is not active on it within `deadlineMs` fails the
 *   rollout: every instance goes back to the hash it had (same rules), outcome `rolled-back`; a
 *   rollback that fails too ends `failed`.
 * - A rollout an operator stopped (`aborted`, set by the API) is rolled back the same way.
 */
import type { RolloutRecord } from "./records";
import { surgeName } from "./records";

/** What the controller sees of one instance (targeted or surge). */
export interface InstanceView {
  /** The unit record's hash; undefined when the unit does not exist (destroyed meanwhile). */
  hash: string | undefined;
  /** Its agent reports it active on that hash. */
  active: boolean;
  /** Desired state is not `launched` (stopped or unloaded by the operator): switched at once, never awaited. */
  idle?: boolean;
  /** The scheduler recorded why it cannot place it (`P/unscheduled/<name>`). */
  unschedulable?: string;
}

export interface StepInput {
  template: string;
  rollout: RolloutRecord;
  instances: ReadonlyMap<string, InstanceView>;
  now: number;
  /**
   * Most unit changes (updates, surge creations and removals) in this step; the rest follow in later
   * steps. The controller's is 1,000 (written in transactions of about 100). Default: no limit.
   */
  maxChanges?: number;
  /** What the rolled things are called in messages: "instances" (a template's, the default) or "machines" (a global unit's). */
  noun?: "instances" | "machines";
}

export interface StepOutput {
  /** Instances to write to a new hash (`toHash`), in order. */
  updates: { instance: string; toHash: string }[];
  createSurge: string[];
  destroySurge: string[];
  /** The record to store after the actions. */
  rollout: RolloutRecord;
}

/** The hash each targeted instance should end up with in the current phase. */
export function targetHash(rollout: RolloutRecord, instance: string): string {
  return rollout.phase === "rolling-back" ? (rollout.previous[instance] ?? rollout.toHash) : rollout.toHash;
}

export function step(input: StepInput): StepOutput {
  const r: RolloutRecord = structuredClone(input.rollout);
  const out: StepOutput = { updates: [], createSurge: [], destroySurge: [], rollout: r };
  if (r.phase === "done") return out;
  const { now } = input;
  const noun = input.noun ?? "instances";
  let room = input.maxChanges ?? Infinity;
  /** Takes one change from this step's allowance. */
  const change = (): boolean => room-- > 0;
  if (r.phase === "rolling" && r.aborted !== undefined) {
    removeSurge(r, out, change);
    return rollBack(r, out, "stopped by the operator: rolling back");
  }
  const view = (n: string): InstanceView => input.instances.get(n) ?? { hash: undefined, active: false };
  // Instances the operator stopped take the new body without a restart and are not waited for.
  const idleUpdates: string[] = [];
  for (const n of r.instances) {
    const v = view(n);
    if (v.hash !== undefined && v.idle === true && v.hash !== targetHash(r, n) && change()) idleUpdates.push(n);
  }
  for (const n of idleUpdates) {
    out.updates.push({ instance: n, toHash: targetHash(r, n) });
    delete r.pending[n];
  }
  const present = r.instances.filter((n) => view(n).hash !== undefined && view(n).idle !== true);
  const total = present.length;

  // Pending instances (updated ones, and surge instances since their creation): done when active on
  // their target, failed after the deadline. A surge instance the scheduler cannot place turns surge
  // off below instead.
  for (const n of Object.keys(r.pending)) {
    const v = view(n);
    const target = targetHash(r, n);
    if (v.hash === undefined || (v.hash === target && v.active)) {
      delete r.pending[n];
      continue;
    }
    if (v.hash !== target) continue; // written by an earlier phase; re-targeted below
    if (v.unschedulable !== undefined && r.surge.includes(n)) continue; // surge turns off below
    if (now - r.pending[n]! > r.deadlineMs) return fail(r, out, n, `not active within ${Math.round(r.deadlineMs / 1000)} s of getting its new body`, now, change);
  }
  // A new leader may find an instance already on its target but not marked pending (crash between
  // the unit write and the record write): its deadline starts now.
  for (const n of present) {
    const v = view(n);
    if (v.hash === targetHash(r, n) && !v.active && r.pending[n] === undefined) r.pending[n] = now;
  }

  const surgeActive = r.surge.filter((s) => view(s).active).length;
  const available = present.filter((n) => view(n).active).length + surgeActive;
  r.maxUnavailableSeen = Math.max(r.maxUnavailableSeen, total - Math.min(total, available));
  const remaining = present.filter((n) => view(n).hash !== targetHash(r, n));

  // Surge: only while rolling forward, while instances remain, unless placement refused it.
  const unplaceable = r.surge.find((s) => view(s).unschedulable !== undefined);
  if (unplaceable !== undefined && r.surgeDisabled === undefined) {
    r.surgeDisabled = `${unplaceable} cannot be placed (${view(unplaceable).unschedulable!}); rolling without surge`;
  }
  // Kept until the last updated instance is active: removing it earlier would break before make.
  const unfinished = remaining.length + Object.keys(r.pending).filter((n) => !r.surge.includes(n)).length;
  const surgeWanted = r.phase === "rolling" && r.surgeDisabled === undefined ? Math.min(r.maxSurge, unfinished) : 0;
  const keep = r.surge.slice(0, surgeWanted);
  // Surge instances not removed in this step (over the allowance) stay recorded until they are.
  for (const name of r.surge.slice(surgeWanted)) {
    if (!change()) {
      keep.push(name);
      continue;
    }
    out.destroySurge.push(name);
    delete r.pending[name];
  }
  for (let k = 1; keep.length < surgeWanted && room > 0; k++) {
    const name = surgeName(input.template, r.revision, k);
    if (keep.includes(name)) continue;
    change();
    keep.push(name);
    out.createSurge.push(name);
    r.pending[name] = now;
  }
  r.surge = keep;

  let budget = available - (total - r.maxUnavailable);
  const order = [...remaining].sort((a, b) => Number(view(a).active) - Number(view(b).active));
  for (const n of order) {
    const v = view(n);
    if (v.active && budget <= 0) continue;
    if (!change()) break;
    if (v.active) budget--;
    out.updates.push({ instance: n, toHash: targetHash(r, n) });
    r.pending[n] = now;
  }

  const updated = total - remaining.length + out.updates.length - idleUpdates.length;
  if (remaining.length === 0 && idleUpdates.length === 0 && Object.keys(r.pending).length === 0 && r.surge.length === 0) {
    r.phase = "done";
    r.outcome = r.failed || r.aborted !== undefined ? "rolled-back" : "succeeded";
    r.finishedAt = new Date(now).toISOString();
    if (r.failed) r.message = `rolled back: ${r.failed.instance} ${r.failed.reason}`;
    else if (r.aborted !== undefined) r.message = `rolled back: stopped by the operator at ${r.aborted}`;
    else r.message = `all ${total} ${noun} active on revision ${r.revision}`;
    return out;
  }
  const verb = r.phase === "rolling-back" ? "rolling back" : "rolling";
  r.message = `${verb}: ${updated}/${total} ${noun} updated, ${Object.keys(r.pending).length} starting, ${total - Math.min(total, available)} unavailable${r.surge.length > 0 ? `, ${r.surge.length} surge` : ""}`;
  return out;
}

/** The rollout failed at `instance`: roll every instance back (or end `failed` if this was the rollback). */
function fail(r: RolloutRecord, out: StepOutput, instance: string, reason: string, now: number, change: () => boolean): StepOutput {
  const left = removeSurge(r, out, change);
  if (r.phase === "rolling-back") {
    // Ends only without surge instances left (a done rollout is not stepped again); the instance
    // stays pending, so the next step comes back here and removes more.
    if (left.length > 0) {
      r.message = `rollback failed too: ${instance} ${reason}; removing ${left.length} surge instance(s)`;
      return out;
    }
    r.phase = "done";
    r.outcome = "failed";
    r.finishedAt = new Date(now).toISOString();
    r.message = `rollback failed too: ${instance} ${reason}; fix the unit and deploy again`;
    return out;
  }
  r.failed = { instance, reason };
  return rollBack(r, out, `${instance} ${reason}: rolling back`);
}

/** Removes the rollout's surge instances; those over this step's allowance stay recorded (the next steps remove them). */
function removeSurge(r: RolloutRecord, out: StepOutput, change: () => boolean): string[] {
  const left: string[] = [];
  for (const name of r.surge) (change() ? out.destroySurge : left).push(name);
  r.surge = left;
  return left;
}

/** Turns the rollout around: every instance goes back to its previous hash, nothing pending. */
function rollBack(r: RolloutRecord, out: StepOutput, message: string): StepOutput {
  r.phase = "rolling-back";
  r.pending = {};
  r.message = message;
  return out;
}
