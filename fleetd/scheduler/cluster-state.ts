/**
 * The scheduler's in-memory picture of the cluster, with the indexes that keep a decision cheap:
 * machines by ID, short ID and `key=value` metadata; the (load, ID) order; per-machine unit sets;
 * non-global placements; global placements; MachineOf followers by target. Mutation primitives here
 * keep every index consistent; policy (what to decide) lives in `SchedulerModel`.
 */
import { ConflictHosts } from "./conflict-hosts";
import { LoadOrder, preferMachine } from "./load-order";
import { toMachineRecord, type MachineRecord, type UnitRecord } from "./records";
import { needsNothing, shareAfter } from "./resource-fit";
import { checkMachine, isCircularReplace, type ClusterView } from "./rules";
import { compareScores, SpreadIndex, type SpreadCounts } from "./spread-index";
import type { ExclusionRule, MachineExclusion, MachineVerdict, SchedulerMachine } from "./types";
import type { ResourceAmounts } from "../../lib/unit/index";

function metaKey(key: string, value: string): string {
  return `${key}\u0000${value}`;
}

/** Where `choose` looks: a (load, ID) order to walk, or an indexed candidate set. */
type SearchSpace =
  | { kind: "order"; order: LoadOrder; rule: "MachineMetadata" | undefined }
  | { kind: "set"; ids: Iterable<string>; rule: ExclusionRule };

/** A machine chosen for a unit, and why it was chosen. */
export interface Choice {
  machineId: string;
  reason: string;
}

/** How machines were ruled out when no machine is left. */
export interface Refusal {
  excludedBy: Partial<Record<ExclusionRule, number>>;
  /** Machines considered at all. */
  machines: number;
}

/** Machines, units and placements with the indexes the rules and `choose` rely on. */
export class ClusterState implements ClusterView {
  readonly machines = new Map<string, MachineRecord>();
  readonly units = new Map<string, UnitRecord>();
  /** Non-global unit → machine ID. May point at a machine not (or no longer) present: see `orphans`. */
  readonly placements = new Map<string, string>();
  /** Global unit → machines it is on. */
  readonly globalPlacements = new Map<string, Set<string>>();
  /** MachineOf target → units that must run beside it. */
  readonly followers = new Map<string, Set<string>>();
  /** Placements on machines that are not present, by machine ID. */
  readonly orphans = new Map<string, Set<string>>();
  private readonly conflictHosts = new ConflictHosts();
  /** Non-global units with Replaces patterns (few): candidates for circular pairs. */
  private readonly replacers = new Set<string>();
  private readonly byShortId = new Map<string, Set<string>>();
  private readonly byMetadata = new Map<string, Set<string>>();
  private readonly order = new LoadOrder();
  /** (load, ID) order of the machines having each `key=value`: metadata-bound units stop at the first fit. */
  private readonly orderByMetadata = new Map<string, LoadOrder>();
  private readonly spread = new SpreadIndex();
  /** Placements that hold CPU or memory: while there are any, choices weigh resources. */
  private allocations = 0;

  // ClusterView
  unit(name: string): UnitRecord | undefined {
    return this.units.get(name);
  }

  placementOf(name: string): string | undefined {
    return this.placements.get(name);
  }

  globalOn(name: string, machineId: string): boolean {
    return this.globalPlacements.get(name)?.has(machineId) ?? false;
  }

  /** True when the unit is on at least one machine (a global unit on any). */
  isPlaced(name: string): boolean {
    return this.placements.has(name) || (this.globalPlacements.get(name)?.size ?? 0) > 0;
  }

  loadOf(machineId: string): number {
    return this.machines.get(machineId)?.units.size ?? 0;
  }

  // Machines

  addMachine(machine: SchedulerMachine): MachineRecord {
    const record = toMachineRecord(machine);
    this.machines.set(record.id, record);
    addTo(this.byShortId, record.shortId, record.id);
    this.indexMetadata(record, true);
    this.order.set(record.id, 0);
    // Placements recorded while the machine was absent come back with it.
    const orphans = this.orphans.get(record.id);
    if (orphans !== undefined) {
      this.orphans.delete(record.id);
      for (const name of orphans) this.attach(record, name);
    }
    return record;
  }

  updateMetadata(record: MachineRecord, metadata: Readonly<Record<string, string>>): void {
    this.indexMetadata(record, false);
    record.metadata = { ...metadata };
    this.indexMetadata(record, true);
  }

  updateCapacity(record: MachineRecord, capacity: Readonly<ResourceAmounts> | undefined): void {
    record.capacity = capacity === undefined ? undefined : { ...capacity };
  }

