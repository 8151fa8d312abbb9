/**
 * Duration options (`--deadline 90s`): a number with an optional unit (ms, s, m, h); a bare number is
 * seconds, so `--deadline 120` means what it meant when these options took whole seconds.
 */
import { InvalidArgumentError } from "commander";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses `90s`, `2m`, `1.5h`, `500ms` or `120` (seconds) into milliseconds, for commander's option
 * parsers. Throws commander's `InvalidArgumentError` (quoting the value) for anything else or for zero.
 */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  const ms = m ? Number(m[1]) * (UNIT_MS[m[2] ?? "s"] ?? 1000) : undefined;
  if (ms === undefined || !Number.isFinite(ms)) throw new InvalidArgumentError(`"${value}" is not a duration; use e.g. 90s, 2m or 120`);
  if (ms <= 0) throw new InvalidArgumentError(`"${value}" is no time at all; use a positive duration, e.g. 90s, 2m or 120`);
  return ms;
}

/**
 * A commander parser for a duration from `minMs` to `maxMs` (milliseconds); the error quotes the value
 * and says the range in the units an operator types.
 */
export function durationInRange(minMs: number, maxMs: number, range: string): (value: string) => number {
  return (value) => {
    const ms = parseDuration(value);
    if (ms < minMs || ms > maxMs) throw new InvalidArgumentError(`"${value}" is out of range; use from ${range}`);
    return ms;
  };
}
