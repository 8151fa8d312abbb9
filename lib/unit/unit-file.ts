/**
 * systemd unit files <-> `UnitOption[]`, fleet's canonical text and the unit hash.
 *
 * The hash is fleet's identity of a unit body (SHA-1 of go-systemd's `Serialize` of the options), so
 * the options must be exactly what fleet's parser (go-systemd's `unit.Deserialize`, the version fleet
 * v1.0 ships) makes of the same text, or a unit submitted by fleet's fleetctl and re-submitted by ours
 * "differs". Its rules, which we follow for every input it accepts:
 * - before the first `[`, every character is skipped (a `#` or `;` skips the rest of the line);
 * - `[` opens a section whose name is everything up to the next `]` (not trimmed); anything but
 *   whitespace after the `]` on that line is an error;
 * - between options, whitespace (including newlines) is skipped and a line whose first non-blank
 *   character is `#` or `;` is a comment; a comment line ending in `\` (one trailing space allowed)
 *   swallows the next line too;
 * - `Name=Value`: the name runs to the first `=` (a newline first is an error), both are trimmed of
 *   Unicode white space; a value line ending in `\` continues on the next line and the value KEEPS
 *   the backslash and the newline (systemd reads the continuation itself); a blank line ends it;
 *   comment lines inside a continuation are part of the value;
 * - lines end at `\n`; a CR before it is white space, so `\\\r\n` is not a continuation;
 * - at each step, if 2048 or more bytes are buffered and the next 2048 contain no CR or LF, the text
 *   is refused as "line too long (max 2048 bytes)" (see fleet-reader.ts for why buffering matters).
 */
import { createHash } from "node:crypto";
import type { UnitOption } from "../api/types";
import { UnitFileParseError } from "./errors";
import { FleetReader } from "./fleet-reader";

/** systemd's (and fleet's) longest accepted line, in bytes. */
export const MAX_LINE_BYTES = 2048;

/** fleet's exact text for an over-long line. */
export const LINE_TOO_LONG = `line too long (max ${MAX_LINE_BYTES} bytes)`;

/** Go's unicode.IsSpace (strings.TrimSpace trims these). */
const GO_SPACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/u;
const GO_SPACE_EDGES = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/gu;

function goTrim(s: string): string {
  return s.replace(GO_SPACE_EDGES, "");
}

const NEWLINE = 0x0a;
const CR = 0x0d;
const BACKSLASH = "\\";

/** Options for {@link parseUnitFile}. */
export interface ParseUnitFileOptions {
  /** Unit name or path named in error messages. */
  source?: string;
}

type Step = (() => Step) | undefined;

/**
 * Parses unit-file text into options in file order, as fleet does.
 * @throws {UnitFileParseError} with the 1-based line number where fleet's parser gave up.
 */