  /** Removes the machine; its units become orphans until the next pass unschedules them. */
  removeMachine(id: string): void {
    const record = this.machines.get(id);
    if (record === undefined) return;
    for (const name of record.units) {
      addTo(this.orphans, id, name);
      this.conflictHosts.detached(id, name);
      this.spread.detached(this.units.get(name)?.template, id);
      if (record.counted.has(name)) this.allocations--;
    }
    record.counted.clear();
    record.used.cpus = 0;
    record.used.memory = 0;
    this.machines.delete(id);
    removeFrom(this.byShortId, record.shortId, id);
    this.indexMetadata(record, false);
    this.order.delete(id);
  }

  private indexMetadata(record: MachineRecord, add: boolean): void {
    for (const [key, value] of Object.entries(record.metadata)) {
      const k = metaKey(key, value);
      if (add) {
        addTo(this.byMetadata, k, record.id);
        let order = this.orderByMetadata.get(k);
        if (order === undefined) this.orderByMetadata.set(k, (order = new LoadOrder()));
        order.set(record.id, record.units.size);
      } else {
        removeFrom(this.byMetadata, k, record.id);
        const order = this.orderByMetadata.get(k);
        order?.delete(record.id);
        if (order?.size === 0) this.orderByMetadata.delete(k);
      }
    }
  }

  /** Keeps every (load, ID) order the machine is in up to date. */
  private loadChanged(record: MachineRecord): void {
    const load = record.units.size;
    this.order.set(record.id, load);
    for (const [key, value] of Object.entries(record.metadata)) this.orderByMetadata.get(metaKey(key, value))?.set(record.id, load);
  }

  // Placements

  /** Records a non-global placement (machine may be absent: then it is an orphan). */
  placeUnit(name: string, machineId: string): void {
    this.unplaceUnit(name);
    this.placements.set(name, machineId);
    const record = this.machines.get(machineId);
    if (record === undefined) addTo(this.orphans, machineId, name);
    else this.attach(record, name);
  }

  /** Removes a non-global placement; returns the machine it was on. */
  unplaceUnit(name: string): string | undefined {
    const machineId = this.placements.get(name);
    if (machineId === undefined) return undefined;
    this.placements.delete(name);
    this.detach(machineId, name);
    return machineId;
  }

  placeGlobal(name: string, machineId: string): void {
    let set = this.globalPlacements.get(name);
    if (set === undefined) this.globalPlacements.set(name, (set = new Set()));
    if (set.has(machineId)) return;
    set.add(machineId);
    const record = this.machines.get(machineId);
    if (record === undefined) addTo(this.orphans, machineId, name);
    else this.attach(record, name);
  }

  unplaceGlobal(name: string, machineId: string): void {
    const set = this.globalPlacements.get(name);
    if (set === undefined || !set.delete(machineId)) return;
    if (set.size === 0) this.globalPlacements.delete(name);
    this.detach(machineId, name);
  }

  /** Re-reads the unit's patterns into the holder indexes of the machines it is on (after an update). */
  refreshHolders(name: string): void {
    const on = [...(this.globalPlacements.get(name) ?? [])];
    const placed = this.placements.get(name);
    if (placed !== undefined) on.push(placed);
    for (const machineId of on) {
      const record = this.machines.get(machineId);
      if (record === undefined) continue;
      record.conflictHolders.delete(name);
      record.replaceHolders.delete(name);
      this.attach(record, name);
    }
  }

  private attach(record: MachineRecord, name: string): void {
    const unit = this.units.get(name);
    if (!record.units.has(name)) {
      this.conflictHosts.attached(record.id, name);
      this.spread.attached(unit?.template, record.id);
    }
    record.units.add(name);
    this.uncount(record, name);
    if (unit !== undefined && !needsNothing(unit)) {
      const needs = { cpus: unit.requirements.cpus, memory: unit.requirements.memory };
      record.counted.set(name, needs);
      record.used.cpus += needs.cpus;
      record.used.memory += needs.memory;
      this.allocations++;
    }
    if (unit !== undefined && unit.conflicts.length > 0) record.conflictHolders.add(name);
    if (unit !== undefined && unit.replaces.length > 0) record.replaceHolders.add(name);
    this.loadChanged(record);
  }

  private detach(machineId: string, name: string): void {
    const record = this.machines.get(machineId);
    if (record === undefined) {
      removeFrom(this.orphans, machineId, name);
      return;
    }
    if (record.units.delete(name)) {
      this.conflictHosts.detached(machineId, name);
      this.spread.detached(this.units.get(name)?.template, machineId);
    }
    this.uncount(record, name);
    record.conflictHolders.delete(name);
    record.replaceHolders.delete(name);
    this.loadChanged(record);
  }

