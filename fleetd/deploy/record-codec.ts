/**
 * How a deployment record is stored at `P/deployments/<template>`. The rollout's per-instance fields
 * (`instances`, `previous`, `pending`) are stored as runs of instance numbers, grouped by hash and by
 * time: the deploy controller rewrites this key at every step that changes anything (up to every
 * 100 ms while rolling), and stored name by name it grew by about 110 bytes per instance plus twice
 * the template's name, to 1.16 MB at the 10,000 instances `scale` makes of
 * `frontend-api-gateway@.service` (over 11 MB/s into etcd at one step per 100 ms), and past etcd's
 * 1.5 MiB request limit with a longer name, which refused the deploy. Stored as runs, a rollout of
 * `web@1` … `web@10000` from one body is a few hundred bytes.
 *
 * Everything else (the API's answers, the controller, `rollout-step.ts`) works on the expanded
 * {@link DeploymentRecord}; only this module knows the stored form. Records written before this form
 * (full `instances`/`previous`/`pending`) are read as they are.
 */
import { summarizeDeployment, type DeploymentRecord, type DeploymentSummary, type RolloutRecord } from "../../lib/api/deploy-types";
import { instanceRuns, isTemplate, type InstanceRuns } from "../../lib/unit";
import { parseRecord } from "../registry/keys";

type PerInstance = "instances" | "previous" | "pending";

/** The rollout as stored: its per-instance fields as runs. */
export interface StoredRollout extends Omit<RolloutRecord, PerInstance> {
  instanceRuns: InstanceRuns;
  /** hash → the instances whose hash it was before the rollout. */
  previousRuns: Record<string, InstanceRuns>;
  /** [epoch ms, the instances pending since then]. */
  pendingRuns: Array<[number, InstanceRuns]>;
}

/** The record's JSON as stored in etcd. */
export function encodeDeployment(record: DeploymentRecord): string {
  // A global unit's rollout lists machine IDs, which have no runs: stored as they are (one entry per machine).
  if (!record.rollout || !isTemplate(record.template)) return JSON.stringify(record);
  const { instances, previous, pending, ...rest } = record.rollout;
  const names = instanceRuns(record.template);
  const rollout: StoredRollout = {
    ...rest,
    instanceRuns: names.encode(instances),
    previousRuns: Object.fromEntries([...groupBy(previous)].map(([hash, list]) => [hash, names.encode(list)])),
    pendingRuns: [...groupBy(pending)].map(([since, list]) => [since, names.encode(list)]),
  };
  return JSON.stringify({ ...record, rollout });
}

/** A stored record, expanded. */
export function decodeDeployment(key: string, value: Buffer | string): DeploymentRecord {
  const stored = parseRecord<DeploymentRecord & { rollout?: RolloutRecord | StoredRollout }>(key, value);
  const r = stored.rollout;
  if (!r || !("instanceRuns" in r)) return stored;
  const { instanceRuns: instanceList, previousRuns, pendingRuns, ...rest } = r;
  const names = instanceRuns(stored.template);
  try {
    const previous: Record<string, string> = {};
    for (const [hash, runs] of Object.entries(previousRuns)) for (const name of names.decode(runs)) previous[name] = hash;
    const pending: Record<string, number> = {};
    for (const [since, runs] of pendingRuns) for (const name of names.decode(runs)) pending[name] = since;
    return { ...stored, rollout: { ...rest, instances: names.decode(instanceList), previous, pending } };
  } catch (err) {
    throw new Error(`Cannot read etcd key ${key}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * A stored record's summary (`GET /deployments/<t>?brief=true`), without expanding its runs: the
 * summary drops the per-instance lists anyway, and expanding 10,000 instances for every poll of
 * `fleetctl deploy` (every 250 ms) was the API's work, not the answer's.
 */
export function decodeDeploymentSummary(key: string, value: Buffer | string): DeploymentSummary {
  const stored = parseRecord<DeploymentRecord & { rollout?: RolloutRecord | StoredRollout }>(key, value);
  const r = stored.rollout;
  if (!r || !("instanceRuns" in r)) return summarizeDeployment(stored);
  const { instanceRuns: _i, previousRuns: _p, pendingRuns: _n, ...rest } = r;
  return summarizeDeployment({ ...stored, rollout: { ...rest, instances: [], previous: {}, pending: {} } });
}

function groupBy<V extends string | number>(map: Record<string, V>): Map<V, string[]> {
  const groups = new Map<V, string[]>();
  for (const [name, value] of Object.entries(map)) {
    const list = groups.get(value);
    if (list) list.push(name);
    else groups.set(value, [name]);
  }
  return groups;
}
