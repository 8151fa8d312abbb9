/**
 * The engine's copy of the keys it schedules from (machines, dynamic metadata, units, placements,
 * schedule), loaded from one snapshot and kept current by watches from the snapshot's revision + 1.
 * Applying a change reports what it touched so the engine re-checks only that.
 */
import { mergeMetadata } from "../registry/etcd-registry";
import type { StoredKv, WatchChange } from "../registry/etcd-store";
import { Keys, parseRecord, type MachineRecord, type ScheduleRecord, type UnitRecord } from "../registry/keys";

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

export class ClusterMirror {
  readonly machines = new Map<string, MachineRecord>();
  readonly metadata = new Map<string, Record<string, string>>();
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
    for (const kvs of results) for (const kv of kvs) this.apply({ type: "put", key: kv.key, value: kv.value, modRevision: kv.modRevision }, touched);
  }

  /** Applies one watched change; records what it touched. Changes equal to what we hold are no-ops. */
  apply(c: WatchChange, t: Touched): void {
    const k = this.keys;
    if (c.key.startsWith(k.machines)) {
      const id = c.key.slice(k.machines.length);
      if (c.type === "delete") {
        this.machines.delete(id);
      } else {
        const record = parseRecord<MachineRecord>(c.key, c.value);
        // A leaving machine is no longer a scheduling target.
        if (record.leaving) this.machines.delete(id);
        else this.machines.set(id, record);
        if (record.leaving) this.departed.add(id);
        else this.departed.delete(id);
      }
      t.machines.add(id);
    } else if (c.key.startsWith(k.metadataAll)) {
      const parts = Keys.split2(c.key.slice(k.metadataAll.length));
      if (!parts) return;
      const [id, key] = parts;
      let m = this.metadata.get(id);
      if (!m) this.metadata.set(id, (m = {}));
      if (c.type === "delete") delete m[key];
      else m[key] = c.value.toString("utf8");
      t.machines.add(id);
    } else if (c.key.startsWith(k.units)) {
      const name = c.key.slice(k.units.length);
      const cur = this.units.get(name);
      if (c.type === "delete") {
        if (!cur) return;
        this.units.delete(name);
      } else {
        if (cur && cur.modRevision === c.modRevision) return;
        this.units.set(name, { record: parseRecord<UnitRecord>(c.key, c.value), modRevision: c.modRevision });
      }
      t.units.add(name);
    } else if (c.key.startsWith(k.placements)) {
      const name = c.key.slice(k.placements.length);
      const machine = c.type === "delete" ? undefined : c.value.toString("utf8");
      if (this.placements.get(name) === machine) return;
      if (machine === undefined) this.placements.delete(name);
      else this.placements.set(name, machine);
      t.placements.add(name);
    } else if (c.key.startsWith(k.scheduleAll)) {
      const parts = Keys.split2(c.key.slice(k.scheduleAll.length));
      if (!parts) return;
      const [machine, name] = parts;
      if (c.type === "delete") {
        if (!this.setSchedule(machine, name, undefined)) return;
      } else {
        const r = parseRecord<ScheduleRecord>(c.key, c.value);
        if (!this.setSchedule(machine, name, { hash: r.hash, desiredState: r.desiredState })) return;
      }
      t.placements.add(name);
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