  private uncount(record: MachineRecord, name: string): void {
    const had = record.counted.get(name);
    if (had === undefined) return;
    record.counted.delete(name);
    record.used.cpus -= had.cpus;
    record.used.memory -= had.memory;
    this.allocations--;
  }

  // Units

  /** Indexes a unit's patterns (call when it enters the model). */
  registerUnit(unit: UnitRecord): void {
    for (const glob of unit.conflicts) this.conflictHosts.addUser(glob.pattern, () => this.placedPairs());
    if (unit.replaces.length > 0 && !unit.global) this.replacers.add(unit.name);
  }

  /** Drops a unit's patterns from the indexes (call when it leaves or before it is replaced). */
  unregisterUnit(unit: UnitRecord): void {
    for (const glob of unit.conflicts) this.conflictHosts.removeUser(glob.pattern);
    this.replacers.delete(unit.name);
  }

  /** Placed units that form a circular Replaces pair with `unit` (usually none). */
  placedCircularPartners(unit: UnitRecord): string[] {
    if (unit.replaces.length === 0) return [];
    const partners: string[] = [];
    for (const name of this.replacers) {
      const other = name === unit.name ? undefined : this.units.get(name);
      if (other !== undefined && this.placements.has(name) && isCircularReplace(other, unit)) partners.push(name);
    }
    return partners.sort();
  }

  circularPartnerOf(unit: UnitRecord): { name: string; machineId: string } | undefined {
    const placedSelf = this.placements.has(unit.name);
    for (const name of this.placedCircularPartners(unit)) {
      if (placedSelf && unit.name < name) continue;
      const machineId = this.placements.get(name);
      if (machineId !== undefined) return { name, machineId };
    }
    return undefined;
  }

  private *placedPairs(): Generator<readonly [string, string]> {
    for (const record of this.machines.values()) for (const name of record.units) yield [record.id, name];
  }

  // Followers (MachineOf)

  linkFollower(unit: UnitRecord): void {
    for (const peer of unit.requirements.machineOf) addTo(this.followers, peer, unit.name);
  }

  unlinkFollower(unit: UnitRecord): void {
    for (const peer of unit.requirements.machineOf) removeFrom(this.followers, peer, unit.name);
  }

  // Choosing machines

  /**
   * Where to look for a machine: an indexed candidate set narrowed by the first rule that allows a
   * lookup (MachineID, MachineOf, MachineMetadata with several values), or a ready (load, ID) order
   * to walk (all machines, or those with the unit's single-valued first `key=value`).
   */
  private searchSpace(unit: UnitRecord): SearchSpace {
    const req = unit.requirements;
    if (req.machineId !== undefined) {
      const ids = new Set(this.byShortId.get(req.machineId) ?? []);
      if (this.machines.has(req.machineId)) ids.add(req.machineId);
      return { kind: "set", ids, rule: "MachineID" };
    }
    const peer = req.machineOf[0];
    if (peer !== undefined) {
      const ids = new Set(this.globalPlacements.get(peer) ?? []);
      const placed = this.placements.get(peer);
      if (placed !== undefined) ids.add(placed);
      return { kind: "set", ids: [...ids].filter((id) => this.machines.has(id)), rule: "MachineOf" };
    }
    const first = unit.metadata[0];
    if (first === undefined) return { kind: "order", order: this.order, rule: undefined };
    const [key, values] = first;
    if (values.length === 1) {
      const order = this.orderByMetadata.get(metaKey(key, values[0] ?? "")) ?? new LoadOrder();
      return { kind: "order", order, rule: "MachineMetadata" };
    }
    const ids = new Set<string>();
    for (const value of values) for (const id of this.byMetadata.get(metaKey(key, value)) ?? []) ids.add(id);
    return { kind: "set", ids, rule: "MachineMetadata" };
  }

