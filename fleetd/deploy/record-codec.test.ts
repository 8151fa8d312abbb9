import { describe, expect, it } from "vitest";
import { summarizeDeployment, type DeploymentRecord, type RolloutRecord } from "../../lib/api/deploy-types";
import { createHash } from "node:crypto";
import { decodeDeployment, decodeDeploymentSummary, encodeDeployment, type StoredGlobalRollout, type StoredRollout } from "./record-codec";

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

  describe("a global unit's rollout (machines as instances)", () => {
    /** 32-hex machine IDs, as /etc/machine-id gives them, in no numeric order. */
    const machines = Array.from({ length: 10_000 }, (_, i) => createHash("md5").update(String(i)).digest("hex"));
    const storedGlobal = (json: string): StoredGlobalRollout => (JSON.parse(json) as { rollout: StoredGlobalRollout }).rollout;

    it("lists 10,000 machines once and their previous bodies and pending times as runs of indices: well under etcd's request limit", () => {
      const rec = record("agent-global.service", {
        instances: machines,
        previous: Object.fromEntries(machines.map((m, i) => [m, i < 9_000 ? A : B])),
        // --max-unavailable 100%: every machine pending, since one of two steps.
        pending: Object.fromEntries([...machines.slice(0, 5_000).map((m): [string, number] => [m, 1_000]), ...machines.slice(5_000).map((m): [string, number] => [m, 2_000])]),
      });
      const json = encodeDeployment(rec);
      expect(storedGlobal(json).machines).toEqual(machines);
      expect(storedGlobal(json).previousRuns).toEqual({ [A]: [[0, 8_999]], [B]: [[9_000, 9_999]] });
      expect(storedGlobal(json).pendingRuns).toEqual([[1_000, [[0, 4_999]]], [2_000, [[5_000, 9_999]]]]);
      expect(json.length).toBeLessThan(10_000 * 35 + 2_000);
      // Machine by machine it was 1.53 MB: at etcd's request limit (1.5 MiB, with the step's other writes in the same transaction).
      expect(JSON.stringify(rec).length).toBeGreaterThan(1_500_000);
      expect(decodeDeployment("k", json)).toEqual(rec);
      expect(decodeDeploymentSummary("k", json)).toEqual(summarizeDeployment(rec));
    });

    it("keeps a machine that previous or pending name outside the instances as its ID, and reads the older machine-by-machine form", () => {
      const rec = record("agent-global.service", { instances: machines.slice(0, 3), previous: { [machines[0]!]: A, [machines[2]!]: B, [machines[7]!]: A }, pending: { [machines[1]!]: 4, [machines[8]!]: 4 } });
      const json = encodeDeployment(rec);
      expect(storedGlobal(json).previousRuns).toEqual({ [A]: [0, machines[7]], [B]: [2] });
      expect(storedGlobal(json).pendingRuns).toEqual([[4, [1, machines[8]]]]);
      expect(decodeDeployment("k", json)).toEqual(rec);
      expect(decodeDeployment("k", JSON.stringify(rec))).toEqual(rec);
      expect(decodeDeploymentSummary("k", JSON.stringify(rec))).toEqual(summarizeDeployment(rec));
    });

    it("names the key of a record whose index runs point past its machines", () => {
      const damaged = JSON.parse(encodeDeployment(record("agent-global.service", { instances: machines.slice(0, 2), previous: { [machines[0]!]: A } }))) as { rollout: StoredGlobalRollout };
      damaged.rollout.previousRuns = { [A]: [[0, 5]] };
      expect(() => decodeDeployment("/fleet/deployments/agent-global.service", JSON.stringify(damaged))).toThrow(/^Cannot read etcd key \/fleet\/deployments\/agent-global\.service: machine index 2 of agent-global\.service out of its 2 machines/);
    });
  });
});
