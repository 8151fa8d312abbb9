/**
 * The scheduler's internal records: units with their patterns compiled once, machines with the
 * per-machine indexes the rules need (which units are there, which of those carry Conflicts or
 * Replaces patterns), so a rule check touches one machine's few units, not the whole cluster.
 */
import type { UnitTargetState } from "../../lib/api/types";
import { compileGlob, templateOf, type Glob, type Requirements, type ResourceAmounts } from "../../lib/unit/index";
import type { SchedulerMachine, SchedulerUnit } from "./types";

/** A unit prepared for repeated rule checks. */
export interface UnitRecord {
  readonly name: string;
  readonly requirements: Requirements;
  readonly desiredState: UnitTargetState;
  /** See `SchedulerUnit.completed` (never true for a global unit). */
  readonly completed: boolean;
  readonly global: boolean;
  readonly conflicts: readonly Glob[];
  readonly replaces: readonly Glob[];
  /** MachineMetadata as [key, accepted values] pairs. */
  readonly metadata: ReadonlyArray<readonly [string, readonly string[]]>;
  /** The template of an instance (`web@.service`): the group `Spread=` keeps even; else undefined. */
  readonly template: string | undefined;
}

/** A machine with the units currently on it (non-global placements and global units alike). */
export interface MachineRecord {
  readonly id: string;
  readonly shortId: string;
  metadata: Readonly<Record<string, string>>;
  readonly units: Set<string>;
  /** Units on this machine that carry Conflicts patterns (checked against newcomers). */
  readonly conflictHolders: Set<string>;
  /** Units on this machine that carry Replaces patterns (they push matching newcomers away). */
  readonly replaceHolders: Set<string>;
  capacity: Readonly<ResourceAmounts> | undefined;
  /** Sum of the needs of the units on it, and what each unit added (so a change subtracts the right amount). */
  readonly used: ResourceAmounts;
  readonly counted: Map<string, ResourceAmounts>;
}

/** Prepares a unit for rule checks (patterns compiled once). */
export function toUnitRecord(unit: SchedulerUnit): UnitRecord {
  const r = unit.requirements;
  return {
    name: unit.name,
    requirements: r,
    desiredState: unit.desiredState,
    completed: unit.completed === true && !r.global,
    global: r.global,
    conflicts: r.conflicts.map(compileGlob),
    replaces: r.replaces.map(compileGlob),
    metadata: [...r.machineMetadata].map(([k, v]) => [k, [...v]] as const),
    template: templateOf(unit.name),
  };
}

/** A machine record with empty per-machine indexes. */
export function toMachineRecord(machine: SchedulerMachine): MachineRecord {
  return {
    id: machine.id,
    shortId: machine.id.slice(0, 8),
    metadata: { ...machine.metadata },
    units: new Set(),
    conflictHolders: new Set(),
    replaceHolders: new Set(),
    capacity: machine.capacity === undefined ? undefined : { ...machine.capacity },
    used: { cpus: 0, memory: 0 },
    counted: new Map(),
  };
}

/** True when every MachineMetadata key has one of its accepted values on the machine. */
export function metadataMatches(unit: UnitRecord, machine: MachineRecord): boolean {
  for (const [key, values] of unit.metadata) {
    const have = Object.prototype.hasOwnProperty.call(machine.metadata, key) ? machine.metadata[key] : undefined;
    if (have === undefined || !values.includes(have)) return false;
  }
  return true;
}

/** Same requirements and desired state: an update that needs no re-check. */
export function sameSchedulingInputs(a: UnitRecord, b: SchedulerUnit): boolean {
  if (a.desiredState !== b.desiredState || a.completed !== (b.completed === true && !b.requirements.global)) return false;
  const x = a.requirements;
  const y = b.requirements;
  if (x === y) return true;
  const sameList = (p: readonly string[], q: readonly string[]): boolean => p.length === q.length && p.every((v, i) => v === q[i]);
  if (x.machineId !== y.machineId || x.global !== y.global || x.cpus !== y.cpus || x.memory !== y.memory) return false;
  if (!sameList(x.spread, y.spread)) return false;
  if (!sameList(x.machineOf, y.machineOf) || !sameList(x.conflicts, y.conflicts) || !sameList(x.replaces, y.replaces)) return false;
  if (x.machineMetadata.size !== y.machineMetadata.size) return false;
  for (const [k, v] of x.machineMetadata) {
    const w = y.machineMetadata.get(k);
    if (w === undefined || !sameList(v, w)) return false;
  }
  return true;
}
