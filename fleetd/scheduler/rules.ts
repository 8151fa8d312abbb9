/**
 * fleet's `AbleToRun` as separate rules, evaluated against one machine. Check order here is
 * MachineID → MachineOf → MachineMetadata → Conflicts → Replaces → Resources (fleet checked metadata before
 * MachineOf; the outcome is the same since all must pass, but this order lets the scheduler attribute
 * every machine outside a MachineID/MachineOf/metadata candidate set to that rule without checking it).
 */
import type { MachineRecord, UnitRecord } from "./records";
import { metadataMatches } from "./records";
import { resourceProblem } from "./resource-fit";
import type { MachineExclusion } from "./types";

/** What the rules need to know about the rest of the cluster. */
export interface ClusterView {
  unit(name: string): UnitRecord | undefined;
  /** Machine of a non-global unit, if placed. */
  placementOf(name: string): string | undefined;
  /** Whether a global unit is currently on the machine. */
  globalOn(name: string, machineId: string): boolean;
  /**
   * A placed unit that `unit` replaces and that replaces `unit` (circular Replaces), which keeps
   * `unit` off every machine: at most one of such a pair runs. When both are placed (a fleet cluster's
   * pair from before), the one whose name sorts first stays.
   */
  circularPartnerOf(unit: UnitRecord): { name: string; machineId: string } | undefined;
}

/** Options for {@link checkMachine}. */
export interface CheckOptions {
  /** Units on the machine to leave out of the Conflicts check (e.g. ones that will yield instead). */
  ignoreConflictsWith?: (name: string) => boolean;
}

/**
 * True when A replaces B and B replaces A. Such a pair never displaces each other; instead only one of
 * the two runs (see `ClusterView.circularPartnerOf`).
 */
export function isCircularReplace(a: UnitRecord, b: UnitRecord): boolean {
  return a.replaces.some((g) => g.match(b.name)) && b.replaces.some((g) => g.match(a.name));
}

function describe(values: readonly string[]): string {
  return values.join("|");
}

/** The first rule that keeps `unit` off `machine`, or `undefined` when it may run there. */
export function checkMachine(view: ClusterView, machine: MachineRecord, unit: UnitRecord, options: CheckOptions = {}): MachineExclusion | undefined {
  const machineId = machine.id;
  const req = unit.requirements;
  if (req.machineId !== undefined && req.machineId !== machineId && req.machineId !== machine.shortId) {
    return { machineId, rule: "MachineID", detail: `unit requires machine ${req.machineId}` };
  }
  for (const peer of req.machineOf) {
    if (view.placementOf(peer) === machineId || view.globalOn(peer, machineId)) continue;
    const where = view.placementOf(peer);
    const state = view.unit(peer) === undefined ? "does not exist" : where === undefined ? "is not scheduled" : `is on machine ${where}`;
    return { machineId, rule: "MachineOf", detail: `unit must run beside "${peer}", which ${state}` };
  }
  if (!metadataMatches(unit, machine)) {
    for (const [key, values] of unit.metadata) {
      const have = Object.prototype.hasOwnProperty.call(machine.metadata, key) ? machine.metadata[key] : undefined;
      if (have !== undefined && values.includes(have)) continue;
      const actual = have === undefined ? `no "${key}"` : `${key}=${have}`;
      return { machineId, rule: "MachineMetadata", detail: `unit requires ${key}=${describe(values)}, machine has ${actual}` };
    }
  }
  const conflict = findConflict(view, machine, unit, options);
  if (conflict !== undefined) return { machineId, rule: "Conflicts", detail: conflict };
  for (const holder of machine.replaceHolders) {
    if (holder === unit.name) continue;
    const other = view.unit(holder);
    if (other === undefined || isCircularReplace(other, unit)) continue;
    const glob = other.replaces.find((g) => g.match(unit.name));
    if (glob !== undefined) return { machineId, rule: "Replaces", detail: `"${holder}" on this machine replaces it (pattern "${glob.pattern}")` };
  }
  const partner = unit.replaces.length > 0 ? view.circularPartnerOf(unit) : undefined;
  if (partner !== undefined) {
    return {
      machineId,
      rule: "Replaces",
      detail: `it and "${partner.name}" (on machine ${partner.machineId}) replace each other (circular Replaces): only one of the two runs, and "${partner.name}" was scheduled first`,
    };
  }
  const resources = resourceProblem(machine, unit);
  if (resources !== undefined) return { machineId, rule: "Resources", detail: resources };
  return undefined;
}

/** Conflicts checked both ways against the units on the machine; returns a description or undefined. */
function findConflict(view: ClusterView, machine: MachineRecord, unit: UnitRecord, options: CheckOptions): string | undefined {
  const ignore = options.ignoreConflictsWith;
  for (const glob of unit.conflicts) {
    if (glob.literal !== undefined) {
      if (glob.literal !== unit.name && machine.units.has(glob.literal) && ignore?.(glob.literal) !== true) {
        return `unit conflicts with "${glob.literal}" on this machine`;
      }
      continue;
    }
    for (const name of machine.units) {
      if (name !== unit.name && glob.match(name) && ignore?.(name) !== true) {
        return `unit conflicts with "${name}" on this machine (pattern "${glob.pattern}")`;
      }
    }
  }
  for (const holder of machine.conflictHolders) {
    if (holder === unit.name || ignore?.(holder) === true) continue;
    const glob = view.unit(holder)?.conflicts.find((g) => g.match(unit.name));
    if (glob !== undefined) return `"${holder}" on this machine conflicts with it (pattern "${glob.pattern}")`;
  }
  return undefined;
}

/**
 * Non-global units on `machine` that `unit` replaces (circular pairs ignored): they must move to
 * another machine once `unit` is there.
 */
export function displacedBy(view: ClusterView, machine: MachineRecord, unit: UnitRecord): string[] {
  if (unit.replaces.length === 0) return [];
  const displaced: string[] = [];
  for (const name of machine.units) {
    if (name === unit.name) continue;
    const other = view.unit(name);
    if (other === undefined || other.global || view.placementOf(name) !== machine.id) continue;
    if (unit.replaces.some((g) => g.match(name)) && !isCircularReplace(unit, other)) displaced.push(name);
  }
  return displaced.sort();
}
