/** `/state` (paged, filters `machineID` and `unitName`) and `/state/<name>`. */
import type { ApiUnitState } from "../../lib/api/types";
import type { UnitStateFilter } from "./backend";
import { HttpError, sendJson } from "./http-io";
import type { ResourceContext } from "./units-resource";

function byNameThenMachine(a: ApiUnitState, b: ApiUnitState): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  return a.machineID < b.machineID ? -1 : a.machineID > b.machineID ? 1 : 0;
}

function requireGet(ctx: ResourceContext, what: string): void {
  if (ctx.req.method !== "GET") {
    throw new HttpError(405, `method ${ctx.req.method ?? "?"} not allowed on ${what}: use GET`, { headers: { Allow: "GET" } });
  }
}

/** `GET /state`: the unit-name filter reads only that unit's states (fleetctl's single-unit fast path). */
export async function listStates(ctx: ResourceContext): Promise<void> {
  requireGet(ctx, "/state");
  const filter: UnitStateFilter = {};
  const machineID = ctx.query.get("machineID");
  const unitName = ctx.query.get("unitName");
  if (machineID) filter.machineID = machineID;
  if (unitName) filter.unitName = unitName;
  const page = await ctx.listings.page(`state\n${filter.machineID ?? ""}\n${filter.unitName ?? ""}`, ctx.query, ctx.tokenLimit, async () => {
    const states = await ctx.backend.listUnitStates(filter, ctx.signal);
    const matching = states.filter(
      (s) => (!filter.machineID || s.machineID === filter.machineID) && (!filter.unitName || s.name === filter.unitName),
    );
    return matching.sort(byNameThenMachine);
  });
  sendJson(ctx.res, 200, { states: page.items, ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}) });
}

/** `GET /state/<name>`: the first state published for the unit. */
export async function stateItem(ctx: ResourceContext, name: string): Promise<void> {
  requireGet(ctx, `/state/${name}`);
  const states = (await ctx.backend.listUnitStates({ unitName: name }, ctx.signal)).filter((s) => s.name === name);
  states.sort(byNameThenMachine);
  const first = states[0];
  if (!first) throw new HttpError(404, "unit state does not exist");
  sendJson(ctx.res, 200, first);
}
