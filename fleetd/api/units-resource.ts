/** `/units` and `/units/<name>`: fleet's status codes and messages. */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ApiUnit, UnitOption, UnitTargetState } from "../../lib/api/types";
import { UNIT_TARGET_STATES } from "../../lib/api/types";
import type { ApiBackend } from "./backend";
import { errorResponse, HttpError, readJsonBody, refuseUnknownFields, requireJsonContentType, sendEmpty, sendJson } from "./http-io";
import type { ListingSnapshots } from "./paging";
import { isTemplate, unitNameProblem, unitOptionsProblem } from "./unit-rules";

/** What a resource handler gets for one request. */
export interface ResourceContext {
  req: IncomingMessage;
  res: ServerResponse;
  backend: ApiBackend;
  query: URLSearchParams;
  tokenLimit: number;
  /** Pages after the first are cut from the first page's snapshot (`paging.ts`). */
  listings: ListingSnapshots;
  signal: AbortSignal;
}

/** `GET /units`: all units sorted by name, paged. */
export async function listUnits(ctx: ResourceContext): Promise<void> {
  const page = await ctx.listings.page("units", ctx.query, ctx.tokenLimit, async () => {
    const units = await ctx.backend.listUnits(ctx.signal);
    return units.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  });
  sendJson(ctx.res, 200, { units: page.items.map(wireUnit), ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}) });
}

/** Dispatches `/units/<name>` by method. */
export async function unitItem(ctx: ResourceContext, name: string): Promise<void> {
  switch (ctx.req.method) {
    case "GET": {
      const unit = await ctx.backend.getUnit(name, ctx.signal);
      if (!unit) throw new HttpError(404, "unit does not exist");
      sendJson(ctx.res, 200, wireUnit(unit));
      return;
    }
    case "DELETE": {
      if (!(await ctx.backend.destroyUnit(name, ctx.signal))) throw new HttpError(404, "unit does not exist");
      sendEmpty(ctx.res, 204);
      return;
    }
    case "PUT":
      await putUnit(ctx, name);
      return;
    default:
      throw new HttpError(405, `method ${ctx.req.method ?? "?"} not allowed on /units/${name}: use GET, PUT or DELETE`, {
        headers: { Allow: "GET, PUT, DELETE" },
      });
  }
}

/** Omits empty optional fields as fleet's JSON does. */
function wireUnit(u: ApiUnit): ApiUnit {
  const out: ApiUnit = { name: u.name, options: u.options };
  if (u.desiredState) out.desiredState = u.desiredState;
  if (u.currentState) out.currentState = u.currentState;
  if (u.machineID) out.machineID = u.machineID;
  // Extension (fleet's clients ignore unknown fields): why the engine has not placed it.
  if (u.unscheduledReason) out.unscheduledReason = u.unscheduledReason;
  // Extension: a batch unit whose body ran to success.
  if (u.completed) out.completed = u.completed;
  return out;
}

interface PutBody {
  name: string;
  options: UnitOption[];
  desiredState?: UnitTargetState;
}

function field(obj: Record<string, unknown>, name: string): unknown {
  const key = Object.keys(obj).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : obj[key];
}

/** Decodes a PUT body like Go's decoder (case-insensitive keys, unknown keys ignored). */
function decodePutBody(raw: unknown, urlName: string): PutBody {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new HttpError(400, "unable to decode body: expected a JSON object");
  }
  const obj = raw as Record<string, unknown>;
  const name = field(obj, "name") ?? "";
  if (typeof name !== "string") throw new HttpError(400, "unable to decode body: name must be a string");
  const rawOptions = field(obj, "options") ?? [];
  if (!Array.isArray(rawOptions)) throw new HttpError(400, "unable to decode body: options must be an array");
  const options: UnitOption[] = [];
  for (const o of rawOptions as unknown[]) {
    if (o === null || typeof o !== "object") throw new HttpError(400, "unable to decode body: each option must be an object");
    const rec = o as Record<string, unknown>;
    const [section, optName, value] = [field(rec, "section"), field(rec, "name"), field(rec, "value")];
    if (typeof section !== "string" || typeof optName !== "string" || typeof value !== "string") {
      throw new HttpError(400, "unable to decode body: option section, name and value must be strings");
    }
    options.push({ section, name: optName, value });
  }
  const desired = field(obj, "desiredState") ?? "";
  if (desired !== "" && !UNIT_TARGET_STATES.includes(desired as UnitTargetState)) {
    throw new HttpError(400, `unable to decode body: invalid desiredState ${JSON.stringify(desired)}: use inactive, loaded or launched`);
  }
  return { name: name === "" ? urlName : name, options, ...(desired ? { desiredState: desired as UnitTargetState } : {}) };
}

async function putUnit(ctx: ResourceContext, urlName: string): Promise<void> {
  requireJsonContentType(ctx.req);
  const su = decodePutBody(await readJsonBody(ctx.req), urlName);
  if (su.name !== urlName) {
    throw new HttpError(400, `name in URL ${JSON.stringify(urlName)} differs from unit name in request body ${JSON.stringify(su.name)}`);
  }
  sendEmpty(ctx.res, await applyPut(ctx, su));
}

