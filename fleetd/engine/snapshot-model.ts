/**
 * A scheduler model built from one consistent read of etcd: the keys the engine reads (machines,
 * dynamic metadata, units, placements, schedule) plus the bodies, fed into a fresh `SchedulerModel`
 * the way the leading engine feeds its own. Any fleetd's API can build it, engine or not, so
 * `fleetctl why` and `fleetctl rebalance` work through whichever fleetd fleetctl talks to; the answer
 * is the cluster as of that revision (the engine's own model follows the same keys by watch).
 *
 * Cost: one read of those prefixes (about 4 keys per unit) and one parse per distinct body.
 */
import { parseRequirements, parseUnitFile } from "../../lib/unit";
import { isCompleted } from "../registry/keys";
import type { ScheduleStore } from "./schedule-store";
import { SchedulerModel } from "../scheduler/scheduler-model";
import { ClusterMirror, emptyTouched, mirroredPrefixes, validCapacity } from "./cluster-mirror";

/** The model, the mirror it was fed from, and the revision of the read. */
export interface SnapshotModel {
  model: SchedulerModel;
  mirror: ClusterMirror;
  revision: number;
  /** Recorded reasons (`P/unscheduled/<name>`), by unit: the summary. */
  unscheduled: Map<string, string>;
  /** Units whose body is missing from etcd (left out of the model). */
  missingBodies: string[];
  /** Unit texts by body hash. */
  texts: Map<string, string>;
}

/** Reads the cluster in one snapshot and builds the model from it. */
export async function readSnapshotModel(store: ScheduleStore, signal?: AbortSignal): Promise<SnapshotModel> {
  const keys = store.keys;
  const prefixes = mirroredPrefixes(keys);
  const { revision, results } = await store.rangeMany("read the cluster for the scheduler", [...prefixes.map((prefix) => ({ prefix })), { prefix: keys.bodies }, { prefix: keys.unscheduledAll }], signal);
  const unscheduledKvs = results.pop() ?? [];
  const bodyKvs = results.pop() ?? [];
  const mirror = new ClusterMirror(keys);
  mirror.load(results, emptyTouched());
  const model = new SchedulerModel();
  for (const [id, m] of [...mirror.machines].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    model.setMachine({ id, publicIP: m.publicIP, metadata: mirror.metadataOf(id), ...(validCapacity(m.capacity) ? { capacity: m.capacity } : {}) });
  }
  const texts = new Map(bodyKvs.map((kv) => [kv.key.slice(keys.bodies.length), kv.value.toString("utf8")]));
  const bodies = bodiesByHash(texts);
  const missingBodies: string[] = [];
  for (const [name, u] of mirror.units) {
    const options = bodies.get(u.record.hash);
    if (options === undefined) {
      missingBodies.push(name);
      continue;
    }
    model.setUnit({ name, requirements: parseRequirements(name, options).requirements, desiredState: u.record.desiredState, completed: isCompleted(u.record) });
  }
  for (const [name, u] of mirror.units) {
    if (u.record.global) model.setGlobalPlacements(name, mirror.scheduledOn.get(name) ?? []);
    else model.setPlacement(name, mirror.placements.get(name));
  }
  const unscheduled = new Map<string, string>();
  for (const kv of unscheduledKvs) {
    try {
      unscheduled.set(kv.key.slice(keys.unscheduledAll.length), (JSON.parse(kv.value.toString("utf8")) as { summary?: string }).summary ?? "");
    } catch {
      // An unreadable record: the engine rewrites it; nothing to show meanwhile.
    }
  }
  return { model, mirror, revision, unscheduled, missingBodies: missingBodies.sort(), texts };
}

function bodiesByHash(texts: ReadonlyMap<string, string>): Map<string, ReturnType<typeof parseUnitFile>> {
  const out = new Map<string, ReturnType<typeof parseUnitFile>>();
  for (const [hash, text] of texts) {
    try {
      out.set(hash, parseUnitFile(text));
    } catch {
      // A body that does not parse cannot be scheduled: its units count as missing.
    }
  }
  return out;
}
