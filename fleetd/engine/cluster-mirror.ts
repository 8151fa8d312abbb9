/**
 * The engine's copy of the keys it schedules from (machines, dynamic metadata, units, placements,
 * schedule), loaded from one snapshot and kept current by watches from the snapshot's revision + 1.
 * Applying a change reports what it touched so the engine re-checks only that.
 */
import { mergeMetadata } from "../registry/etcd-registry";
import type { StoredKv, WatchChange } from "../registry/etcd-store";
import { parseRecord, type Keys, type MachineRecord, type ScheduleRecord, type UnitRecord } from "../registry/keys";
import { applyMetadataChange, clusterKey, snapshotPuts, type DynamicMetadata } from "../common/watched-keys";

/** A schedule entry as the engine tracks it (the text is not kept: it is in the body). */
export interface ScheduleEntry {
  hash: string;
  desiredState: string;
}

/** What a batch of changes touched. */
export interface Touched {
  units: Set<string>;
  machines: Set<string>;
  /** Units whose placement or schedule entries changed behind our back. */
  placements: Set<string>;
}

export function emptyTouched(): Touched {
  return { units: new Set(), machines: new Set(), placements: new Set() };
}

/** The prefixes the engine reads and watches. */
export function mirroredPrefixes(keys: Keys): string[] {
  return [keys.machines, keys.metadataAll, keys.units, keys.placements, keys.scheduleAll];
}

/**
 * What a leading engine watches: {@link mirroredPrefixes} but placements and schedule. `placement/` and
 * `schedule/` have one writer, the leading engine itself (every write is guarded by its leader key):
 * it reads them at each resync and applies its own writes to the mirror once etcd took them, so
 * watching them would only bring its own writes back (two events per unit, the schedule entry with
 * its unit text: 100,000 units meant 200,000 events for etcd to send and the engine to decode).
 */
export function leaderWatchedPrefixes(keys: Keys): string[] {
  return mirroredPrefixes(keys).filter((p) => p !== keys.placements && p !== keys.scheduleAll);
}

export class ClusterMirror {
  readonly machines = new Map<string, MachineRecord>();
  readonly metadata: DynamicMetadata = new Map();
  readonly units = new Map<string, { record: UnitRecord; modRevision: number }>();
  readonly placements = new Map<string, string>();
  /** machine → unit → entry */
  readonly schedule = new Map<string, Map<string, ScheduleEntry>>();
  /** Machines that announced a graceful leave before their presence disappeared (consumed by the engine). */
  readonly departed = new Set<string>();
  /** unit → machines holding a schedule entry for it */
  readonly scheduledOn = new Map<string, Set<string>>();

  constructor(readonly keys: Keys) {}

  /** Merged static + dynamic metadata of a live machine. */
  metadataOf(id: string): Record<string, string> {
    return mergeMetadata(this.machines.get(id)?.metadata ?? {}, this.metadata.get(id));
  }

  /** Loads the results of a snapshot read of {@link mirroredPrefixes}, in that order. */
  load(results: readonly StoredKv[][], touched: Touched): void {
    for (const c of snapshotPuts(results)) this.apply(c, touched);
  }

  /** Applies one watched change; records what it touched. Changes equal to what we hold are no-ops. */
  apply(c: WatchChange, t: Touched): void {
    const at = clusterKey(this.keys, c.key);
    switch (at?.kind) {
      case "machine":
        if (c.type === "delete") {
          this.machines.delete(at.id);
        } else {
          const record = parseRecord<MachineRecord>(c.key, c.value);
          // A leaving machine is no longer a scheduling target.
          if (record.leaving) this.machines.delete(at.id);
          else this.machines.set(at.id, record);
          if (record.leaving) this.departed.add(at.id);
          else this.departed.delete(at.id);
        }
        t.machines.add(at.id);
        return;
      case "metadata":
        applyMetadataChange(this.metadata, at, c, t);
        return;
      case "unit": {
        const cur = this.units.get(at.name);
        if (c.type === "delete") {
          if (!cur) return;
          this.units.delete(at.name);
        } else {
          if (cur && cur.modRevision === c.modRevision) return;
          this.units.set(at.name, { record: parseRecord<UnitRecord>(c.key, c.value), modRevision: c.modRevision });
        }
        t.units.add(at.name);
        return;
      }
      case "placement": {
        const machine = c.type === "delete" ? undefined : c.value.toString("utf8");
        if (this.placements.get(at.name) === machine) return;
        if (machine === undefined) this.placements.delete(at.name);
        else this.placements.set(at.name, machine);
        t.placements.add(at.name);
        return;
      }
      case "schedule": {
        const r = c.type === "delete" ? undefined : parseRecord<ScheduleRecord>(c.key, c.value);
        if (this.setSchedule(at.machine, at.name, r && { hash: r.hash, desiredState: r.desiredState })) t.placements.add(at.name);
        return;
      }
    }
  }

  /** Sets or removes one schedule entry; returns whether anything changed. */
  setSchedule(machine: string, name: string, entry: ScheduleEntry | undefined): boolean {
    let perMachine = this.schedule.get(machine);
    const cur = perMachine?.get(name);
    if (entry === undefined) {
      if (!cur || !perMachine) return false;
      perMachine.delete(name);
      if (perMachine.size === 0) this.schedule.delete(machine);
      const on = this.scheduledOn.get(name);
      on?.delete(machine);
      if (on?.size === 0) this.scheduledOn.delete(name);
      return true;
    }
    if (cur && cur.hash === entry.hash && cur.desiredState === entry.desiredState) return false;
    if (!perMachine) this.schedule.set(machine, (perMachine = new Map<string, ScheduleEntry>()));
    perMachine.set(name, entry);
    let on = this.scheduledOn.get(name);
    if (!on) this.scheduledOn.set(name, (on = new Set<string>()));
    on.add(machine);
    return true;
  }

  setPlacement(name: string, machine: string | undefined): void {
    if (machine === undefined) this.placements.delete(name);
    else this.placements.set(name, machine);
  }
}

/** A capacity record another fleetd wrote is used only when both amounts are non-negative numbers. */
export function validCapacity(c: unknown): c is { cpus: number; memory: number } {
  if (typeof c !== "object" || c === null) return false;
  const { cpus, memory } = c as Record<string, unknown>;
  return typeof cpus === "number" && typeof memory === "number" && cpus >= 0 && memory >= 0;
}