/** Units one `POST /units` may carry. */
export const MAX_UNITS_PER_POST = 10_000;

/**
 * `POST /units` (our extension; fleet answers 405): `{"units":[<PUT body>, …]}`, each item exactly a
 * `PUT /units/<item.name>` with that body, applied concurrently (so their writes share etcd
 * transactions, as concurrent PUTs do) except that items of one name apply in input order, without the HTTP round trip per unit. Answers 200 with
 * `{"results":[{"name","code","message"?}]}` in input order: each code is what that PUT would have
 * answered (201, 204, 400, 409...). A body that is not such a list is a 400 and applies nothing.
 */
export async function putUnits(ctx: ResourceContext): Promise<void> {
  requireJsonContentType(ctx.req);
  const raw = await readJsonBody(ctx.req);
  const list = raw !== null && typeof raw === "object" && !Array.isArray(raw) ? field(raw as Record<string, unknown>, "units") : undefined;
  if (!Array.isArray(list)) throw new HttpError(400, 'unable to decode body: expected {"units":[{"name":…,"options":[…],"desiredState":…},…]}');
  // An extension takes no field it does not know (as /scale and /deployments): `"dryRun": true` was
  // ignored and every unit written.
  refuseUnknownFields(
    Object.keys(raw as Record<string, unknown>).filter((k) => k.toLowerCase() !== "units"),
    'POST /units takes only "units" (the units to write, each as its PUT body with its name); nothing was written',
  );
  if (list.length > MAX_UNITS_PER_POST) throw new HttpError(400, `too many units in one request: ${list.length}; send at most ${MAX_UNITS_PER_POST} per POST`);
  // Items of one name apply in input order (each after the one before it); different names at once.
  const lastOf = new Map<string, Promise<unknown>>();
  const results = await Promise.all(
    (list as unknown[]).map((item, i): Promise<PutResult> => {
      const named = item !== null && typeof item === "object" ? field(item as Record<string, unknown>, "name") : undefined;
      const apply = (): Promise<PutResult> => applyItem(ctx, item, i);
      if (typeof named !== "string") return apply();
      const result = (lastOf.get(named) ?? Promise.resolve()).then(apply);
      lastOf.set(named, result);
      return result;
    }),
  );
  sendJson(ctx.res, 200, { results });
}

/** One item of a `POST /units`: decoded and applied as its own PUT; failures become its result. */
async function applyItem(ctx: ResourceContext, item: unknown, i: number): Promise<PutResult> {
  let name = `#${i}`;
  try {
    const named = item !== null && typeof item === "object" ? field(item as Record<string, unknown>, "name") : undefined;
    if (typeof named !== "string" || named === "") throw new HttpError(400, `unable to decode body: units[${i}] needs a name`);
    name = named;
    return { name, code: await applyPut(ctx, decodePutBody(item, named)) };
  } catch (err) {
    const [code, message] = errorResponse(err);
    return { name, code, message };
  }
}

interface PutResult {
  name: string;
  code: number;
  message?: string;
}

/** Applies one PUT's body; resolves with its success status (201 created, 204 changed or same). */
async function applyPut(ctx: ResourceContext, su: PutBody): Promise<201 | 204> {
  const nameProblem = unitNameProblem(su.name);
  if (nameProblem) throw new HttpError(400, nameProblem);
  if (su.options.length > 0) return putUnitWithOptions(ctx, su);
  // No options: a desired-state change of an existing unit (fleetctl load/start/stop/unload).
  const existing = await ctx.backend.getUnit(su.name, ctx.signal);
  if (!existing) throw new HttpError(409, "unit does not exist and options field empty");
  if (!su.desiredState) throw new HttpError(409, "must provide DesiredState to update existing unit");
  if (isTemplate(su.name) && su.desiredState !== "inactive") {
    throw new HttpError(400, `cannot activate template ${JSON.stringify(su.name)}`);
  }
  await ctx.backend.setUnitDesiredState(su.name, su.desiredState, ctx.signal);
  return 204;
}

/**
 * A PUT with options (fleetctl submit/start, fleet's client), create-first: the create-only write
 * itself tells whether the unit existed (and with which body), so a new unit costs one (batched)
 * transaction, no read. A new body for an existing name replaces it (fleetctl --replace).
 */
async function putUnitWithOptions(ctx: ResourceContext, su: PutBody): Promise<201 | 204> {
  const problem = unitOptionsProblem(su.name, su.options);
  if (problem) throw new HttpError(400, problem);
  if (isTemplate(su.name) && su.desiredState !== undefined && su.desiredState !== "inactive") {
    throw new HttpError(400, `cannot activate template ${JSON.stringify(su.name)}`);
  }
  const outcome = await ctx.backend.createUnit({ name: su.name, options: su.options, desiredState: su.desiredState ?? "inactive" }, ctx.signal);
  if (outcome !== "unchanged") return 201;
  // It exists with this very body: the request only changes the desired state.
  if (!su.desiredState) throw new HttpError(409, "must provide DesiredState to update existing unit");
  await ctx.backend.setUnitDesiredState(su.name, su.desiredState, ctx.signal);
  return 204;
}
