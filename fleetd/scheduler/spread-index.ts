/**
 * `[X-Fleet] Spread=key...`: the instances of a template stay as evenly spread across the values of
 * each key as the machines allow. The index counts, per template, its instances on each machine; a
 * unit being placed turns that into counts per metadata value (`zone=a: 3, zone=b: 2`), and the
 * scheduler prefers the fitting machine whose values hold the fewest instances (keys in the order
 * given, then resources, then unit count). Machines without the key form one group of their own.
 */
import type { MachineRecord, UnitRecord } from "./records";

/** Per Spread key, instances of the unit's template per metadata value (the unit itself left out). */
export class SpreadCounts {
  constructor(
    readonly template: string,
    readonly keys: readonly string[],
    private readonly counts: ReadonlyArray<ReadonlyMap<string, number>>,
  ) {}

  /** Instances already in the machine's group, per key. */
  score(machine: MachineRecord): number[] {
    return this.keys.map((key, i) => this.counts[i]?.get(valueOf(machine, key)) ?? 0);
  }

  /** e.g. `zone=a holds 3 instances of web@.service` for the first key where `score` beats `best`. */
  describe(machine: MachineRecord, score: readonly number[], best: readonly number[]): string {
    for (let i = 0; i < this.keys.length; i++) {
      if ((score[i] ?? 0) === (best[i] ?? 0)) continue;
      const key = this.keys[i] ?? "";
      const value = valueOf(machine, key);
      const where = value === "" ? `machines without "${key}"` : `${key}=${value}`;
      return `${where} already hold${value === "" ? "" : "s"} ${score[i] ?? 0} instance(s) of ${this.template}, a fitting machine elsewhere has ${best[i] ?? 0} (Spread=${key})`;
    }
    return "";
  }
}

function valueOf(machine: MachineRecord, key: string): string {
  return Object.prototype.hasOwnProperty.call(machine.metadata, key) ? (machine.metadata[key] ?? "") : "";
}

/** Lexicographic comparison of two spread scores: negative when `a` is better (fewer instances). */
export function compareScores(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Instances of each template per machine, kept in step with placements. */
export class SpreadIndex {
  private readonly byTemplate = new Map<string, Map<string, number>>();

  attached(template: string | undefined, machineId: string): void {
    if (template === undefined) return;
    let perMachine = this.byTemplate.get(template);
    if (perMachine === undefined) this.byTemplate.set(template, (perMachine = new Map<string, number>()));
    perMachine.set(machineId, (perMachine.get(machineId) ?? 0) + 1);
  }

  detached(template: string | undefined, machineId: string): void {
    if (template === undefined) return;
    const perMachine = this.byTemplate.get(template);
    const n = perMachine?.get(machineId);
    if (perMachine === undefined || n === undefined) return;
    if (n <= 1) perMachine.delete(machineId);
    else perMachine.set(machineId, n - 1);
    if (perMachine.size === 0) this.byTemplate.delete(template);
  }

  /**
   * Counts for a unit with Spread keys (undefined when it has none or is not an instance). `self`:
   * the machine the unit is on now, whose count leaves it out.
   */
  countsFor(unit: UnitRecord, machines: ReadonlyMap<string, MachineRecord>, self?: string): SpreadCounts | undefined {
    const keys = unit.requirements.spread;
    if (keys.length === 0 || unit.template === undefined) return undefined;
    const counts = keys.map(() => new Map<string, number>());
    for (const [machineId, n] of this.byTemplate.get(unit.template) ?? []) {
      const machine = machines.get(machineId);
      if (machine === undefined) continue;
      const count = machineId === self ? n - 1 : n;
      if (count <= 0) continue;
      keys.forEach((key, i) => {
        const value = valueOf(machine, key);
        counts[i]?.set(value, (counts[i]?.get(value) ?? 0) + count);
      });
    }
    return new SpreadCounts(unit.template, keys, counts);
  }
}
