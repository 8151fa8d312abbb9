import { describe, expect, it } from "vitest";
import type { ApiDeployPlan, ApiDeployRequest, DeploymentRecord, RolloutRecord } from "../../lib/api/deploy-types";
import { ApiError, ApiUnreachableError } from "../../lib/api/client";
import { CliError } from "../cli-error";
import type { CommandContext, FleetApi } from "../context";
import { startRollout } from "./start-rollout";

const T = "web@.service";
const rollout = (revision: number, requestId: string | undefined, phase: RolloutRecord["phase"] = "rolling"): RolloutRecord => ({
  revision,
  toHash: "b".repeat(40),
  fromHash: "a".repeat(40),
  maxUnavailableSpec: "1",
  maxSurgeSpec: "0",
  maxUnavailable: 1,
  maxSurge: 0,
  deadlineMs: 120_000,
  startedAt: "2026-12-03T00:00:00.000Z",
  phase,
  instances: ["web@1.service"],
  previous: { "web@1.service": "a".repeat(40) },
  bodies: {},
  pending: {},
  surge: [],
  maxUnavailableSeen: 0,
  message: "rolling: 0/1 instances updated",
  ...(requestId !== undefined ? { requestId } : {}),
});
const record = (r?: RolloutRecord): DeploymentRecord => ({
  template: T,
  revisions: [
    { revision: 1, hash: "a".repeat(40), text: "[Service]\nExecStart=/bin/a\n", createdAt: "x", change: "initial", outcome: "succeeded" },
    ...(r ? [{ revision: r.revision, hash: r.toHash, text: "[Service]\nExecStart=/bin/b\n", createdAt: "x", change: "deploy" }] : []),
  ],
  ...(r ? { rollout: r } : {}),
});
const plan = (revision: number): ApiDeployPlan => ({ template: T, dryRun: false, revision, fromRevision: 1, hash: "b".repeat(40), change: "deploy", instances: ["web@1.service"], unchanged: [], maxUnavailable: 1, maxSurge: 0, deadlineMs: 120_000, diff: [] });
const ETCD_500 = new ApiError(500, "internal error: Cannot record the rollout of web@.service to revision 2: etcd rejected the request (context deadline exceeded)", "POST", "deployments/web%40.service");

/** A fake API whose deploy and getDeployment answers are scripted per call (a function gets the request). */
function harness(deploys: ((req: ApiDeployRequest) => ApiDeployPlan | Error)[], gets: ((ids: string[]) => DeploymentRecord | Error)[]) {
  const calls: string[] = [];
  const ids: string[] = [];
  const notes: string[] = [];
  const api = {
    deploy: (_t: string, req: ApiDeployRequest) => {
      calls.push("POST");
      ids.push(req.requestId!);
      const r = deploys.shift()!(req);
      return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
    },
    getDeployment: () => {
      calls.push("GET");
      const r = gets.shift()!(ids);
      return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
    },
  } as unknown as FleetApi;
  const ctx = { api: () => Promise.resolve(api), err: (l: string) => notes.push(l), signal: new AbortController().signal } as unknown as CommandContext;
  return { ctx, calls, ids, notes };
}
const fast = { retryDelay: () => 1 };

describe("startRollout", () => {
  it("answer lost but recorded: follows the rollout with its requestId, without a second POST", async () => {
    const h = harness([() => ETCD_500], [(ids) => record(rollout(2, ids[0]))]);
    const out = await startRollout(h.ctx, T, { set: { image: "x" } }, "deploy", fast);
    expect(out.plan).toMatchObject({ revision: 2, instances: ["web@1.service"], diff: ["- ExecStart=/bin/a", "+ ExecStart=/bin/b"] });
    expect(out.lostAnswer).toContain("HTTP 500");
    expect(h.calls).toEqual(["POST", "GET"]);
    expect(h.ids[0]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("not recorded: sends the same requestId again; a 409 from the first write landing late is looked up, not reported", async () => {
    const h = harness(
      [() => new ApiUnreachableError("socket hang up"), () => new ApiError(409, "cannot deploy web@.service: the template or its rollout changed while starting; run the command again", "POST", "x")],
      [() => record(), (ids) => record(rollout(2, ids[0]))],
    );
    const out = await startRollout(h.ctx, T, { set: { image: "x" } }, "deploy", fast);
    expect(out.plan.revision).toBe(2);
    expect(h.calls).toEqual(["POST", "GET", "POST", "GET"]);
    expect(h.ids[0]).toBe(h.ids[1]);
  });

  it("a replayed answer to the retry is used as is", async () => {
    const h = harness([() => ETCD_500, () => ({ ...plan(2), replayed: true })], [() => new ApiError(503, "fleet server unable to communicate with etcd", "GET", "x"), () => record()]);
    const out = await startRollout(h.ctx, T, {}, "rollback", fast);
    expect(out.plan.revision).toBe(2);
    expect(h.calls).toEqual(["POST", "GET", "GET", "POST"]);
  });

  it("another request's rollout running: a clear error, no retry", async () => {
    const h = harness([() => ETCD_500], [() => record(rollout(3, "someone-else"))]);
    const err = await startRollout(h.ctx, T, {}, "deploy", fast).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as Error).message).toMatch(/^Error starting the deploy of web@\.service: its answer was lost \(HTTP 500: .*\) and the rollout of revision 3 \(started \S+\) is running: another request started it/);
    expect(h.calls).toEqual(["POST", "GET"]);
  });

  it("fate never learnt: says it may be rolling", async () => {
    const down = () => new ApiUnreachableError("connect ECONNREFUSED");
    const h = harness([() => ETCD_500], [down, down]);
    const err = await startRollout(h.ctx, T, {}, "deploy", { ...fast, attempts: 2 }).catch((e: unknown) => e);
    expect((err as Error).message).toContain("after 2 attempts fleetctl could not find out whether fleetd recorded it (last: connect ECONNREFUSED). It may be rolling: see fleetctl history web@.service");
  });

  it("final errors (4xx, a 500 not about etcd) are reported at once", async () => {
    const h = harness([() => new ApiError(500, "internal error: boom", "POST", "x")], []);
    await expect(startRollout(h.ctx, T, {}, "deploy", fast)).rejects.toThrow("Error starting the deploy of web@.service: internal error: boom (HTTP 500)");
    expect(h.calls).toEqual(["POST"]);
  });
});
