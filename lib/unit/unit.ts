/**
 * `Unit`: one unit as both fleetd and fleetctl use it: name, options, canonical text, hash and
 * parsed `[X-Fleet]` requirements, built once by {@link buildUnit}.
 */
import type { UnitOption } from "../api/types";
import { UnitValidationError } from "./errors";
import { parseRequirements, validateRequirements, type Requirements } from "./requirements";
import { parseResources } from "./resources";
import { parseUnitFile, serializeUnitFile, unitHashOfText } from "./unit-file";
import { assertValidUnitName, isTemplate } from "./unit-name";

/** A unit value. Treat as immutable: units change only by replacement (new hash). */
export interface Unit {
  readonly name: string;
  readonly options: readonly UnitOption[];
  /** fleet's canonical text of `options` (what goes to disk and to `fleetctl cat`). */
  readonly text: string;
  /** SHA-1 hex of `text`. */
  readonly hash: string;
  readonly requirements: Requirements;
  /** Non-fatal notes, e.g. unknown `[X-Fleet]` keys. */
  readonly warnings: readonly string[];
}

/**
 * Builds a {@link Unit} from unit-file text or from options. Validates the name; parses the text
 * (throwing {@link UnitFileParseError} with a line number). Does NOT reject contradictory
 * requirements: call {@link validateUnit} where new units are accepted (API, fleetctl), so the
 * engine can still load whatever is already stored.
 * @throws {UnitNameError} for an invalid name.
 */
export function buildUnit(name: string, source: string | readonly UnitOption[]): Unit {
  assertValidUnitName(name);
  const options = typeof source === "string" ? parseUnitFile(source, { source: name }) : source.map((o) => ({ ...o }));
  const { text, hash } = bodyFacts(options);
  const { requirements, warnings } = parseRequirements(name, options);
  return { name, options, text, hash, requirements, warnings };
}

/** What depends only on a unit's options, not on its name: its text, hash and option problems. */
interface BodyFacts {
  text: string;
  hash: string;
  /** The resources or round-trip problem of these options (fleet's text), if any. */
  problem: string | undefined;
}

/**
 * Body facts by content (the options as JSON). The instances of a template share one body
 * (`fleetctl start web@{1..1000}.service`, fleet's client PUTting each), so serializing, hashing
 * and re-parsing it once serves them all: that was a quarter of the API's CPU per PUT. Bounded;
 * bodies over 64 KiB are not kept.
 */
const bodyMemo = new Map<string, BodyFacts>();
const BODY_MEMO_ENTRIES = 512;
const BODY_MEMO_MAX_KEY = 64 * 1024;

function bodyFacts(options: readonly UnitOption[]): BodyFacts {
  const key = JSON.stringify(options.map((o) => [o.section, o.name, o.value]));
  const held = bodyMemo.get(key);
  if (held !== undefined) return held;
  const text = serializeUnitFile(options);
  const facts: BodyFacts = { text, hash: unitHashOfText(text), problem: optionsProblem(options, text) };
  if (key.length <= BODY_MEMO_MAX_KEY) {
    if (bodyMemo.size >= BODY_MEMO_ENTRIES) bodyMemo.delete(bodyMemo.keys().next().value!);
    bodyMemo.set(key, facts);
  }
  return facts;
}

/**
 * Largest unit file accepted (canonical text, bytes). A unit's text travels in one etcd request
 * (its body; each schedule entry, JSON-escaped, can be twice as long), and etcd refuses requests
 * over 1.5 MiB by default (`--max-request-bytes`).
 */
export const MAX_UNIT_TEXT_BYTES = 512 * 1024;

function optionsProblem(options: readonly UnitOption[], text: string): string | undefined {
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_UNIT_TEXT_BYTES) return `unit file too large: ${bytes} bytes; at most ${MAX_UNIT_TEXT_BYTES} bytes fit in etcd's requests (split it, or move scripts and data into files the unit reads)`;
  const resourceProblem = parseResources(options).problem;
  if (resourceProblem !== undefined) return resourceProblem;
  let reparsed: UnitOption[];
  try {
    reparsed = parseUnitFile(text);
  } catch (err) {
    return err instanceof Error && "reason" in err && typeof err.reason === "string" ? err.reason : String(err);
  }
  const same =
    reparsed.length === options.length &&
    reparsed.every((o, i) => {
      const original = options[i];
      return original !== undefined && o.section === original.section && o.name === original.name && o.value === original.value;
    });
  if (!same) return "unit options do not survive a serialize/parse round trip (check for newlines, leading/trailing spaces or \"=\" in names)";
  return undefined;
}

/**
 * Everything fleet checked before accepting a unit: requirements that contradict each other, and
 * options that would not survive a serialize/parse round trip (values with newlines, names with
 * `=`, lines over 2048 bytes...). Returns the first problem, or `undefined`.
 */
export function validateUnit(unit: Unit): UnitValidationError | undefined {
  const requirementsError = validateRequirements(unit.name, unit.requirements);
  if (requirementsError !== undefined) return requirementsError;
  const problem = bodyFacts(unit.options).problem;
  return problem === undefined ? undefined : new UnitValidationError(unit.name, problem);
}

/** fleet's refusal to activate a template (API 400 text). */
export function templateActivationProblem(name: string): string | undefined {
  return isTemplate(name) ? `cannot activate template ${JSON.stringify(name)}` : undefined;
}
