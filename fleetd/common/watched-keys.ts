/**
 * The registry's keys as the copies of the cluster that follow them read them (the engine's
 * ClusterMirror, the dashboard's ClusterView): which record a key holds and the names in it, the
 * machines' dynamic metadata, and a snapshot read turned into the changes that rebuild a copy. One
 * reading for both, so the key layout (REGISTRY.md) is taken apart in one place.
 */
import type { StoredKv, WatchChange } from "../registry/etcd-store";
import { Keys } from "../registry/keys";

/** What a key under the prefix holds, with the names its path carries. */
export type ClusterKey =
  | { kind: "machine"; id: string }
  | { kind: "metadata"; id: string; key: string }
  | { kind: "unit"; name: string }
  | { kind: "placement"; name: string }
  | { kind: "schedule"; machine: string; name: string }
  | { kind: "state"; name: string; machine: string }
  | { kind: "unscheduled"; name: string };

/**
 * Reads `key` (a full etcd key under `keys.prefix`); undefined for a key of another kind, or a
 * two-part key (metadata, schedule, state) whose parts are not both there.
 */
export function clusterKey(keys: Keys, key: string): ClusterKey | undefined {
  const after = (prefix: string): string | undefined => (key.startsWith(prefix) ? key.slice(prefix.length) : undefined);
  let rest: string | undefined;
  if ((rest = after(keys.machines)) !== undefined) return { kind: "machine", id: rest };
  if ((rest = after(keys.metadataAll)) !== undefined) {
    const parts = Keys.split2(rest);
    return parts && { kind: "metadata", id: parts[0], key: parts[1] };
  }
  if ((rest = after(keys.units)) !== undefined) return { kind: "unit", name: rest };
  if ((rest = after(keys.placements)) !== undefined) return { kind: "placement", name: rest };
  if ((rest = after(keys.scheduleAll)) !== undefined) {
    const parts = Keys.split2(rest);
    return parts && { kind: "schedule", machine: parts[0], name: parts[1] };
  }
  if ((rest = after(keys.statesAll)) !== undefined) {
    const parts = Keys.split2(rest);
    return parts && { kind: "state", name: parts[0], machine: parts[1] };
  }
  if ((rest = after(keys.unscheduledAll)) !== undefined) return { kind: "unscheduled", name: rest };
  return undefined;
}

/** Machine ID → its dynamic metadata (`P/metadata/<id>/<key>` = value). */
export type DynamicMetadata = Map<string, Record<string, string>>;

/** Applies a watched change of one dynamic metadata key, recording its machine as touched. */
export function applyMetadataChange(metadata: DynamicMetadata, at: { id: string; key: string }, c: WatchChange, touched: { machines: Set<string> }): void {
  let m = metadata.get(at.id);
  if (!m) metadata.set(at.id, (m = {}));
  if (c.type === "delete") delete m[at.key];
  else m[at.key] = c.value.toString("utf8");
  touched.machines.add(at.id);
}

/** The keys of a snapshot read (one list per prefix) as the puts that build a copy from nothing. */
export function* snapshotPuts(results: readonly StoredKv[][]): Generator<WatchChange> {
  for (const kvs of results) for (const kv of kvs) yield { type: "put", key: kv.key, value: kv.value, modRevision: kv.modRevision };
}
