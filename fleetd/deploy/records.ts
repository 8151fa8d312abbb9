/**
 * `P/deployments/<template>`: a template's revision history and its rollout (one JSON record per
 * template, written by the API when a deploy/rollback starts and by the leading engine's deploy
 * controller while it rolls; every controller write is leader-guarded). See `fleetd/REGISTRY.md`.
 */
import type { Keys } from "../registry/keys";
import type { DeploymentRecord, RolloutRecord } from "../../lib/api/deploy-types";

export type { DeploymentRecord, RevisionRecord, RolloutOutcome, RolloutPhase, RolloutRecord } from "../../lib/api/deploy-types";
export { DEFAULT_DEADLINE_MS } from "../../lib/api/deploy-types";

/** Revisions kept per template (the oldest are dropped; a rollback can reach these). */
export const MAX_REVISIONS = 10;

/** `P/deployments/` and `P/deployments/<template>`. */
export function deploymentsPrefix(keys: Keys): string {
  return keys.deployments;
}

export function deploymentKey(keys: Keys, template: string): string {
  return keys.deployment(template);
}

/** Whether a rollout of this record is still going. */
export function isRunning(record: DeploymentRecord | undefined): record is DeploymentRecord & { rollout: RolloutRecord } {
  return record?.rollout !== undefined && record.rollout.phase !== "done";
}

/** The revision whose hash is `hash` (the newest such), or undefined. */
export function revisionOfHash(record: DeploymentRecord | undefined, hash: string): number | undefined {
  if (!record) return undefined;
  for (let i = record.revisions.length - 1; i >= 0; i--) if (record.revisions[i]!.hash === hash) return record.revisions[i]!.revision;
  return undefined;
}

/** Surge instance names of a template: `web@surge-<revision>-<k>.service` (not numbered: scale ignores them). */
export function surgeName(template: string, revision: number, k: number): string {
  const at = template.indexOf("@");
  return `${template.slice(0, at)}@surge-${revision}-${k}${template.slice(at + 1)}`;
}
