/**
 * Glob patterns of `Conflicts` and `Replaces`, matched like Go's `path.Match` (what fleet used):
 * `*` any run of characters except `/`, `?` one character except `/`, `[abc]`, `[a-z]`, `[^...]`
 * (and `[!...]`, as shells write it) classes, `\x` a literal x. A malformed pattern matches nothing,
 * as in fleet, which ignored `path.ErrBadPattern`.
 */

/** A compiled pattern. `literal` is set when the pattern has no wildcard, so callers can use a set lookup. */
export interface Glob {
  readonly pattern: string;
  /** The exact name matched, when the pattern contains no `* ? [ \`. */
  readonly literal: string | undefined;
  /** False for malformed patterns (they match nothing). */
  readonly valid: boolean;
  match(name: string): boolean;
}

// With the RegExp "u" flag only syntax characters may be escaped, and `-` only inside a class.
function escapeRegExp(ch: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch;
}

function escapeInClass(ch: string): string {
  return /[\\\][^-]/.test(ch) ? `\\${ch}` : ch;
}

/** Translates a glob into an anchored RegExp source, or `undefined` when the pattern is malformed. */
function toRegExpSource(pattern: string): string | undefined {
  const chars = Array.from(pattern);
  let out = "^";
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] ?? "";
    if (ch === "*") {
      out += "[^/]*";
    } else if (ch === "?") {
      out += "[^/]";
    } else if (ch === "\\") {
      const next = chars[++i];
      if (next === undefined) return undefined;
      out += escapeRegExp(next);
    } else if (ch === "[") {
      let j = i + 1;
      let negated = false;
      if (chars[j] === "^" || chars[j] === "!") {
        negated = true;
        j++;
      }
      const ranges: string[] = [];
      let closed = false;
      while (j < chars.length) {
        if (chars[j] === "]" && ranges.length > 0) {
          closed = true;
          break;
        }
        const lo = readClassChar(chars, j);
        if (lo === undefined) return undefined;
        j = lo.next;
        if (chars[j] === "-") {
          const hi = readClassChar(chars, j + 1);
          if (hi === undefined) return undefined;
          j = hi.next;
          // Go accepts lo > hi and simply never matches it; a RegExp would throw, so drop it.
          if ((lo.ch.codePointAt(0) ?? 0) <= (hi.ch.codePointAt(0) ?? 0)) ranges.push(`${escapeInClass(lo.ch)}-${escapeInClass(hi.ch)}`);
          else ranges.push("");
        } else {
          ranges.push(escapeInClass(lo.ch));
        }
      }
      if (!closed) return undefined;
      const body = ranges.join("");
      out += negated ? `[^${body}]` : body === "" ? "(?!)" : `[${body}]`;
      i = j;
    } else {
      out += escapeRegExp(ch);
    }
  }
  return `${out}$`;
}

/** One character inside a class (Go's `getEsc`): `-` and `]` must be escaped there. */
function readClassChar(chars: readonly string[], at: number): { ch: string; next: number } | undefined {
  let ch = chars[at];
  if (ch === undefined || ch === "-" || ch === "]") return undefined;
  if (ch === "\\") {
    ch = chars[at + 1];
    if (ch === undefined) return undefined;
    return { ch, next: at + 2 };
  }
  return { ch, next: at + 1 };
}

/** True when the pattern contains a glob metacharacter. */
export function hasGlobMeta(pattern: string): boolean {
  return /[*?[\\]/.test(pattern);
}

/** Compiles a pattern once for repeated matching. */
export function compileGlob(pattern: string): Glob {
  if (!hasGlobMeta(pattern)) {
    return { pattern, literal: pattern, valid: true, match: (name) => name === pattern };
  }
  const source = toRegExpSource(pattern);
  if (source === undefined) return { pattern, literal: undefined, valid: false, match: () => false };
  const re = new RegExp(source, "u");
  return { pattern, literal: undefined, valid: true, match: (name) => re.test(name) };
}

/** One-off match (compiles the pattern each call; use {@link compileGlob} in loops). */
export function globMatch(pattern: string, name: string): boolean {
  return compileGlob(pattern).match(name);
}
