/**
 * Wire types of fleetd's operations extension (scale, rolling deployments, history, rollback): shared by
 * fleetd's API and deploy controller (stored as such at `P/deployments/<template>`) and fleetctl.
 * fleet's own clients never call these endpoints; see `fleetd/api/README.md`.
 */
import type { UnitOption } from "./types";

export type RolloutPhase = "rolling" | "rolling-back" | "done";
export type RolloutOutcome = "succeeded" | "rolled-back" | "failed";

/** One body a template had. Revision numbers only grow. */
export interface RevisionRecord {
  revision: number;
  /** SHA1 of the canonical unit text (the unit hash). */
  hash: string;
  /** The canonical template text, so a rollback works after the body left `P/bodies/`. */
  text: string;
  /** ISO time the revision was recorded. */
  createdAt: string;
  /** What made it: "initial", "deploy", "deploy --set image=…", "rollback to 2". */
  change: string;
  /** Outcome of the rollout that introduced it ("succeeded", "rolled-back", "failed"); absent while running. */
  outcome?: RolloutOutcome;
  /** The `requestId` of the deploy/rollback request that recorded it, when the client sent one. */
  requestId?: string;
}

/** The rollout in progress (or the last one, with `phase: "done"`). */
export interface RolloutRecord {
  /** Revision being rolled out. */
  revision: number;
  toHash: string;
  /** The template's hash before the rollout (restored on the template when it is rolled back). */
  fromHash: string;
  /** The limits as given (`1`, `25%`) and as resolved against the instance count. */
  maxUnavailableSpec: string;
  maxSurgeSpec: string;
  maxUnavailable: number;
  maxSurge: number;
  /** An instance that does not become active on its new body within this long fails the rollout. */
  deadlineMs: number;
  startedAt: string;
  phase: RolloutPhase;
  outcome?: RolloutOutcome;
  finishedAt?: string;
  /** The instances rolled, in order (numbers ascending). */
  instances: string[];
  /** Each instance's hash before the rollout: what an automatic rollback restores. */
  previous: Record<string, string>;
  /** Texts of the previous hashes (the rollback needs them even if their bodies were collected). */
  bodies: Record<string, string>;
  /** Instances whose new body was written and that are not active on it yet: epoch ms of the write. */
  pending: Record<string, number>;
  /** Surge instances currently created for this rollout. */
  surge: string[];
  /** Why surge was given up (placement did not allow it); the rollout then stops before it starts. */
  surgeDisabled?: string;
  /** The instance that did not become active, and why. */
  failed?: { instance: string; reason: string };
  /**
   * ISO time an operator stopped the rollout (`fleetctl rollback` while it ran, `abort` in the API): it
   * is rolled back as after a failure and ends `rolled-back`.
   */
  aborted?: string;
  /** Most instances unavailable at once as the controller saw it (sampled every tick). */
  maxUnavailableSeen: number;
  /** Human-readable last step, for `fleetctl deploy` progress lines. */
  message: string;
  /** The `requestId` of the request that started it, when the client sent one (a retry with it is answered with this rollout). */
  requestId?: string;
}

export interface DeploymentRecord {
  template: string;
  revisions: RevisionRecord[];
  rollout?: RolloutRecord;
}

/** The rollout's fields that grow with the instance count or the bodies' size. */
export type RolloutDetail = "instances" | "previous" | "pending" | "bodies";

/**
 * `GET /deployments/<template>?brief=true`: the record without the rollout's per-instance lists and
 * bodies and without the revisions' texts; what following a rollout and the `revision` column need.
 * At 10,000 instances the whole record is about 1 MB of JSON, and `fleetctl deploy` reads it every
 * 250 ms. (A fleetd that predates `brief` answers the whole record: a superset.)
 */
export interface DeploymentSummary {
  template: string;
  revisions: Omit<RevisionRecord, "text">[];
  rollout?: Omit<RolloutRecord, RolloutDetail>;
}

export function summarizeDeployment(record: DeploymentRecord): DeploymentSummary {
  const revisions = record.revisions.map(({ text: _text, ...rest }) => rest);
  if (!record.rollout) return { template: record.template, revisions };
  const { instances: _i, previous: _p, pending: _n, bodies: _b, ...rollout } = record.rollout;
  return { template: record.template, revisions, rollout };
}

/** `POST /deployments/<template>`: start a rollout (or plan it with `dryRun`). */
export interface ApiDeployRequest {
  /** New template body; absent = the template's current body (with `set` applied). */
  options?: UnitOption[];
  /** `Environment=KEY=VALUE` assignments to set in the body's [Service] section. */
  set?: Record<string, string>;
  /** Redeploy this earlier revision's body (rollback); excludes `options` and `set`. */
  toRevision?: number;
  /** A count (`1`) or a percentage of the instances (`25%`). Default `1`. */
  maxUnavailable?: string;
  /** A count or a percentage. Default `0`. */
  maxSurge?: string;
  /** Per-instance deadline to become active. Default {@link DEFAULT_DEADLINE_MS}. */
  deadlineMs?: number;
  dryRun?: boolean;
  /**
   * Stop the running rollout and roll its instances back to the bodies they had (what `fleetctl
   * rollback` does while a rollout runs). Takes no `options`, `set` or `toRevision`. Answered with the
   * running rollout's plan and `aborted: true`; asking again while it rolls back changes nothing.
   */
  abort?: boolean;
  /**
   * Client-chosen ID of this request (1 to 128 of `A-Z a-z 0-9 . _ : -`), recorded with the rollout. A
   * request whose ID is the current rollout's is not started again: it is answered with that rollout's
   * plan (`replayed: true`), so a client whose answer was lost may safely send it again.
   */
  requestId?: string;
}

/** Answer of `POST /deployments/<template>`: what changes (and, unless `dryRun`, is now rolling). */
export interface ApiDeployPlan {
  template: string;
  dryRun: boolean;
  revision: number;
  fromRevision: number | undefined;
  hash: string;
  change: string;
  /** Instances that get the new body, in rollout order. */
  instances: string[];
  /** Instances already on it. */
  unchanged: string[];
  maxUnavailable: number;
  maxSurge: number;
  deadlineMs: number;
  /** Body lines that differ (`- old`, `+ new`). */
  diff: string[];
  /** The request's `requestId` had already started this rollout: nothing new was recorded. */
  replayed?: boolean;
  /** Answer to `abort`: this rollout is stopped and rolling back. */
  aborted?: boolean;
}

/** Most instances of a template that `scale` (and `fleetctl start --instances`) make. */
export const MAX_INSTANCES = 10_000;

/** `POST /scale/<template>`. */
export interface ApiScaleRequest {
  instances: number;
  dryRun?: boolean;
}

/** Answer of `POST /scale/<template>`. */
export interface ApiScalePlan {
  template: string;
  dryRun: boolean;
  from: number;
  to: number;
  create: string[];
  destroy: string[];
}

/** Default time an instance has to become active on its new body before the rollout fails. */
export const DEFAULT_DEADLINE_MS = 120_000;
