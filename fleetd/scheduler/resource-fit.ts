/**
 * The Resources rule and the resource part of "least loaded": a machine takes a unit only when the
 * unit's needs fit in what its units have not taken yet (never overcommitted), and among fitting
 * machines the one left with the lowest dominant share (max of CPU and memory used / capacity) wins.
 */
import { formatCpus, formatMemory } from "../../lib/unit/index";
import type { MachineRecord, UnitRecord } from "./records";

/** True when the unit needs nothing (fleet's units): the rule never applies to it. */
export function needsNothing(unit: UnitRecord): boolean {
  return unit.requirements.cpus === 0 && unit.requirements.memory === 0;
}

/** Why the machine cannot hold the unit's needs, or undefined when they fit. The unit's own share is not counted twice. */
export function resourceProblem(machine: MachineRecord, unit: UnitRecord): string | undefined {
  if (needsNothing(unit)) return undefined;
  const cap = machine.capacity;
  if (cap === undefined) return "machine publishes no capacity (an older fleetd or fleet agent), so it takes no unit with CPU or memory needs";
  const own = machine.counted.get(unit.name);
  const { cpus, memory } = unit.requirements;
  const freeCpus = cap.cpus - machine.used.cpus + (own?.cpus ?? 0);
  const freeMemory = cap.memory - machine.used.memory + (own?.memory ?? 0);
  if (cpus > freeCpus) return `unit needs ${formatCpus(cpus)}, machine has ${formatCpus(Math.max(0, freeCpus))} free of ${formatCpus(cap.cpus)}`;
  if (memory > freeMemory) return `unit needs ${formatMemory(memory)} of memory, machine has ${formatMemory(Math.max(0, freeMemory))} free of ${formatMemory(cap.memory)}`;
  return undefined;
}

function share(used: number, capacity: number): number {
  if (used <= 0) return 0;
  return capacity <= 0 ? Number.POSITIVE_INFINITY : used / capacity;
}

/** Dominant share of the machine once the unit is on it (0 for a machine without capacity). */
export function shareAfter(machine: MachineRecord, unit: UnitRecord): number {
  const cap = machine.capacity;
  if (cap === undefined) return 0;
  const own = machine.counted.get(unit.name);
  const cpus = machine.used.cpus - (own?.cpus ?? 0) + unit.requirements.cpus;
  const memory = machine.used.memory - (own?.memory ?? 0) + unit.requirements.memory;
  return Math.max(share(cpus, cap.cpus), share(memory, cap.memory));
}
