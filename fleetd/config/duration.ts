/**
 * Go's `time.ParseDuration` subset used by fleet options such as `agent_ttl`: a sequence of decimal
 * numbers with units `ns us µs ms s m h` (e.g. `30s`, `1m30s`, `1.5h`, `500ms`). Returns milliseconds,
 * or undefined when the text is not a duration. A bare `0` is accepted, as in Go.
 */
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseGoDuration(text: string): number | undefined {
  if (text === "0") return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  if (text.length === 0) return undefined;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    pos = re.lastIndex;
  }
  return total;
}
