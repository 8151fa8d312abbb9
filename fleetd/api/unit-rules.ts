/**
 * What the API needs to know about unit files: validation of names and options, body identity
 * (same canonical text = same unit) and templates. Implemented with the shared model in `lib/unit/`
 * so fleetd and fleetctl judge units the same way.
 */
import type { UnitOption } from "../../lib/api/types";
import { parseUnitFile, serializeUnitFile, unitHash } from "../../lib/unit/unit-file";
import { isTemplate, unitNameProblem as nameProblem } from "../../lib/unit/unit-name";

/** Message of the first problem with the name (fleet's text), or undefined when valid. */
export function unitNameProblem(name: string): string | undefined {
  return nameProblem(name);
}

/**
 * Message of the first problem with the options of unit `name`, or undefined when valid. Like fleet,
 * the options must survive a serialize/parse round trip (no line over 2048 bytes, no newline in a value).
 */
export function unitOptionsProblem(name: string, options: readonly UnitOption[]): string | undefined {
  const text = serializeUnitFile(options);
  let reparsed: UnitOption[];
  try {
    reparsed = parseUnitFile(text, { source: name });
  } catch (err) {
    return (err as { reason?: string }).reason ?? (err as Error).message;
  }
  if (serializeUnitFile(reparsed) !== text) {
    return "unit options do not survive a serialize/parse round trip (newlines, leading/trailing blanks or comment characters in a name or value)";
  }
  return undefined;
}

/** True when both option lists serialize to the same canonical text (fleet's `MatchUnitFiles`). */
export function sameUnitBody(a: readonly UnitOption[], b: readonly UnitOption[]): boolean {
  return unitHash(a) === unitHash(b);
}

export { isTemplate };
