/**
 * systemd unit files <-> `UnitOption[]`, fleet's canonical text and the unit hash.
 *
 * Parsing follows systemd's conf-parser (systemd.syntax(7)) rather than fleet's older lexer:
 * - physical lines end at `\n` (a `\r` before it is dropped);
 * - blank lines and lines whose first non-blank character is `#` or `;` are comments, also between
 *   continuation lines;
 * - a line ending in an unescaped backslash continues on the next line; the backslash becomes a space;
 * - `[Section]` opens a section; `Name=Value` splits at the first `=`, both sides trimmed of
 *   spaces, tabs and CR/LF (systemd's WHITESPACE), so `Name = Value` and `Name=Value` are equal;
 * - repeated names are kept in order (systemd gives them list semantics; an empty value resets it).
 * Where systemd only warns (text outside a section, a line without `=`) we reject with the line
 * number: a unit that systemd would silently run differently is better caught at submit time.
 */
import { createHash } from "node:crypto";
import type { UnitOption } from "../api/types";
import { UnitFileParseError } from "./errors";

/** systemd's (and fleet's) longest accepted line, in bytes. */
export const MAX_LINE_BYTES = 2048;

/** fleet's exact text for an over-long line. */
export const LINE_TOO_LONG = `line too long (max ${MAX_LINE_BYTES} bytes)`;

const WHITESPACE = " \t\n\r";

/** Trims systemd's WHITESPACE (not every Unicode space, as systemd does not either). */
function strip(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && WHITESPACE.includes(s.charAt(start))) start++;
  while (end > start && WHITESPACE.includes(s.charAt(end - 1))) end--;
  return s.slice(start, end);
}

function isComment(line: string): boolean {
  const first = strip(line).charAt(0);
  return first === "#" || first === ";";
}

/** True when the line ends in a backslash that is not itself escaped. */
function endsWithContinuation(line: string): boolean {
  let backslashes = 0;
  for (let i = line.length - 1; i >= 0 && line.charAt(i) === "\\"; i--) backslashes++;
  return backslashes % 2 === 1;
}

/** Options for {@link parseUnitFile}. */
export interface ParseUnitFileOptions {
  /** Unit name or path named in error messages. */
  source?: string;
}

/**
 * Parses unit-file text into options in file order.
 * @throws {UnitFileParseError} with the 1-based line number of the first bad line.
 */
export function parseUnitFile(text: string, options: ParseUnitFileOptions = {}): UnitOption[] {
  const fail = (reason: string, line: number): never => {
    throw new UnitFileParseError(reason, line, options.source);
  };
  // systemd skips a UTF-8 byte-order mark at the start of a file.
  const lines = (text.startsWith("\uFEFF") ? text.slice(1) : text).split("\n");
  const result: UnitOption[] = [];
  let section: string | undefined;
  let pending: string | undefined; // logical line being continued
  let pendingStart = 0;

  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i] ?? "";
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (Buffer.byteLength(line, "utf8") > MAX_LINE_BYTES) fail(LINE_TOO_LONG, lineNo);
    if (isComment(line)) continue;
    if (pending === undefined) pendingStart = lineNo;
    const joined = (pending ?? "") + line;
    if (endsWithContinuation(line) && i < lines.length - 1) {
      pending = joined.slice(0, -1) + " ";
      continue;
    }
    pending = undefined;
    // A backslash at the very end of the file has nothing to continue with; systemd drops it.
    const logical = strip(endsWithContinuation(joined) ? joined.slice(0, -1) : joined);
    if (logical === "") continue;

    if (logical.startsWith("[")) {
      if (!logical.endsWith("]") || logical.length < 3) {
        fail(`invalid section header ${JSON.stringify(logical)} (expected "[Name]")`, pendingStart);
      }
      section = logical.slice(1, -1);
      continue;
    }
    const eq = logical.indexOf("=");
    if (eq === -1) fail(`missing "=" in ${JSON.stringify(logical)} (expected "Name=Value")`, pendingStart);
    const name = strip(logical.slice(0, eq));
    if (name === "") fail(`option without a name in ${JSON.stringify(logical)}`, pendingStart);
    if (section === undefined) fail(`option "${name}" appears before any [Section] header`, pendingStart);
    result.push({ section: section as string, name, value: strip(logical.slice(eq + 1)) });
  }
  return result;
}

/**
 * fleet's canonical text: sections in order of first appearance, each `[Section]` followed by its
 * `Name=Value` lines in their original order, one blank line between sections, ending with a single
 * newline (no trailing blank line). No options → "".
 */
export function serializeUnitFile(options: readonly UnitOption[]): string {
  const bySection = new Map<string, UnitOption[]>();
  for (const option of options) {
    const list = bySection.get(option.section);
    if (list === undefined) bySection.set(option.section, [option]);
    else list.push(option);
  }
  const parts: string[] = [];
  for (const [section, list] of bySection) {
    let block = `[${section}]\n`;
    for (const option of list) block += `${option.name}=${option.value}\n`;
    parts.push(block);
  }
  return parts.join("\n");
}

/** SHA-1 (hex) of the canonical text: a unit's identity ("is it the same unit body?"). */
export function unitHashOfText(canonicalText: string): string {
  return createHash("sha1").update(canonicalText, "utf8").digest("hex");
}

/** SHA-1 (hex) of {@link serializeUnitFile}'s output for these options. */
export function unitHash(options: readonly UnitOption[]): string {
  return unitHashOfText(serializeUnitFile(options));
}