  /**
   * The least-loaded machine (ties: lowest ID) that passes every rule, or the refusal counts.
   * Walking an order stops at the first machine that passes; a candidate set is scanned once,
   * fully checking only machines better than the best found so far.
   */
  choose(unit: UnitRecord): Choice | Refusal {
    const space = this.searchSpace(unit);
    const spread = this.spread.countsFor(unit, this.machines);
    if (spread !== undefined || !needsNothing(unit) || this.allocations > 0) return this.chooseWeighted(unit, space, spread);
    const excludedBy: Partial<Record<ExclusionRule, number>> = {};
    const exclude = (rule: ExclusionRule, count = 1): void => {
      excludedBy[rule] = (excludedBy[rule] ?? 0) + count;
    };
    if (space.kind === "order") {
      // Its own Conflicts patterns already match a unit on every machine: no need to look.
      if (space.rule === undefined && this.conflictHosts.coverAll(unit.conflicts, this.machines.size)) {
        return { excludedBy: { Conflicts: this.machines.size }, machines: this.machines.size };
      }
      for (const id of space.order.ascending()) {
        const record = this.machines.get(id);
        if (record === undefined) continue;
        const exclusion = checkMachine(this, record, unit);
        if (exclusion === undefined) {
          const why = space.rule === undefined ? "least-loaded eligible machine" : "least-loaded machine matching MachineMetadata";
          return { machineId: id, reason: `${why} (load ${record.units.size})` };
        }
        exclude(exclusion.rule);
      }
      const outside = this.machines.size - space.order.size;
      if (outside > 0) exclude("MachineMetadata", outside);
      return { excludedBy, machines: this.machines.size };
    }
    let best: MachineRecord | undefined;
    let considered = 0;
    for (const id of space.ids) {
      const record = this.machines.get(id);
      if (record === undefined) continue;
      considered++;
      if (best !== undefined && !preferMachine(record.units.size, id, best.units.size, best.id)) continue;
      const exclusion = checkMachine(this, record, unit);
      if (exclusion === undefined) best = record;
      else exclude(exclusion.rule);
    }
    if (best !== undefined) {
      const why = space.rule === "MachineID" ? "required by MachineID" : space.rule === "MachineOf" ? `MachineOf "${unit.requirements.machineOf.join('", "')}"` : "least-loaded machine matching MachineMetadata";
      return { machineId: best.id, reason: `${why} (load ${best.units.size})` };
    }
    const outside = this.machines.size - considered;
    if (outside > 0) exclude(space.rule, outside);
    return { excludedBy, machines: this.machines.size };
  }

  /**
   * Resource- and spread-aware choice: every machine of the search space is scored (spread counts,
   * then dominant share after placement, then unit count, then ID) and fully checked only when it
   * beats the best fitting machine found so far.
   */
  private chooseWeighted(unit: UnitRecord, space: SearchSpace, spread: SpreadCounts | undefined): Choice | Refusal {
    const excludedBy: Partial<Record<ExclusionRule, number>> = {};
    let best: Scored | undefined;
    let considered = 0;
    const ids = space.kind === "order" ? space.order.ascending() : space.ids;
    for (const id of ids) {
      const record = this.machines.get(id);
      if (record === undefined) continue;
      considered++;
      const scored = score(record, unit, spread);
      if (best !== undefined && compareScored(scored, best) >= 0) continue;
      const exclusion = checkMachine(this, record, unit);
      if (exclusion === undefined) best = scored;
      else excludedBy[exclusion.rule] = (excludedBy[exclusion.rule] ?? 0) + 1;
    }
    if (best !== undefined) {
      const r = best.record;
      const spreadNote = spread === undefined ? "" : `, ${spread.keys.map((k, i) => `${k}=${r.metadata[k] ?? "(none)"} holds ${best?.spread[i] ?? 0}`).join(", ")} of ${spread.template}`;
      const share = r.capacity === undefined ? "" : `, ${Math.round(best.share * 100)}% of its capacity after`;
      return { machineId: r.id, reason: `least-loaded eligible machine (load ${r.units.size}${share}${spreadNote})` };
    }
    const outside = this.machines.size - considered;
    if (outside > 0) {
      const rule = space.kind === "set" ? space.rule : "MachineMetadata";
      excludedBy[rule] = (excludedBy[rule] ?? 0) + outside;
    }
    return { excludedBy, machines: this.machines.size };
  }

