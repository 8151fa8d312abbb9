/**
 * A rollout's plan (the answer of `POST /deployments/<template>`) rebuilt from its stored record: what
 * fleetd answers a retried request with (same `requestId`), and what fleetctl prints when the answer
 * to its request was lost and it found the rollout in the template's history instead.
 */
import type { ApiDeployPlan, DeploymentRecord, RolloutRecord } from "./deploy-types";

/** Lines removed (`- `) and added (`+ `), in order of appearance (small unit files: a set difference). */
export function diffLines(before: string, after: string): string[] {
  const a = before.split("\n");
  const b = after.split("\n");
  const inB = new Set(b);
  const inA = new Set(a);
  return [...a.filter((l) => !inB.has(l) && l.trim() !== "").map((l) => `- ${l}`), ...b.filter((l) => !inA.has(l) && l.trim() !== "").map((l) => `+ ${l}`)];
}

/**
 * The revision a rollout to `revision` starts from: the newest earlier revision with the template's
 * current body `hash` (after a rollback to 1, revision 3 has revision 1's body; the next deploy is
 * "from revision 3", not 1).
 */
export function fromRevisionOf(record: Pick<DeploymentRecord, "revisions">, hash: string, revision: number): number | undefined {
  let from: number | undefined;
  for (const v of record.revisions) if (v.hash === hash && v.revision < revision) from = v.revision;
  return from;
}

/** The plan of `rollout` (the record's current or last one), as its start request was answered. */
export function planOfRollout(record: DeploymentRecord, rollout: RolloutRecord): ApiDeployPlan {
  const r = rollout;
  const rev = record.revisions.find((v) => v.revision === r.revision);
  const fromRevision = fromRevisionOf(record, r.fromHash, r.revision);
  const fromText = record.revisions.find((v) => v.revision === fromRevision)?.text ?? r.bodies[r.fromHash];
  return {
    template: record.template,
    dryRun: false,
    revision: r.revision,
    fromRevision,
    hash: r.toHash,
    change: rev?.change ?? "deploy",
    instances: r.instances.filter((i) => r.previous[i] !== r.toHash),
    unchanged: r.instances.filter((i) => r.previous[i] === r.toHash),
    maxUnavailable: r.maxUnavailable,
    maxSurge: r.maxSurge,
    deadlineMs: r.deadlineMs,
    diff: fromText !== undefined && rev ? diffLines(fromText, rev.text) : [],
  };
}

/** The rollout request `requestId` started, when it is the record's current (or last) rollout. */
export function rolloutOfRequest(record: DeploymentRecord | undefined, requestId: string): RolloutRecord | undefined {
  const r = record?.rollout;
  return r && r.requestId === requestId ? r : undefined;
}
