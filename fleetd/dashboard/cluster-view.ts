/**
 * The dashboard's model of the cluster: the keys it shows (machines, dynamic metadata, units,
 * placements, unit states, unscheduled reasons), loaded from one snapshot and kept current by watched
 * changes. Pure: no etcd, no clock. `apply()` reports which machines and units changed, so the feed
 * sends deltas of only those.
 */
import type { DashboardDelta, DashboardMachine, DashboardUnit } from "../../lib/api/dashboard-types";
import { mergeMetadata } from "../registry/etcd-registry";
import type { StoredKv, WatchChange } from "../registry/etcd-store";
import { parseRecord, type Keys, type MachineRecord, type StateRecord, type UnitRecord, type UnscheduledRecord } from "../registry/keys";
import { applyMetadataChange, clusterKey, snapshotPuts, type DynamicMetadata } from "../common/watched-keys";

/** The prefixes the view reads and watches, in the order `load()` expects them. */
export function viewedPrefixes(keys: Keys): string[] {
  return [keys.machines, keys.metadataAll, keys.units, keys.placements, keys.statesAll, keys.unscheduledAll];
}

/** What a batch of changes touched (IDs and names). */
export interface ViewTouched {
  machines: Set<string>;
  units: Set<string>;
}

export function emptyViewTouched(): ViewTouched {
  return { machines: new Set(), units: new Set() };
}

/** A record field that may be added by later versions (capacity, revision): kept only when well-formed. */
function optionalObject(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

export class ClusterView {
  private readonly machines = new Map<string, MachineRecord>();
  private readonly metadata: DynamicMetadata = new Map();
  private readonly units = new Map<string, UnitRecord>();
  private readonly placements = new Map<string, string>();
  /** unit → machine → state */
  private readonly states = new Map<string, Map<string, StateRecord>>();
  private readonly unscheduled = new Map<string, string>();
  /** Problems met while applying changes (corrupt values), for the owner's log; drained by the owner. */
  readonly problems: string[] = [];

  constructor(private readonly keys: Keys) {}

  /** Replaces everything with the results of a snapshot read of {@link viewedPrefixes}, in that order. */
  load(results: readonly StoredKv[][]): void {
    this.machines.clear();
    this.metadata.clear();
    this.units.clear();
    this.placements.clear();
    this.states.clear();
    this.unscheduled.clear();
    const touched = emptyViewTouched();
    for (const c of snapshotPuts(results)) this.apply(c, touched);
  }

  /** Applies one watched change and records what it touched; a corrupt value is reported, not thrown. */
  apply(c: WatchChange, t: ViewTouched): void {
    try {
      this.applyChange(c, t);
    } catch (err) {
      this.problems.push((err as Error).message);
    }
  }

  private applyChange(c: WatchChange, t: ViewTouched): void {
    const at = clusterKey(this.keys, c.key);
    switch (at?.kind) {
      case "machine":
        if (c.type === "delete") this.machines.delete(at.id);
        else this.machines.set(at.id, parseRecord<MachineRecord>(c.key, c.value));
        t.machines.add(at.id);
        return;
      case "metadata":
        applyMetadataChange(this.metadata, at, c, t);
        return;
      case "unit":
        if (c.type === "delete") this.units.delete(at.name);
        else this.units.set(at.name, parseRecord<UnitRecord>(c.key, c.value));
        t.units.add(at.name);
        return;
      case "placement":
        if (c.type === "delete") this.placements.delete(at.name);
        else this.placements.set(at.name, c.value.toString("utf8"));
        t.units.add(at.name);
        return;
      case "state": {
        let perUnit = this.states.get(at.name);
        if (c.type === "delete") {
          perUnit?.delete(at.machine);
          if (perUnit?.size === 0) this.states.delete(at.name);
        } else {
          if (!perUnit) this.states.set(at.name, (perUnit = new Map<string, StateRecord>()));
          perUnit.set(at.machine, parseRecord<StateRecord>(c.key, c.value));
        }
        t.units.add(at.name);
        return;
      }
      case "unscheduled":
        if (c.type === "delete") this.unscheduled.delete(at.name);
        else this.unscheduled.set(at.name, readSummary(c));
        t.units.add(at.name);
        return;
    }
  }

  /** The machine as shown, or undefined when it is not live. */
  machine(id: string): DashboardMachine | undefined {
    const r = this.machines.get(id);
    if (!r) return undefined;
    const out: DashboardMachine = { id, metadata: mergeMetadata(r.metadata ?? {}, this.metadata.get(id)) };
    if (r.publicIP) out.primaryIP = r.publicIP;
    if (r.version) out.version = r.version;
    if (r.leaving) out.leaving = true;
    if (r.disableEngine) out.disableEngine = true;
    const extra = r as unknown as Record<string, unknown>;
    const capacity = optionalObject(extra.capacity) ?? optionalObject(extra.resources);
    if (capacity) out.capacity = capacity;
    return out;
  }

  /** The unit as shown (the API's derivation of current state), or undefined when it does not exist. */
  unit(name: string): DashboardUnit | undefined {
    const r = this.units.get(name);
    if (!r) return undefined;
    const out: DashboardUnit = { name, desiredState: r.desiredState, global: r.global, hash: r.hash.slice(0, 8) };
    const at = name.indexOf("@");
    const dot = name.lastIndexOf(".");
    if (at > 0 && dot > at + 1) out.template = `${name.slice(0, at + 1)}${name.slice(dot)}`;
    const revision = (r as unknown as Record<string, unknown>).revision;
    if (typeof revision === "string" || typeof revision === "number") out.revision = revision;
    const states = this.states.get(name);
    if (r.global) {
      out.globalMachines = states?.size ?? 0;
      out.globalActive = [...(states?.values() ?? [])].filter((s) => s.activeState === "active").length;
      return out;
    }
    out.currentState = "inactive";
    const machine = this.placements.get(name);
    if (machine !== undefined) {
      out.machineID = machine;
      const s = states?.get(machine);
      if (s) {
        out.currentState = s.launched ? "launched" : "loaded";
        out.systemd = { load: s.loadState, active: s.activeState, sub: s.subState };
      }
    } else if (r.desiredState !== "inactive") {
      const reason = this.unscheduled.get(name);
      if (reason !== undefined) out.unscheduled = reason;
    }
    return out;
  }

  allMachines(): DashboardMachine[] {
    return [...this.machines.keys()].sort().flatMap((id) => this.machine(id) ?? []);
  }

  allUnits(): DashboardUnit[] {
    return [...this.units.keys()].sort().flatMap((name) => this.unit(name) ?? []);
  }

  /** The delta for what `t` touched: current views of touched objects, removals for vanished ones. */
  delta(t: ViewTouched, revision: number): DashboardDelta {
    const d: DashboardDelta = { revision, machines: [], removedMachines: [], units: [], removedUnits: [] };
    for (const id of t.machines) {
      const m = this.machine(id);
      if (m) d.machines.push(m);
      else d.removedMachines.push(id);
    }
    for (const name of t.units) {
      const u = this.unit(name);
      if (u) d.units.push(u);
      else d.removedUnits.push(name);
    }
    return d;
  }
}

function readSummary(c: WatchChange): string {
  try {
    return parseRecord<UnscheduledRecord>(c.key, c.value).summary;
  } catch (err) {
    return (err as Error).message;
  }
}
