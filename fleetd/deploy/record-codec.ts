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
 * A global unit's rollout names machines, whose IDs have no numbers: it lists them once
 * (`machines`, the rollout's instances in order) and stores `previous` and `pending` as runs of indices
 * into that list. Stored machine by machine, a rollout of 10,000 machines (32-hex IDs) came to 1.2 MB
 * with a quarter of them pending and 1.53 MB with all of them (`--max-unavailable 100%`): at etcd's
 * 1.5 MiB request limit, rewritten at every step; stored this way it is the machine list (~350 KB)
 * and a few hundred bytes.
 *
 * Everything else (the API's answers, the controller, `rollout-step.ts`) works on the expanded
 * {@link DeploymentRecord}; only this module knows the stored form. Records written before this form
 * (full `instances`/`previous`/`pending`) are read as they are.
 */
import { summarizeDeployment, type DeploymentRecord, type DeploymentSummary, type RolloutRecord } from "../../lib/api/deploy-types";
import { instanceRuns, isTemplate, numberedRuns, type InstanceRuns, type RunsCodec } from "../../lib/unit";
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

/** A global unit's rollout as stored: its machines listed once, `previous` and `pending` as runs of indices into the list. */
export interface StoredGlobalRollout extends Omit<RolloutRecord, PerInstance> {
  /** The rollout's instances (machine IDs), in order. */
  machines: string[];
  previousRuns: Record<string, InstanceRuns>;
  pendingRuns: Array<[number, InstanceRuns]>;
}

/** A global unit's machines by their index in `machines` (a machine not in the list is kept as its ID). */
function machineRuns(template: string, machines: readonly string[]): RunsCodec {
  const index = new Map(machines.map((m, i) => [m, i]));
  return numberedRuns(
    `machines of ${template}`,
    (m) => index.get(m),
    (i) => {
      const m = machines[i];
      if (m === undefined) throw new RangeError(`machine index ${i} of ${template} out of its ${machines.length} machines`);
      return m;
    },
  );
}

/** `previous` and `pending` as runs. */
function perInstanceRuns(codec: RunsCodec, previous: Record<string, string>, pending: Record<string, number>): Pick<StoredRollout, "previousRuns" | "pendingRuns"> {
  return {
    previousRuns: Object.fromEntries([...groupBy(previous)].map(([hash, list]) => [hash, codec.encode(list)])),
    pendingRuns: [...groupBy(pending)].map(([since, list]) => [since, codec.encode(list)]),
  };
}

/** The record's JSON as stored in etcd. */
export function encodeDeployment(record: DeploymentRecord): string {
  if (!record.rollout) return JSON.stringify(record);
  const { instances, previous, pending, ...rest } = record.rollout;
  if (!isTemplate(record.template)) {
    const rollout: StoredGlobalRollout = { ...rest, machines: instances, ...perInstanceRuns(machineRuns(record.template, instances), previous, pending) };
    return JSON.stringify({ ...record, rollout });
  }
  const names = instanceRuns(record.template);
  const rollout: StoredRollout = { ...rest, instanceRuns: names.encode(instances), ...perInstanceRuns(names, previous, pending) };
  return JSON.stringify({ ...record, rollout });
}

/** A stored record, expanded. */
export function decodeDeployment(key: string, value: Buffer | string): DeploymentRecord {
  const stored = parseRecord<DeploymentRecord & { rollout?: RolloutRecord | StoredRollout | StoredGlobalRollout }>(key, value);
  const r = stored.rollout;
  if (!r || !("previousRuns" in r)) return stored;
  try {
    if ("machines" in r) {
      const { machines, previousRuns, pendingRuns, ...rest } = r;
      return { ...stored, rollout: { ...rest, instances: machines, ...expandRuns(machineRuns(stored.template, machines), previousRuns, pendingRuns) } };
    }
    const { instanceRuns: instanceList, previousRuns, pendingRuns, ...rest } = r;
    const names = instanceRuns(stored.template);
    return { ...stored, rollout: { ...rest, instances: names.decode(instanceList), ...expandRuns(names, previousRuns, pendingRuns) } };
  } catch (err) {
    throw new Error(`Cannot read etcd key ${key}: ${(err as Error).message}`, { cause: err });
  }
}

function expandRuns(codec: RunsCodec, previousRuns: StoredRollout["previousRuns"], pendingRuns: StoredRollout["pendingRuns"]): Pick<RolloutRecord, "previous" | "pending"> {
  const previous: Record<string, string> = {};
  for (const [hash, runs] of Object.entries(previousRuns)) for (const name of codec.decode(runs)) previous[name] = hash;
  const pending: Record<string, number> = {};
  for (const [since, runs] of pendingRuns) for (const name of codec.decode(runs)) pending[name] = since;
  return { previous, pending };
}

/**
 * A stored record's summary (`GET /deployments/<t>?brief=true`), without expanding its runs: the
 * summary drops the per-instance lists anyway, and expanding 10,000 instances for every poll of
 * `fleetctl deploy` (every 250 ms) was the API's work, not the answer's.
 */
export function decodeDeploymentSummary(key: string, value: Buffer | string): DeploymentSummary {
  const stored = parseRecord<DeploymentRecord & { rollout?: RolloutRecord | StoredRollout | StoredGlobalRollout }>(key, value);
  const r = stored.rollout;
  if (!r || !("previousRuns" in r)) return summarizeDeployment(stored);
  const { previousRuns: _p, pendingRuns: _n, ...rest } = r;
  const { instanceRuns: _i, machines: _m, ...common } = rest as Partial<Pick<StoredRollout, "instanceRuns"> & Pick<StoredGlobalRollout, "machines">> & typeof rest;
  return summarizeDeployment({ ...stored, rollout: { ...common, instances: [], previous: {}, pending: {} } });
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
