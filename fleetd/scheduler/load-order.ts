/**
 * Machines ordered by (load, machine ID), the least-loaded scheduler's order, kept up to date as
 * loads change by one unit at a time. Buckets per load value hold sorted IDs, so finding the
 * least-loaded machine is O(1) and a load change costs one sorted insert into a bucket, instead of
 * sorting every machine for every unit (fleet's O(units × machines log machines) per pass).
 */

function lowerBound(sorted: readonly string[], id: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] ?? "") < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Compares two machines the way the scheduler prefers them: lower load, then lower ID. */
export function preferMachine(aLoad: number, aId: string, bLoad: number, bId: string): boolean {
  return aLoad < bLoad || (aLoad === bLoad && aId < bId);
}

/** A set of machine IDs iterable in ascending (load, ID) order. */
export class LoadOrder {
  private readonly buckets: string[][] = [];
  private readonly loads = new Map<string, number>();

  get size(): number {
    return this.loads.size;
  }

  has(id: string): boolean {
    return this.loads.has(id);
  }

  loadOf(id: string): number | undefined {
    return this.loads.get(id);
  }

  /** Adds a machine, or moves it when its load changed. */
  set(id: string, load: number): void {
    const old = this.loads.get(id);
    if (old === load) return;
    if (old !== undefined) this.removeFromBucket(id, old);
    this.loads.set(id, load);
    while (this.buckets.length <= load) this.buckets.push([]);
    const bucket = this.buckets[load] ?? [];
    bucket.splice(lowerBound(bucket, id), 0, id);
  }

  delete(id: string): void {
    const old = this.loads.get(id);
    if (old === undefined) return;
    this.removeFromBucket(id, old);
    this.loads.delete(id);
  }

  /** IDs from least to most loaded, ties by ID ascending. Do not mutate while iterating. */
  *ascending(): Generator<string> {
    for (const bucket of this.buckets) yield* bucket;
  }

  private removeFromBucket(id: string, load: number): void {
    const bucket = this.buckets[load];
    if (bucket === undefined) return;
    const at = lowerBound(bucket, id);
    if (bucket[at] === id) bucket.splice(at, 1);
    // Drop empty buckets at the top so iteration does not walk a long empty tail.
    while (this.buckets.length > 0 && this.buckets[this.buckets.length - 1]?.length === 0) this.buckets.pop();
  }
}
