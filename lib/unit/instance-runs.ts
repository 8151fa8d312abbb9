/**
 * Lists of a template's instance names as runs of instance numbers: `web@1.service` … `web@10000.service`
 * is `[[1, 10000]]`. fleetd stores a rollout's per-instance lists this way (`fleetd/deploy/record-codec.ts`)
 * and fleetctl prints long lists of instances with it (`web@{1..10000}.service`, as bash would expand it).
 */

/**
 * A list of unit names in order: a string is a name as it is; a number `n` is the template's instance
 * `<name>@<n>.<type>`; `[a, b]` is its instances `a` to `b` (each one more than the last).
 */
export type InstanceRuns = Array<string | number | [number, number]>;

/** Longest run decoded (instance numbers are not bounded, but 10 million instances are not a template's). */
const MAX_RUN = 10_000_000;

/** Encodes a list of names as {@link InstanceRuns} and decodes it back. */
export interface RunsCodec {
  encode(names: readonly string[]): InstanceRuns;
  decode(runs: InstanceRuns): string[];
}

/**
 * A {@link RunsCodec} for any numbering of names: `numberOf` gives a name's number (undefined: kept as
 * a string), `named` the name of a number (it throws a RangeError for a number it has no name for).
 * `what` names the list in errors.
 */
export function numberedRuns(what: string, numberOf: (name: string) => number | undefined, named: (n: number) => string): RunsCodec {
  return {
    encode(names) {
      const runs: InstanceRuns = [];
      for (const name of names) {
        const n = numberOf(name);
        const last = runs.at(-1);
        if (n === undefined) runs.push(name);
        else if (typeof last === "number" && n === last + 1) runs[runs.length - 1] = [last, n];
        else if (Array.isArray(last) && n === last[1] + 1) last[1] = n;
        else runs.push(n);
      }
      return runs;
    },
    decode(runs) {
      const names: string[] = [];
      for (const run of runs) {
        if (typeof run === "string") names.push(run);
        else if (typeof run === "number") names.push(named(run));
        else {
          const [a, b] = run;
          // Never from fleetd's own writes; a damaged record must fail, not loop or exhaust memory.
          if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || b < a || b - a >= MAX_RUN) throw new RangeError(`invalid run of ${what}: ${JSON.stringify(run)}`);
          for (let n = a; n <= b; n++) names.push(named(n));
        }
      }
      return names;
    },
  };
}

/** Encodes and decodes lists of `template`'s (`web@.service`) instance names as {@link InstanceRuns}. */
export function instanceRuns(template: string): RunsCodec & { format(names: readonly string[]): string } {
  const at = template.indexOf("@");
  const head = template.slice(0, at + 1);
  const tail = template.slice(at + 1);
  const numberOf = (name: string): number | undefined => {
    if (at < 0 || name.length <= head.length + tail.length || !name.startsWith(head) || !name.endsWith(tail)) return undefined;
    const digits = name.slice(head.length, name.length - tail.length);
    const n = Number(digits);
    // Only canonical decimals: `web@01.service` is not `web@1.service`.
    return /^(0|[1-9]\d*)$/.test(digits) && Number.isSafeInteger(n) ? n : undefined;
  };
  const named = (n: number): string => `${head}${n}${tail}`;
  const codec = numberedRuns(`instances of ${template}`, numberOf, named);
  return {
    ...codec,
    /** Space-separated, a run of five or more as `web@{4..9}.service` (bash's brace expansion gives the names back). */
    format(names) {
      return codec
        .encode(names)
        .flatMap((run) => {
          if (typeof run === "string") return [run];
          if (typeof run === "number") return [named(run)];
          if (run[1] - run[0] >= 4) return [`${head}{${run[0]}..${run[1]}}${tail}`];
          return Array.from({ length: run[1] - run[0] + 1 }, (_, i) => named(run[0] + i));
        })
        .join(" ");
    },
  };
}