export function parseUnitFile(text: string, options: ParseUnitFileOptions = {}): UnitOption[] {
  const data = Buffer.from(text, "utf8");
  const reader = new FleetReader(data);
  const result: UnitOption[] = [];
  /** `before`: bytes before the offending one (by default all but the last consumed). */
  const fail = (reason: string, before = reader.offset - 1): never => {
    const consumed = data.subarray(0, Math.max(0, Math.min(before, data.length)));
    let line = 1;
    for (const byte of consumed) if (byte === NEWLINE) line++;
    throw new UnitFileParseError(reason, line, options.source);
  };
  /** One line without its `\n` (a CR before it stays), and whether the input ended instead. */
  const toEndOfLine = (): { line: string; eof: boolean } => {
    const { bytes, found } = reader.readBytes(NEWLINE);
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === CR) end--; // only when the input ends in CR without LF
    else if (end > 0 && bytes[end - 1] === NEWLINE) end--;
    return { line: bytes.subarray(0, end).toString("utf8"), eof: !found };
  };
  const isComment = (c: string): boolean => c === "#" || c === ";";

  const ignoreLine = (next: Step): Step => () => {
    for (;;) {
      const { line } = toEndOfLine();
      const trimmed = line.endsWith(" ") ? line.slice(0, -1) : line;
      if (!trimmed.endsWith(BACKSLASH)) return next;
    }
  };
  const sectionName: Step = () => {
    const { bytes, found } = reader.readBytes(0x5d); // "]"
    if (!found) fail("unable to find end of section");
    const section = bytes.subarray(0, bytes.length - 1).toString("utf8");
    return () => {
      const garbage = goTrim(toEndOfLine().line);
      if (garbage !== "") fail(`found garbage after section name ${section}: ${JSON.stringify(garbage)}`);
      return sectionOrOption(section);
    };
  };
  const beforeFirstSection: Step = () => {
    const c = reader.readRune();
    if (c === undefined) return undefined;
    if (c === "[") return sectionName;
    if (isComment(c)) return ignoreLine(beforeFirstSection);
    return beforeFirstSection;
  };
  const sectionOrOption = (section: string): Step => () => {
    const c = reader.readRune();
    if (c === undefined) return undefined;
    if (GO_SPACE.test(c)) return sectionOrOption(section);
    if (c === "[") return sectionName;
    if (isComment(c)) return ignoreLine(sectionOrOption(section));
    reader.unreadRune();
    return optionName(section);
  };
  const optionName = (section: string): Step => () => {
    let name = "";
    for (;;) {
      const c = reader.readRune();
      if (c === undefined) fail("unexpected end of file while parsing option name (expected \"Name=Value\")");
      if (c === "\n" || c === "\r") fail("unexpected newline encountered while parsing option name");
      if (c === "=") break;
      name += c;
    }
    return optionValue(section, goTrim(name), "");
  };
  const optionValue = (section: string, name: string, partial: string): Step => () => {
    const { line, eof } = toEndOfLine();
    let value = partial;
    if (goTrim(line) !== "") {
      value += line;
      if (line.endsWith(BACKSLASH)) return optionValue(section, name, eof ? value : `${value}\n`);
    }
    value = value.endsWith("\n") ? `${goTrim(value)}\n` : goTrim(value);
    result.push({ section, name, value });
    return sectionOrOption(section);
  };

  let step: Step = beforeFirstSection;
  while (step !== undefined) {
    if (reader.buffered() >= MAX_LINE_BYTES) {
      const window = reader.peek(MAX_LINE_BYTES);
      if (!window.includes(NEWLINE) && !window.includes(CR)) fail(LINE_TOO_LONG, reader.offset);
    }
    step = step();
  }
  return result;
}

/**
 * The first line that {@link parseUnitFile} skips because it comes before any `[Section]` header
 * (fleet's parser ignores everything before the first `[`), with its 1-based number: what makes a file
 * of `Name=Value` lines without a header parse to no options at all. Blank and comment lines do not
 * count; undefined when nothing but those comes first.
 */
export function firstLineBeforeSection(text: string): { line: number; text: string } | undefined {
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = goTrim(raw);
    if (trimmed === "" || trimmed.startsWith("#") || trimmed.startsWith(";")) continue;
    if (trimmed.startsWith("[")) return undefined;
    // Text up to a "[" on the same line is skipped too; that "[" opens the first section.
    const before = goTrim(raw.slice(0, raw.indexOf("[") < 0 ? raw.length : raw.indexOf("[")));
    const cut = before.search(/[#;]/);
    const shown = goTrim(cut < 0 ? before : before.slice(0, cut));
    if (shown !== "") return { line: i + 1, text: shown };
    if (raw.includes("[")) return undefined;
  }
  return undefined;
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

/**
 * Whether a unit file describes a batch unit: a service whose last `[Service] Type=` is `oneshot`
 * (systemd: the last assignment wins). Text that does not parse is not a batch unit.
 */
export function isOneshotText(text: string): boolean {
  // The agent asks this of every unit it loads; a body without the word cannot be a oneshot, and
  // parsing each one to find out was 2 % of the simulated machines' CPU in bench:scheduler.
  if (!text.includes("oneshot")) return false;
  let options: UnitOption[];
  try {
    options = parseUnitFile(text);
  } catch {
    return false;
  }
  const types = options.filter((o) => o.section === "Service" && o.name === "Type");
  return types.length > 0 && types[types.length - 1]!.value.trim() === "oneshot";
}
