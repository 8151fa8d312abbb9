/**
 * How a deployment record is stored at `P/deployments/<template>`. The rollout's per-instance fields
 * (`instances`, `previous`, `pending`) are stored as runs of instance numbers, grouped by hash and by
 * time: the deploy controller rewrites this key at every step (every 100 ms while rolling), and
 * stored name by name it grew by about 110 bytes per instance plus twice the template's name, to
 * 1.16 MB at the 10,000 instances `scale` makes of `frontend-api-gateway@.service`: 11 MB/s of
 * writes into etcd while rolling, and past etcd's 1.5 MiB request limit with a longer name, which
 * refused the deploy. Stored as runs, a rollout of `web@1` … `web@10000` from one body is a few
 * hundred bytes.
 *
 * Everything else (the API's answers, the controller, `rollout-step.ts`) works on the expanded
 * {@link DeploymentRecord}; only this module knows the stored form. Records written before this form
 * (full `instances`/`previous`/`pending`) are read as they are.
 */
import type { DeploymentRecord, RolloutRecord } from "../../lib/api/deploy-types";
import { parseRecord } from "../registry/keys";

/**
 * A list of unit names in order: a string is a name as it is; a number `n` is the template's instance
 * `<name>@<n>.<type>`; `[a, b]` is its instances `a` to `b` (each one more than the last).
 */
export type NameRuns = Array<string | number | [number, number]>;

type PerInstance = "instances" | "previous" | "pending";

/** The rollout as stored: its per-instance fields as runs. */
export interface StoredRollout extends Omit<RolloutRecord, PerInstance> {
  instanceRuns: NameRuns;
  /** hash → the instances whose hash it was before the rollout. */
  previousRuns: Record<string, NameRuns>;
  /** [epoch ms, the instances pending since then]. */
  pendingRuns: Array<[number, NameRuns]>;
}

/** The record's JSON as stored in etcd. */
export function encodeDeployment(record: DeploymentRecord): string {
  if (!record.rollout) return JSON.stringify(record);
  const { instances, previous, pending, ...rest } = record.rollout;
  const names = instanceNames(record.template);
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
  const { instanceRuns, previousRuns, pendingRuns, ...rest } = r;
  const names = instanceNames(stored.template);
  const previous: Record<string, string> = {};
  for (const [hash, runs] of Object.entries(previousRuns)) for (const name of names.decode(runs)) previous[name] = hash;
  const pending: Record<string, number> = {};
  for (const [since, runs] of pendingRuns) for (const name of names.decode(runs)) pending[name] = since;
  return { ...stored, rollout: { ...rest, instances: names.decode(instanceRuns), previous, pending } };
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

/** Encodes and decodes lists of `template`'s instance names as {@link NameRuns}. */
function instanceNames(template: string): { encode(names: string[]): NameRuns; decode(runs: NameRuns): string[] } {
  const at = template.indexOf("@");
  const head = template.slice(0, at + 1);
  const tail = template.slice(at + 1);
  const numberOf = (name: string): number | undefined => {
    if (at < 0 || name.length <= head.length + tail.length || !name.startsWith(head) || !name.endsWith(tail)) return undefined;
    const digits = name.slice(head.length, name.length - tail.length);
    const n = Number(digits);
    // Only canonical decimals: `web@01.service` is not `web@1.service`.
    return /^(0|[1-9]\d*)$/.test(digits) && Number.isSafeInteger(n) ? n : undefined;
  };
  return {
    encode(names) {
      const runs: NameRuns = [];
      for (const name of names) {
        const n = numberOf(name);
        const last = runs.at(-1);
        if (n === undefined) runs.push(name);
        else if (typeof last === "number" && n === last + 1) runs[runs.length - 1] = [last, n];
        else if (Array.isArray(last) && n === last[1] + 1) last[1] = n;
        else runs.push(n);
      }
      return runs;
    },
    decode(runs) {
      const names: string[] = [];
      for (const run of runs) {
        if (typeof run === "string") names.push(run);
        else if (typeof run === "number") names.push(`${head}${run}${tail}`);
        else for (let n = run[0]; n <= run[1]; n++) names.push(`${head}${n}${tail}`);
      }
      return names;
    },
  };
}
