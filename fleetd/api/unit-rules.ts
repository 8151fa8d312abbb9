/**
 * What the API needs to know about unit files: validation of names and options, body identity
 * (same canonical text = same unit) and templates. Implemented with the shared model in `lib/unit/`
 * so fleetd and fleetctl judge units the same way.
 */
import type { ApiUnit, UnitOption } from "../../lib/api/types";
import { buildUnit, findCircularReplaces, isTemplate, parseRequirements, unitHash, unitNameProblem as nameProblem, validateUnit } from "../../lib/unit";

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

/**
 * Message when unit `name` and a unit already in the cluster would replace each other ("circular
 * Replaces between A and B"): the scheduler ignores such a pair, so it is refused here instead of
 * being accepted and silently not honoured. Lists the cluster's units only when the new unit carries
 * Replaces patterns, so ordinary submits cost nothing more.
 */
export async function circularReplacesProblem(name: string, options: readonly UnitOption[], listUnits: () => Promise<ApiUnit[]>): Promise<string | undefined> {
  const replaces = parseRequirements(name, options).requirements.replaces;
  if (replaces.length === 0) return undefined;
  const others = (await listUnits()).map((u) => ({ name: u.name, replaces: parseRequirements(u.name, u.options).requirements.replaces }));
  const error = findCircularReplaces({ name, replaces }, others);
  if (!error) return undefined;
  return `${error.reason}: each would displace the other from its machine forever; remove the matching Replaces pattern from one of them`;
}

/** True when the unit carries `[X-Fleet] Replaces=` patterns (its submit must check for circles). */
export function hasReplaces(name: string, options: readonly UnitOption[]): boolean {
  return parseRequirements(name, options).requirements.replaces.length > 0;
}

/** True when both option lists serialize to the same canonical text (fleet's `MatchUnitFiles`). */
export function sameUnitBody(a: readonly UnitOption[], b: readonly UnitOption[]): boolean {
  return unitHash(a) === unitHash(b);
}

export { isTemplate };
