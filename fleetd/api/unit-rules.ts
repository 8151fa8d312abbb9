/**
 * What the API needs to know about unit files: validation of names and options, and templates. Implemented with the shared model in `lib/unit/`
 * so fleetd and fleetctl judge units the same way.
 */
import type { UnitOption } from "../../lib/api/types";
import { buildUnit, isTemplate, unitNameProblem as nameProblem, validateUnit } from "../../lib/unit";

/** Message of the first problem with the name (fleet's text), or undefined when valid. */
export function unitNameProblem(name: string): string | undefined {
  return nameProblem(name);
}

/**
 * Message (fleet's text) of the first problem with the options of unit `name`: contradictory
 * `[X-Fleet]` requirements, or options that do not survive a serialize/parse round trip.
 */
export function unitOptionsProblem(name: string, options: readonly UnitOption[]): string | undefined {
  try {
    return validateUnit(buildUnit(name, options))?.reason;
  } catch (err) {
    return (err as { reason?: string }).reason ?? (err as Error).message;
  }
}

export { isTemplate };
