/**
 * Finding the units named on the command line. fleet listed every unit for this (minutes with 2,500
 * units); for a few names we ask for each one (`GET /units/<name>`) and list only for many.
 */
import type { ApiUnit } from "../lib/api/types";
import { mangleUnitName, parseRequirements } from "../lib/unit";
import type { CommandContext } from "./context";

/** Up to this many names are fetched one by one (in parallel); more take one listing. */
export const SINGLE_FETCH_LIMIT = 16;

/** The existing units among `args` (mangled names), in argument order; missing ones are skipped. */
export async function findUnits(ctx: CommandContext, args: readonly string[]): Promise<ApiUnit[]> {
  const names = [...new Set(args.map(mangleUnitName))];
  const api = await ctx.api();
  if (names.length <= SINGLE_FETCH_LIMIT) {
    const units = await Promise.all(names.map((n) => api.getUnit(n, ctx.signal)));
    return units.filter((u): u is ApiUnit => u !== undefined);
  }
  const all = new Map((await api.listUnits(ctx.signal)).map((u) => [u.name, u]));
  return names.map((n) => all.get(n)).filter((u): u is ApiUnit => u !== undefined);
}

/** Global units (`Global=true` in `[X-Fleet]`) are run by every matching agent, never waited for. */
export function isGlobalUnit(unit: ApiUnit): boolean {
  return parseRequirements(unit.name, unit.options).requirements.global;
}
