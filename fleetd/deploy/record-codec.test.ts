import { describe, expect, it } from "vitest";
import { summarizeDeployment, type DeploymentRecord, type RolloutRecord } from "../../lib/api/deploy-types";
import { decodeDeployment, decodeDeploymentSummary, encodeDeployment, type StoredRollout } from "./record-codec";

const A = "a".repeat(40);
const B = "b".repeat(40);

function record(template: string, rollout: Partial<RolloutRecord>): DeploymentRecord {
  return {
    template,
    revisions: [{ revision: 1, hash: A, text: "[Service]\nExecStart=/bin/true\n", createdAt: "2026-12-07T00:00:00.000Z", change: "initial" }],
    rollout: {
      revision: 2,
      toHash: B,
      fromHash: A,
      maxUnavailableSpec: "1",
      maxSurgeSpec: "0",
      maxUnavailable: 1,
      maxSurge: 0,
      deadlineMs: 120_000,
      startedAt: "2026-12-07T00:00:00.000Z",
      phase: "rolling",
      instances: [],
      previous: {},
      bodies: { [A]: "[Service]\nExecStart=/bin/true\n" },
      pending: {},
      surge: [],
      maxUnavailableSeen: 0,
      message: "",
      ...rollout,
    },
  };
}

const stored = (json: string): StoredRollout => (JSON.parse(json) as { rollout: StoredRollout }).rollout;

describe("deployment record codec", () => {
  it("stores 10,000 numbered instances from one body as runs, and reads them back as they were", () => {
    const names = Array.from({ length: 10_000 }, (_, i) => `payments-reconciliation-worker-eu-west-1@${i + 1}.service`);
    const rec = record("payments-reconciliation-worker-eu-west-1@.service", {
      instances: names,
      previous: Object.fromEntries(names.map((n) => [n, A])),
      pending: Object.fromEntries([...names.slice(0, 100).map((n): [string, number] => [n, 1_000]), ...names.slice(100, 200).map((n): [string, number] => [n, 2_000])]),
    });
    const json = encodeDeployment(rec);
    expect(stored(json).instanceRuns).toEqual([[1, 10_000]]);
    expect(stored(json).previousRuns).toEqual({ [A]: [[1, 10_000]] });
    expect(stored(json).pendingRuns).toEqual([[1_000, [[1, 100]]], [2_000, [[101, 200]]]]);
    expect(json.length).toBeLessThan(1_000);
    // Name by name it was 1.5 MB, more than etcd accepts in one request.
    expect(JSON.stringify(rec).length).toBeGreaterThan(1_500_000);
    expect(decodeDeployment("k", json)).toEqual(rec);
  });

  it("summarizes a stored record (runs or the older name-by-name form) as the expanded record summarizes", () => {
    const names = Array.from({ length: 10_000 }, (_, i) => `web@${i + 1}.service`);
    const rec = record("web@.service", { instances: names, previous: Object.fromEntries(names.map((n) => [n, A])), pending: { "web@3.service": 7 } });
    expect(decodeDeploymentSummary("k", encodeDeployment(rec))).toEqual(summarizeDeployment(rec));
    expect(decodeDeploymentSummary("k", JSON.stringify(rec))).toEqual(summarizeDeployment(rec));
    const idle: DeploymentRecord = { template: "web@.service", revisions: rec.revisions };
    expect(decodeDeploymentSummary("k", encodeDeployment(idle))).toEqual(summarizeDeployment(idle));
  });

  it("keeps order, gaps, names that are not canonical numbers, surge instances and several previous bodies", () => {
    const instances = ["web@1.service", "web@2.service", "web@4.service", "web@01.service", "web@blue.service", "web@7.service", "web@8.service", "web@9.service"];
    const rec = record("web@.service", {
      instances,
      previous: { "web@1.service": A, "web@2.service": B, "web@4.service": A, "web@01.service": A, "web@blue.service": B, "web@7.service": A, "web@8.service": A, "web@9.service": A },
      pending: { "web@surge-2-1.service": 5, "web@7.service": 5, "web@8.service": 6 },
      surge: ["web@surge-2-1.service"],
    });
    const json = encodeDeployment(rec);
    expect(stored(json).instanceRuns).toEqual([[1, 2], 4, "web@01.service", "web@blue.service", [7, 9]]);
    expect(stored(json).previousRuns).toEqual({ [A]: [1, 4, "web@01.service", [7, 9]], [B]: [2, "web@blue.service"] });
    expect(stored(json).pendingRuns).toEqual([[5, ["web@surge-2-1.service", 7]], [6, [8]]]);
    const back = decodeDeployment("k", json);
    expect(back).toEqual(rec);
    expect(back.rollout!.instances).toEqual(instances);
  });

  it("does not take another template's instances or other unit types for numbers", () => {
    const rec = record("web@.service", { instances: ["web@1.socket", "webx@2.service", "web@.service", "web@3.service"], previous: {}, pending: {} });
    expect(stored(encodeDeployment(rec)).instanceRuns).toEqual(["web@1.socket", "webx@2.service", "web@.service", 3]);
    expect(decodeDeployment("k", encodeDeployment(rec))).toEqual(rec);
  });

  it("reads records stored name by name (before runs) and records without a rollout as they are", () => {
    const old = record("web@.service", { instances: ["web@1.service"], previous: { "web@1.service": A }, pending: { "web@1.service": 3 } });
    expect(decodeDeployment("k", JSON.stringify(old))).toEqual(old);
    const none: DeploymentRecord = { template: "web@.service", revisions: old.revisions };
    expect(encodeDeployment(none)).toBe(JSON.stringify(none));
    expect(decodeDeployment("k", encodeDeployment(none))).toEqual(none);
  });

  it("names the key of a record that is not JSON, or whose runs are damaged", () => {
    expect(() => decodeDeployment("/fleet/deployments/web@.service", "{")).toThrow(/\/fleet\/deployments\/web@\.service/);
    const damaged = JSON.parse(encodeDeployment(record("web@.service", { instances: ["web@1.service"] }))) as { rollout: StoredRollout };
    damaged.rollout.instanceRuns = [[3, 1]];
    expect(() => decodeDeployment("/fleet/deployments/web@.service", JSON.stringify(damaged))).toThrow(/^Cannot read etcd key \/fleet\/deployments\/web@\.service: invalid run of instances of web@\.service: \[3,1\]/);
  });
});