  /**
   * Per machine (by ID), what the scheduler makes of the unit there: excluded by a rule, fits, the
   * one it would choose now (`best`), or the one it is on (`current`). Spread excludes fitting
   * machines whose groups hold more instances than the best fitting one. For `fleetctl why`.
   */
  evaluate(unit: UnitRecord): MachineVerdict[] {
    if (unit.global) return this.evaluateGlobal(unit);
    const current = this.placements.get(unit.name);
    const spread = this.spread.countsFor(unit, this.machines, current);
    const verdicts: Array<{ -readonly [K in keyof MachineVerdict]: MachineVerdict[K] }> = [];
    const fitting: Scored[] = [];
    for (const id of [...this.machines.keys()].sort()) {
      const record = this.machines.get(id);
      if (record === undefined) continue;
      const exclusion = checkMachine(this, record, unit);
      if (exclusion !== undefined) {
        verdicts.push({ machineId: id, verdict: current === id ? "current" : "excluded", rule: exclusion.rule, detail: exclusion.detail });
        continue;
      }
      fitting.push(score(record, unit, spread));
      verdicts.push({ machineId: id, verdict: current === id ? "current" : "fits", detail: "" });
    }
    const best = fitting.reduce<Scored | undefined>((b, s) => (b === undefined || compareScored(s, b) < 0 ? s : b), undefined);
    for (const v of verdicts) {
      if (v.rule !== undefined || best === undefined) continue;
      const s = fitting.find((f) => f.record.id === v.machineId);
      if (s === undefined) continue;
      const load = loadNote(s.record, s.share, current === v.machineId);
      if (spread !== undefined && compareScores(s.spread, best.spread) > 0) {
        if (v.verdict !== "current") v.verdict = "excluded";
        v.rule = "Spread";
        v.detail = spread.describe(s.record, s.spread, best.spread);
      } else if (s === best) {
        if (v.verdict !== "current") v.verdict = "best";
        v.detail = `the scheduler's choice now (${load})`;
      } else {
        v.detail = `fits (${load})`;
      }
    }
    return verdicts;
  }

  /**
   * {@link evaluate} for a global unit: it runs on every machine no rule excludes, so no machine is
   * "the scheduler's choice" (no `best`); `current` where it is scheduled, `fits` where it could run.
   */
  private evaluateGlobal(unit: UnitRecord): MachineVerdict[] {
    const verdicts: MachineVerdict[] = [];
    for (const id of [...this.machines.keys()].sort()) {
      const record = this.machines.get(id);
      if (record === undefined) continue;
      const on = this.globalOn(unit.name, id);
      const exclusion = checkMachine(this, record, unit);
      if (exclusion !== undefined) {
        verdicts.push({ machineId: id, verdict: on ? "current" : "excluded", rule: exclusion.rule, detail: exclusion.detail });
        continue;
      }
      const load = loadNote(record, shareAfter(record, unit), on);
      verdicts.push(
        on
          ? { machineId: id, verdict: "current", detail: `runs here, as on every machine no rule excludes (${load})` }
          : { machineId: id, verdict: "fits", detail: `fits (${load}); a global unit runs on every machine no rule excludes` },
      );
    }
    return verdicts;
  }

  /** Every machine (by ID) with the rule that excludes the unit there; machines that accept it are left out. */
  explain(unit: UnitRecord): MachineExclusion[] {
    const result: MachineExclusion[] = [];
    for (const id of [...this.machines.keys()].sort()) {
      const record = this.machines.get(id);
      if (record === undefined) continue;
      const exclusion = checkMachine(this, record, unit);
      if (exclusion !== undefined) result.push(exclusion);
    }
    return result;
  }

  /** Machines whose metadata can match the unit (all machines when it has no MachineMetadata). */
  metadataCandidates(unit: UnitRecord): Iterable<string> {
    const first = unit.metadata[0];
    if (first === undefined) return this.machines.keys();
    const ids = new Set<string>();
    for (const value of first[1]) for (const id of this.byMetadata.get(metaKey(first[0], value)) ?? []) ids.add(id);
    return ids;
  }
}

/** A fitting candidate's rank: spread counts, then dominant share, then unit count, then ID. */
/** `load 3, 40% of its capacity with the unit`: the other units on a machine and its dominant share with the unit. */
function loadNote(record: MachineRecord, share: number, hostsUnit: boolean): string {
  return `load ${record.units.size - (hostsUnit ? 1 : 0)}${record.capacity === undefined ? "" : `, ${Math.round(share * 100)}% of its capacity with the unit`}`;
}

interface Scored {
  record: MachineRecord;
  spread: number[];
  share: number;
}

function score(record: MachineRecord, unit: UnitRecord, spread: SpreadCounts | undefined): Scored {
  return { record, spread: spread === undefined ? [] : spread.score(record), share: shareAfter(record, unit) };
}

function compareScored(a: Scored, b: Scored): number {
  const bySpread = compareScores(a.spread, b.spread);
  if (bySpread !== 0) return bySpread;
  if (a.share !== b.share) return a.share - b.share;
  return preferMachine(a.record.units.size, a.record.id, b.record.units.size, b.record.id) ? -1 : 1;
}

function addTo(map: Map<string, Set<string>>, key: string, value: string): void {
  let set = map.get(key);
  if (set === undefined) map.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom(map: Map<string, Set<string>>, key: string, value: string): void {
  const set = map.get(key);
  if (set === undefined) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}
