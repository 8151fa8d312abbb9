/**
 * Actions on a unit through fleet's own API, with the bearer token in a header (so a page on another
 * site can never make the browser act: it cannot set that header without a CORS preflight fleetd
 * does not grant). start = desired launched, stop = loaded, unload = inactive, destroy = DELETE; and
 * on a template: scale (instance count) and deploy (`Environment=KEY=VALUE` assignments, rolling); on a
 * global unit: deploy (rolled machine by machine).
 */
import type { ApiDeployPlan, ApiDeployRequest, ApiScalePlan, ApiScaleRequest, DeploymentSummary } from "../../../lib/api/deploy-types";
import { instanceRuns } from "../../../lib/unit/instance-runs";
import type { UnitTargetState } from "../../../lib/api/types";
import type { Credentials } from "./credentials";
import { errorText } from "./event-stream";

export type UnitAction = UnitTargetState | "destroy";

export const ACTION_VERBS: Record<UnitAction, string> = { launched: "start", loaded: "stop", inactive: "unload", destroy: "destroy" };

/** Runs the action; throws an Error whose message says what failed and why. */
export async function runUnitAction(credentials: Credentials, name: string, action: UnitAction): Promise<void> {
  const url = `fleet/v1/units/${encodeURIComponent(name)}`;
  const res =
    action === "destroy"
      ? await fetch(url, { method: "DELETE", headers: credentials.headers(), cache: "no-store" })
      : await fetch(url, {
          method: "PUT",
          headers: credentials.headers({ "Content-Type": "application/json" }),
          body: JSON.stringify({ name, desiredState: action }),
          cache: "no-store",
        });
  if (!res.ok) throw new Error(`Cannot ${ACTION_VERBS[action]} ${name}: fleetd answered ${res.status}: ${await errorText(res)}`);
}

/** The unit file as `fleetctl cat` prints it, from `GET /fleet/v1/units/<name>`. */
export async function fetchUnitFile(credentials: Credentials, name: string, signal: AbortSignal): Promise<string> {
  const res = await fetch(`fleet/v1/units/${encodeURIComponent(name)}`, { headers: credentials.headers(), cache: "no-store", signal });
  if (!res.ok) throw new Error(`Cannot read ${name}: fleetd answered ${res.status}: ${await errorText(res)}`);
  const unit = (await res.json()) as { options?: { section: string; name: string; value: string }[] };
  const lines: string[] = [];
  let section = "";
  for (const o of unit.options ?? []) {
    if (o.section !== section) {
      if (lines.length > 0) lines.push("");
      lines.push(`[${o.section}]`);
      section = o.section;
    }
    lines.push(`${o.name}=${o.value}`);
  }
  return lines.join("\n");
}

/**
 * `KEY=VALUE` assignments separated by spaces (as `fleetctl deploy --set` takes them one by one).
 * Throws an Error that says which word is wrong and what to write.
 */
export function parseAssignments(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const eq = word.indexOf("=");
    if (eq <= 0) throw new Error(`"${word}" is not KEY=VALUE: write e.g. image=registry.cluster:5000/web:2 (several separated by spaces)`);
    out[word.slice(0, eq)] = word.slice(eq + 1);
  }
  if (Object.keys(out).length === 0) throw new Error("nothing to deploy: write KEY=VALUE (e.g. image=registry.cluster:5000/web:2)");
  return out;
}

async function postJson<T>(credentials: Credentials, path: string, body: unknown, what: string): Promise<T> {
  const res = await fetch(path, { method: "POST", headers: credentials.headers({ "Content-Type": "application/json" }), body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`Cannot ${what}: fleetd answered ${res.status}: ${await errorText(res)}`);
  return (await res.json()) as T;
}

/** Creates or destroys instances of `template` to reach `instances` (`POST /fleet/v1/scale/<template>`); says what it did. */
export async function runScale(credentials: Credentials, template: string, instances: number): Promise<string> {
  const plan = await postJson<ApiScalePlan>(credentials, `fleet/v1/scale/${encodeURIComponent(template)}`, { instances } satisfies ApiScaleRequest, `scale ${template} to ${instances}`);
  // Runs of five or more as web@{1..10000}.service: a scale to 10,000 named every instance.
  const names = instanceRuns(template);
  const changes = [...(plan.create.length ? [`created ${names.format(plan.create)}`] : []), ...(plan.destroy.length ? [`destroyed ${names.format(plan.destroy)}`] : [])];
  return `scale ${template}: ${plan.from} → ${plan.to}${changes.length ? ` (${changes.join("; ")})` : " (nothing to do)"}`;
}

/**
 * Starts a rolling deployment with `Environment=` assignments (`POST /fleet/v1/deployments/<name>`) of a
 * template (to its instances) or of a global unit (to the machines that run it): `noun` says which.
 */
export async function runDeploy(credentials: Credentials, template: string, set: Record<string, string>, noun: "instance" | "machine"): Promise<string> {
  const plan = await postJson<ApiDeployPlan>(credentials, `fleet/v1/deployments/${encodeURIComponent(template)}`, { set } satisfies ApiDeployRequest, `deploy ${template}`);
  if (plan.instances.length === 0) return `deploy ${template}: revision ${plan.revision}, every ${noun} already runs it`;
  return `deploy ${template}: revision ${plan.revision} rolling out to ${plan.instances.length} ${noun}${plan.instances.length === 1 ? "" : "s"}`;
}

/** Stops the running rollout of a template or global unit: its instances (machines) go back to the bodies they had (`POST …/deployments/<template>` with `abort`). */
export async function runStop(credentials: Credentials, template: string): Promise<string> {
  const plan = await postJson<ApiDeployPlan>(credentials, `fleet/v1/deployments/${encodeURIComponent(template)}`, { abort: true } satisfies ApiDeployRequest, `stop the rollout of ${template}`);
  return `stop ${template}: rollout of revision ${plan.revision} stopped; its instances go back to the bodies they had`;
}

/**
 * One line on the template's current or last rollout, from `GET /fleet/v1/deployments/<template>?brief=true`
 * (the record without per-instance lists: a few hundred bytes at any instance count); `running`: look
 * again soon; `bad`: it was rolled back or failed; `stoppable`: it rolls forward and nobody stopped it yet.
 */
export async function fetchRolloutLine(credentials: Credentials, template: string, signal: AbortSignal): Promise<{ text: string; running: boolean; bad: boolean; stoppable: boolean }> {
  const res = await fetch(`fleet/v1/deployments/${encodeURIComponent(template)}?brief=true`, { headers: credentials.headers(), cache: "no-store", signal });
  if (!res.ok) throw new Error(`Cannot read the rollouts of ${template}: fleetd answered ${res.status}: ${await errorText(res)}`);
  const d = (await res.json()) as DeploymentSummary;
  const r = d.rollout;
  if (!r) return { text: `no rollout yet (revisions: ${d.revisions.length})`, running: false, bad: false, stoppable: false };
  if (r.phase !== "done") return { text: `rollout of revision ${r.revision} (${r.phase}): ${r.message}`, running: true, bad: r.phase === "rolling-back", stoppable: r.phase === "rolling" && r.aborted === undefined };
  const outcome = r.outcome ?? "done";
  return { text: `rollout of revision ${r.revision} ${outcome}${r.finishedAt ? ` at ${r.finishedAt}` : ""}: ${r.message}`, running: false, bad: outcome !== "succeeded" && outcome !== "done", stoppable: false };
}
