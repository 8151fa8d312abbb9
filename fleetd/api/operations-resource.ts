/** `/scale/<template>` and `/deployments/<template>` (extension: fleet has neither). */
import type { ApiDeployRequest, ApiScaleRequest } from "../../lib/api/deploy-types";
import type { UnitOption } from "../../lib/api/types";
import { HttpError, readJsonRequest, sendJson } from "./http-io";
import type { OperationsBackend } from "./operations-backend";
import type { ResourceContext } from "./units-resource";

function backendOf(ops: OperationsBackend | undefined): OperationsBackend {
  if (!ops) throw new HttpError(404, "scale and deployments are not served by this fleetd (no operations backend)");
  return ops;
}

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new HttpError(400, `field ${field} must be a string such as "1" or "25%"`);
  return v;
}

/** `POST /scale/<template>` `{"instances": N, "dryRun": bool}`. */
export async function scaleItem(ctx: ResourceContext, ops: OperationsBackend | undefined, template: string): Promise<void> {
  const backend = backendOf(ops);
  if (ctx.req.method !== "POST") throw new HttpError(405, `method ${ctx.req.method ?? "?"} not allowed on /scale/${template}: use POST`, { headers: { Allow: "POST" } });
  const body = await readJsonRequest(ctx.req, ["instances", "dryRun"]);
  if (typeof body.instances !== "number" || !Number.isFinite(body.instances)) throw new HttpError(400, `field instances must be a number (the instance count wanted for ${template})`);
  const req: ApiScaleRequest = { instances: body.instances, dryRun: body.dryRun === true };
  sendJson(ctx.res, 200, await backend.scale(template, req, ctx.signal));
}

/** `GET /deployments/<template>` (history + rollout), `POST` (start or plan a rollout). */
export async function deploymentItem(ctx: ResourceContext, ops: OperationsBackend | undefined, template: string): Promise<void> {
  const backend = backendOf(ops);
  if (ctx.req.method === "GET") {
    const none = { template, revisions: [] };
    sendJson(ctx.res, 200, briefParam(ctx.query) ? ((await backend.getDeploymentSummary(template, ctx.signal)) ?? none) : ((await backend.getDeployment(template, ctx.signal)) ?? none));
    return;
  }
  if (ctx.req.method !== "POST") throw new HttpError(405, `method ${ctx.req.method ?? "?"} not allowed on /deployments/${template}: use GET or POST`, { headers: { Allow: "GET, POST" } });
  const body = await readJsonRequest(ctx.req, ["options", "set", "toRevision", "abort", "maxUnavailable", "maxSurge", "deadlineMs", "dryRun", "requestId"]);
  const req: ApiDeployRequest = { dryRun: body.dryRun === true };
  if (body.options !== undefined) {
    if (!Array.isArray(body.options) || !body.options.every((o) => typeof o === "object" && o !== null && typeof (o as UnitOption).section === "string" && typeof (o as UnitOption).name === "string" && typeof (o as UnitOption).value === "string")) {
      throw new HttpError(400, "field options must be an array of {section, name, value} strings");
    }
    req.options = body.options as UnitOption[];
  }
  if (body.set !== undefined) {
    // An array passed the object test and its indexes became keys: ["image=b"] was refused as `invalid --set key "0"`.
    const set: unknown = body.set;
    const kind = Array.isArray(set) ? "a list" : set === null ? "null" : typeof set !== "object" ? `a ${typeof set}` : Object.values(set).some((v) => typeof v !== "string") ? "an object with values that are not strings" : undefined;
    if (kind !== undefined) throw new HttpError(400, `field set must be an object of strings (KEY: VALUE) such as {"image":"registry.cluster:5000/web:2"}, not ${kind}`);
    req.set = body.set as Record<string, string>;
  }
  if (body.toRevision !== undefined) {
    if (typeof body.toRevision !== "number" || !Number.isInteger(body.toRevision) || body.toRevision < 1) throw new HttpError(400, "field toRevision must be a revision number (1, 2, …)");
    req.toRevision = body.toRevision;
  }
  if (body.abort !== undefined) {
    if (typeof body.abort !== "boolean") throw new HttpError(400, "field abort must be true (stop the running rollout and roll it back) or false");
    if (body.abort) req.abort = true;
  }
  if (body.deadlineMs !== undefined) {
    if (typeof body.deadlineMs !== "number") throw new HttpError(400, "field deadlineMs must be a number of milliseconds");
    req.deadlineMs = body.deadlineMs;
  }
  if (body.requestId !== undefined) {
    if (typeof body.requestId !== "string" || !/^[A-Za-z0-9._:-]{1,128}$/.test(body.requestId)) {
      throw new HttpError(400, "field requestId must be 1 to 128 of the characters A-Z a-z 0-9 . _ : - (e.g. a UUID)");
    }
    req.requestId = body.requestId;
  }
  const mu = optionalString(body, "maxUnavailable");
  const ms = optionalString(body, "maxSurge");
  if (mu !== undefined) req.maxUnavailable = mu;
  if (ms !== undefined) req.maxSurge = ms;
  const plan = await backend.deploy(template, req, ctx.signal);
  // A replay (same requestId as the current rollout) or a stop created no rollout: 200.
  sendJson(ctx.res, plan.dryRun || plan.replayed === true || plan.aborted === true ? 200 : 201, plan);
}

/** `?brief=true`: the summary (`DeploymentSummary`). */
function briefParam(query: URLSearchParams): boolean {
  const v = query.get("brief");
  if (v === null || v === "false") return false;
  if (v === "true" || v === "") return true;
  throw new HttpError(400, `invalid brief=${JSON.stringify(v)}: use brief=true (the history and rollout without per-instance lists and texts) or leave it out`);
}
