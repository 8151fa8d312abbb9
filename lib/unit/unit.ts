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
  const text = serializeUnitFile(options);
  const { requirements, warnings } = parseRequirements(name, options);
  return { name, options, text, hash: unitHashOfText(text), requirements, warnings };
}

/**
 * Everything fleet checked before accepting a unit: requirements that contradict each other, and
 * options that would not survive a serialize/parse round trip (values with newlines, names with
 * `=`, lines over 2048 bytes...). Returns the first problem, or `undefined`.
 */
export function validateUnit(unit: Unit): UnitValidationError | undefined {
  const requirementsError = validateRequirements(unit.name, unit.requirements);
  if (requirementsError !== undefined) return requirementsError;
  const resourceProblem = parseResources(unit.options).problem;
  if (resourceProblem !== undefined) return new UnitValidationError(unit.name, resourceProblem);
  let reparsed: UnitOption[];
  try {
    reparsed = parseUnitFile(unit.text, { source: unit.name });
  } catch (err) {
    const reason = err instanceof Error && "reason" in err && typeof err.reason === "string" ? err.reason : String(err);
    return new UnitValidationError(unit.name, reason);
  }
  const same =
    reparsed.length === unit.options.length &&
    reparsed.every((o, i) => {
      const original = unit.options[i];
      return original !== undefined && o.section === original.section && o.name === original.name && o.value === original.value;
    });
  if (!same) return new UnitValidationError(unit.name, "unit options do not survive a serialize/parse round trip (check for newlines, leading/trailing spaces or \"=\" in names)");
  return undefined;
}

/** fleet's refusal to activate a template (API 400 text). */
export function templateActivationProblem(name: string): string | undefined {
  return isTemplate(name) ? `cannot activate template ${JSON.stringify(name)}` : undefined;
}
