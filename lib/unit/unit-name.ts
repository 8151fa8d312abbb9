/**
 * Unit names: systemd's validity rules as fleet enforced them (fleet-reference §2.6, fleet's exact
 * error texts), template/instance helpers, and fleetctl's name mangling (§1.3).
 */
import { UnitNameError } from "./errors";

/** Longest accepted unit name (systemd's UNIT_NAME_MAX). */
export const UNIT_NAME_MAX = 256;

/** Unit types systemd knows (the part after the last dot). */
export const UNIT_TYPES: ReadonlySet<string> = new Set([
  "automount", "busname", "device", "mount", "path", "scope", "service", "slice",
  "snapshot", "socket", "swap", "target", "timer",
]);

/** Unit types that may be templates or instances (names containing `@`). */
export const TEMPLATE_UNIT_TYPES: ReadonlySet<string> = new Set(["path", "service", "socket", "target", "timer"]);

/** Suffixes fleetctl accepts as-is when mangling a name; anything else gets `.service` appended. */
export const MANGLE_SUFFIXES: readonly string[] = [".service", ".socket", ".timer", ".path", ".device", ".mount", ".automount"];

const VALID_CHAR = /^[A-Za-z0-9:_.@\-\\]$/;

/** Go's `%q` for one character, so our messages match fleet's byte for byte. */
function goQuoteRune(ch: string): string {
  switch (ch) {
    case "'": return "'\\''";
    case "\\": return "'\\\\'";
    case "\n": return "'\\n'";
    case "\t": return "'\\t'";
    case "\r": return "'\\r'";
  }
  const code = ch.codePointAt(0) ?? 0;
  if (code < 0x20 || code === 0x7f) return `'\\x${code.toString(16).padStart(2, "0")}'`;
  return `'${ch}'`;
}

/**
 * Why `name` is not a valid unit name (fleet's text), or `undefined` when it is valid.
 * Checks, in fleet's order: empty, length, a dot that is not last, known type, template type,
 * characters before the last dot, leading `@`.
 */
export function unitNameProblem(name: string): string | undefined {
  if (name.length === 0) return "unit name cannot be empty";
  // Bytes, as fleet (Go) and systemd count.
  if (Buffer.byteLength(name, "utf8") > UNIT_NAME_MAX) return `unit name exceeds maximum length (${UNIT_NAME_MAX})`;
  const dot = name.lastIndexOf(".");
  if (dot === -1) return 'unit name must contain "."';
  if (dot === name.length - 1) return 'unit name cannot end in "."';
  const type = name.slice(dot + 1);
  if (!UNIT_TYPES.has(type)) return `invalid unit type: ${type}`;
  if (name.includes("@") && !TEMPLATE_UNIT_TYPES.has(type)) return `invalid unit type for template: ${type}`;
  for (const ch of name.slice(0, dot)) {
    if (!VALID_CHAR.test(ch)) return `invalid character ${goQuoteRune(ch)} in unit name`;
  }
  if (name.startsWith("@")) return 'unit name cannot start in "@"';
  return undefined;
}

/** Throws {@link UnitNameError} unless `name` is a valid unit name. */
export function assertValidUnitName(name: string): void {
  const problem = unitNameProblem(name);
  if (problem !== undefined) throw new UnitNameError(name, problem);
}

/** The parts of a unit name. For `web@1.service`: prefix `web`, instance `1`, suffix `.service`. */
export interface UnitNameParts {
  /** The full name. */
  name: string;
  /** Name without its suffix (`web@1`): systemd's `%N`. */
  base: string;
  /** Part before the first `@`, or the whole base when there is none: `%p`. */
  prefix: string;
  /** Part between the first `@` and the suffix, "" when none (also for templates): `%i`. */
  instance: string;
  /** From the last dot on, including it (`.service`); "" when the name has no dot. */
  suffix: string;
  /** True when the name contains `@` (template or instance). */
  hasAt: boolean;
}

/** Splits a unit name into prefix, instance and suffix (no validation). */
export function parseUnitName(name: string): UnitNameParts {
  const dot = name.lastIndexOf(".");
  const base = dot === -1 ? name : name.slice(0, dot);
  const suffix = dot === -1 ? "" : name.slice(dot);
  const at = base.indexOf("@");
  if (at === -1) return { name, base, prefix: base, instance: "", suffix, hasAt: false };
  return { name, base, prefix: base.slice(0, at), instance: base.slice(at + 1), suffix, hasAt: true };
}

/** `web@.service`: a template (cannot be scheduled itself). */
export function isTemplate(name: string): boolean {
  const parts = parseUnitName(name);
  return parts.hasAt && parts.instance === "";
}

/** `web@1.service`: an instance of a template. */
export function isInstance(name: string): boolean {
  const parts = parseUnitName(name);
  return parts.hasAt && parts.instance !== "";
}

/** The instance string of `web@1.service` (`"1"`), or `undefined` for names that are not instances. */
export function instanceOf(name: string): string | undefined {
  const parts = parseUnitName(name);
  return parts.hasAt && parts.instance !== "" ? parts.instance : undefined;
}

/** The template an instance comes from (`web@1.service` → `web@.service`), or `undefined`. */
export function templateOf(name: string): string | undefined {
  const parts = parseUnitName(name);
  return parts.hasAt && parts.instance !== "" ? `${parts.prefix}@${parts.suffix}` : undefined;
}

/**
 * fleetctl's `unitNameMangle`: the basename of the argument, with `.service` appended unless it
 * already ends in one of {@link MANGLE_SUFFIXES} (`foo` → `foo.service`, `foo/bar.socket` →
 * `bar.socket`, `foo.target` → `foo.target.service`, as fleet did).
 */
export function mangleUnitName(arg: string): string {
  const trimmed = arg.replace(/\/+$/, "");
  const base = trimmed.slice(trimmed.lastIndexOf("/") + 1);
  return MANGLE_SUFFIXES.some((suffix) => base.endsWith(suffix)) ? base : `${base}.service`;
}
