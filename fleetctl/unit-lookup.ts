/**
 * Finding the units named on the command line. fleet listed every unit for this (minutes with 2,500
 * units); for a few names we ask for each one (`GET /units/<name>`) and list only for many.
 */
import type { ApiUnit } from "../lib/api/types";
import { isTemplate, mangleUnitName, parseRequirements, templateOf } from "../lib/unit";
import { apiFailure } from "./api-errors";
import { CliError } from "./cli-error";
import type { CommandContext } from "./context";

/** Up to this many names are fetched one by one (in parallel); more take one listing. */
export const SINGLE_FETCH_LIMIT = 16;

/** "unit a.service", "units a.service, b.service", "40 units": the object of a failed lookup. */
function unitsNamed(names: readonly string[]): string {
  if (names.length === 1) return `unit ${names[0]!}`;
  return names.length <= 3 ? `units ${names.join(", ")}` : `${names.length} units`;
}

/**
 * The units named (exact names) that exist, by name: a few one by one, many with one listing. A failed
 * request says which units it was for (it was printed as "Error: GET /fleet/v1/units/… failed").
 */
export async function lookupUnits(ctx: CommandContext, names: readonly string[]): Promise<Map<string, ApiUnit>> {
  const wanted = [...new Set(names)];
  try {
    const api = await ctx.api();
    if (wanted.length <= SINGLE_FETCH_LIMIT) {
      const units = await Promise.all(wanted.map((n) => api.getUnit(n, ctx.signal)));
      return new Map(units.filter((u): u is ApiUnit => u !== undefined).map((u) => [u.name, u]));
    }
    const set = new Set(wanted);
    return new Map((await api.listUnits(ctx.signal)).filter((u) => set.has(u.name)).map((u) => [u.name, u]));
  } catch (err) {
    throw apiFailure(`Error retrieving ${unitsNamed(wanted)} from fleet API`, err);
  }
}

/** Every unit in the cluster; a failed request is fleet's "Error retrieving list of units from fleet API". */
export async function listAllUnits(ctx: CommandContext): Promise<ApiUnit[]> {
  try {
    return await (await ctx.api()).listUnits(ctx.signal);
  } catch (err) {
    throw apiFailure("Error retrieving list of units from fleet API", err);
  }
}

/** The existing units among `args` (mangled names), in argument order; missing ones are skipped. */
export async function findUnits(ctx: CommandContext, args: readonly string[]): Promise<ApiUnit[]> {
  const names = [...new Set(args.map(mangleUnitName))];
  const found = await lookupUnits(ctx, names);
  return names.map((n) => found.get(n)).filter((u): u is ApiUnit => u !== undefined);
}

/**
 * The registered units named by `args`, for commands that act only on existing units (stop, unload,
 * destroy). A template argument (`web@.service`) stands for every registered instance of it, as for
 * `start`; `destroy` also removes the template itself when it is registered. No arguments prints
 * "No units given" and returns undefined (exit 0, as fleet); none of the units registered is an error
 * (exit 1; fleet printed "Units not found in registry" and exited 0, hiding typos from scripts).
 */
export async function existingUnitsOrNothing(ctx: CommandContext, args: readonly string[], opts: { includeTemplates?: boolean } = {}): Promise<ApiUnit[] | undefined> {
  if (args.length === 0) {
    ctx.err("No units given");
    return undefined;
  }
  const templates = new Set(args.map(mangleUnitName).filter(isTemplate));
  const plain = args.filter((a) => !isTemplate(mangleUnitName(a)));
  const units = plain.length > 0 ? await findUnits(ctx, plain) : [];
  if (templates.size > 0) {
    const have = new Set(units.map((u) => u.name));
    for (const u of await listAllUnits(ctx)) {
      const ofTemplate = templates.has(templateOf(u.name) ?? "") || (opts.includeTemplates === true && templates.has(u.name));
      if (ofTemplate && !have.has(u.name)) {
        units.push(u);
        have.add(u.name);
      }
    }
  }
  if (units.length === 0) {
    const what = templates.size > 0 ? ` (no instances of ${[...templates].join(", ")} either)` : "";
    throw new CliError(`Units not found in registry${what}: check the names with "fleetctl list-unit-files"`);
  }
  return units;
}

/**
 * Concurrent per-unit API calls of one command that has no bulk form (destroy; unit writes go
 * through `ApiClient.putUnits`). fleetd packs concurrent requests into shared etcd transactions
 * (fleetd/REGISTRY.md); 32 stays far below fleetd's limits.
 */
export const WRITE_CONCURRENCY = 32;

/** Global units (`Global=true` in `[X-Fleet]`) are run by every matching agent, never waited for. */
export function isGlobalUnit(unit: ApiUnit): boolean {
  return parseRequirements(unit.name, unit.options).requirements.global;
}
