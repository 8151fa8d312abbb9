/**
 * For each wildcard Conflicts pattern in use, the machines hosting a unit that matches it. Lets the
 * scheduler refuse at once a unit whose own patterns already cover every machine (e.g. the 1,001st
 * instance of `web@.service` with `Conflicts=web@*.service` on 1,000 machines) instead of checking
 * every machine for it. Only a bounded number of distinct patterns is indexed, since every unit
 * placed is tested against each of them; units with other patterns take the normal path.
 */
import { compileGlob, type Glob } from "../../lib/unit/index";

/** Most distinct wildcard patterns indexed at once. */
const MAX_INDEXED_PATTERNS = 64;

interface Entry {
  glob: Glob;
  /** Units carrying the pattern. */
  users: number;
  /** machine ID → units on it matching the pattern. */
  hosts: Map<string, number>;
}

/** Machines hosting matches of each indexed wildcard Conflicts pattern. */
export class ConflictHosts {
  private readonly entries = new Map<string, Entry>();

  /** A unit with `pattern` appeared; `placedUnits` lists (machine, unit) for a first index build. */
  addUser(pattern: string, placedUnits: () => Iterable<readonly [string, string]>): void {
    const entry = this.entries.get(pattern);
    if (entry !== undefined) {
      entry.users++;
      return;
    }
    const glob = compileGlob(pattern);
    if (glob.literal !== undefined || !glob.valid || this.entries.size >= MAX_INDEXED_PATTERNS) return;
    const hosts = new Map<string, number>();
    for (const [machineId, name] of placedUnits()) if (glob.match(name)) hosts.set(machineId, (hosts.get(machineId) ?? 0) + 1);
    this.entries.set(pattern, { glob, users: 1, hosts });
  }

  removeUser(pattern: string): void {
    const entry = this.entries.get(pattern);
    if (entry === undefined) return;
    if (--entry.users === 0) this.entries.delete(pattern);
  }

  attached(machineId: string, name: string): void {
    for (const entry of this.entries.values()) if (entry.glob.match(name)) entry.hosts.set(machineId, (entry.hosts.get(machineId) ?? 0) + 1);
  }

  detached(machineId: string, name: string): void {
    for (const entry of this.entries.values()) {
      if (!entry.glob.match(name)) continue;
      const count = (entry.hosts.get(machineId) ?? 0) - 1;
      if (count <= 0) entry.hosts.delete(machineId);
      else entry.hosts.set(machineId, count);
    }
  }

  /**
   * True when the patterns are all indexed and together match a unit on each of `machineCount`
   * machines (machines in the index are always present ones: removal detaches their units).
   */
  coverAll(patterns: readonly Glob[], machineCount: number): boolean {
    if (patterns.length === 0 || machineCount === 0) return false;
    const sets: Array<Map<string, number>> = [];
    for (const glob of patterns) {
      const entry = this.entries.get(glob.pattern);
      if (entry === undefined) return false;
      sets.push(entry.hosts);
    }
    if (sets.length === 1) return (sets[0]?.size ?? 0) >= machineCount;
    const union = new Set<string>();
    for (const hosts of sets) for (const id of hosts.keys()) union.add(id);
    return union.size >= machineCount;
  }
}
