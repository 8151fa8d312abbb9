/**
 * `/why/<unit>` and `/rebalance` (extension: fleet has neither), over fleetd's `SchedulerOperations`,
 * whose typed errors are translated once, here.
 */
import type { ApiRebalancePlan, ApiRebalanceRequest, ApiWhy } from "../../lib/api/scheduler-types";
import { SchedulerInputError, SchedulerNotFoundError, type SchedulerOperations } from "../engine/scheduler-operations";
import { EtcdUnavailableError } from "../registry/errors";
import { BackendInvalidError, BackendNotFoundError, BackendUnavailableError } from "./backend";
import { HttpError, readJsonRequest, sendJson } from "./http-io";
import type { ResourceContext } from "./units-resource";

export interface SchedulerBackend {
  why(unit: string, signal?: AbortSignal): Promise<ApiWhy>;
  rebalance(req: ApiRebalanceRequest, signal?: AbortSignal): Promise<ApiRebalancePlan>;
}

async function translated<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof SchedulerNotFoundError) throw new BackendNotFoundError(err.message, { cause: err });
    if (err instanceof SchedulerInputError) throw new BackendInvalidError(err.message, { cause: err });
    if (err instanceof EtcdUnavailableError) throw new BackendUnavailableError(err.message, { cause: err });
    throw err;
  }
}

export function schedulerBackend(ops: Pick<SchedulerOperations, "why" | "rebalance">): SchedulerBackend {
  return {
    why: (u, s) => translated(() => ops.why(u, s)),
    rebalance: (r, s) => translated(() => ops.rebalance(r, s)),
  };
}

function backendOf(backend: SchedulerBackend | undefined): SchedulerBackend {
  if (!backend) throw new HttpError(404, "why and rebalance are not served by this fleetd (no scheduler backend)");
  return backend;
}

/** `GET /why/<unit>`. */
export async function whyItem(ctx: ResourceContext, backend: SchedulerBackend | undefined, unit: string): Promise<void> {
  const b = backendOf(backend);
  if (ctx.req.method !== "GET") throw new HttpError(405, `method ${ctx.req.method ?? "?"} not allowed on /why/${unit}: use GET`, { headers: { Allow: "GET" } });
  sendJson(ctx.res, 200, await b.why(unit, ctx.signal));
}

/** `POST /rebalance` `{"maxMoves": N, "dryRun": bool, "deadlineMs": ms}`. */
export async function rebalance(ctx: ResourceContext, backend: SchedulerBackend | undefined): Promise<void> {
  const b = backendOf(backend);
  if (ctx.req.method !== "POST") throw new HttpError(405, `method ${ctx.req.method ?? "?"} not allowed on /rebalance: use POST`, { headers: { Allow: "POST" } });
  const { maxMoves, dryRun, deadlineMs } = await readJsonRequest(ctx.req, ["maxMoves", "dryRun", "deadlineMs"]);
  if (maxMoves !== undefined && typeof maxMoves !== "number") throw new HttpError(400, "field maxMoves must be a number (the most units to move)");
  if (deadlineMs !== undefined && typeof deadlineMs !== "number") throw new HttpError(400, "field deadlineMs must be a number of milliseconds");
  const req: ApiRebalanceRequest = { dryRun: dryRun === true, ...(maxMoves !== undefined ? { maxMoves } : {}), ...(deadlineMs !== undefined ? { deadlineMs } : {}) };
  sendJson(ctx.res, 200, await b.rebalance(req, ctx.signal));
}
