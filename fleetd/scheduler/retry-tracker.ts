/**
 * Remembers units that found no machine, so later passes do not re-check every machine for them
 * while nothing that could help them has changed. Without it, units that can never fit (e.g. more
 * instances of a self-conflicting template than machines) cost O(machines) each on every pass: the
 * pile-up that made fleet stop scheduling once a few hundred units carried X-Conflicts.
 *
 * A refused unit is retried when: any machine joined or changed metadata; a unit it is related to
 * left a machine (it conflicted with it either way, or it replaced it), or any unit left a machine
 * when it was refused for resources; its MachineOf target was
 * placed; or it changed itself (the model forgets it then).
 */
import type { Glob } from "../../lib/unit/index";
import type { ClusterState } from "./cluster-state";
import type { UnscheduledUnit } from "./types";

interface Refused {
  machineEpoch: number;
  report: UnscheduledUnit;
  /** Refused somewhere by Conflicts or Replaces: units leaving machines may help. */
  byNeighbours: boolean;
  /** Refused somewhere for lack of CPU or memory: any unit leaving a machine may free enough. */
  byResources: boolean;
}

interface Departed {
  name: string;
  patterns: { readonly conflicts: readonly Glob[]; readonly replaces: readonly Glob[] } | undefined;
}

/** Above this many (vacated × refused) relation checks, retrying every such unit is cheaper. */
const RELATION_CHECK_BUDGET = 200_000;

/** Refused units, and when each deserves another look (see the file comment). */
export class RetryTracker {
  private machineEpoch = 0;
  private readonly refused = new Map<string, Refused>();
  private readonly retry = new Set<string>();
  private vacated: Departed[] = [];

  /** A machine joined or its metadata changed: every refused unit deserves another look. */
  machinesChanged(): void {
    this.machineEpoch++;
  }

  /**
   * A unit left a machine (decided in a pass, or told by the engine), or a placed unit dropped some
   * of its patterns (changed or destroyed). `patterns` are those it had while it blocked others.
   */
  unitLeft(name: string, patterns: Departed["patterns"] = undefined): void {
    this.vacated.push({ name, patterns });
  }

  /** The unit was placed, changed, destroyed or no longer wants a machine. */
  forget(name: string): void {
    this.refused.delete(name);
    this.retry.delete(name);
  }

  /** Something the unit waits for happened (its MachineOf target was placed). */
  wake(name: string): void {
    if (this.refused.has(name)) this.retry.add(name);
  }

  /** Records that no machine could take the unit, and why. */
  refuse(report: UnscheduledUnit): void {
    const by = report.excludedBy;
    this.refused.set(report.unit, { machineEpoch: this.machineEpoch, report, byNeighbours: (by.Conflicts ?? 0) > 0 || (by.Replaces ?? 0) > 0, byResources: (by.Resources ?? 0) > 0 });
    this.retry.delete(report.unit);
  }

  /** True when re-checking the unit cannot succeed: nothing relevant changed since it was refused. */
  canSkip(name: string): boolean {
    const entry = this.refused.get(name);
    return entry !== undefined && entry.machineEpoch === this.machineEpoch && !this.retry.has(name);
  }

  /** Turns units that left machines since the last call into retries of the units they blocked. */
  absorbVacated(state: ClusterState): void {
    if (this.vacated.length === 0) return;
    const gone = this.vacated;
    this.vacated = [];
    for (const [name, entry] of this.refused) if (entry.byResources) this.retry.add(name);
    const blocked = [...this.refused].filter(([name, entry]) => entry.byNeighbours && !this.retry.has(name));
    if (blocked.length === 0) return;
    if (gone.length * blocked.length > RELATION_CHECK_BUDGET) {
      for (const [name] of blocked) this.retry.add(name);
      return;
    }
    const goneGlobs = gone.map(({ name, patterns }) => {
      const current = patterns ?? state.units.get(name);
      return { name, conflicts: current?.conflicts ?? [], replaces: current?.replaces ?? [] };
    });
    for (const [name] of blocked) {
      const unit = state.units.get(name);
      const mine: readonly Glob[] = unit?.conflicts ?? [];
      const related = goneGlobs.some((g) => mine.some((p) => p.match(g.name)) || g.conflicts.some((p) => p.match(name)) || g.replaces.some((p) => p.match(name)));
      if (related) this.retry.add(name);
    }
  }

  /** Reports of every unit currently refused, by name. */
  reports(): UnscheduledUnit[] {
    return [...this.refused.values()].map((e) => e.report).sort((a, b) => (a.unit < b.unit ? -1 : a.unit > b.unit ? 1 : 0));
  }
}
