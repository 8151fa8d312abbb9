import { describe, expect, it } from "vitest";
import type { UnitRecord } from "../registry/keys";
import { globalRecord } from "./deploy-controller";
import type { RolloutRecord } from "./records";

const unit: UnitRecord = { name: "g.service", hash: "new", desiredState: "launched", global: true, machineHashes: { m1: "old", m2: "old", m3: "old" } };
/** The fields globalRecord reads; the rest of a rollout does not matter to it. */
const rollout = (over: Partial<RolloutRecord> = {}): RolloutRecord => ({ phase: "rolling", fromHash: "old", toHash: "new", ...over }) as RolloutRecord;

describe("a global unit's record through its rollout", () => {
  it("lets the machines a step moves run the unit's hash, and keeps the others", () => {
    expect(globalRecord(unit, [{ instance: "m1", toHash: "new" }], rollout())).toEqual({ ...unit, machineHashes: { m2: "old", m3: "old" } });
    // The last one: nothing is kept, the field goes.
    const last = globalRecord({ ...unit, machineHashes: { m3: "old" } }, [{ instance: "m3", toHash: "new" }], rollout());
    expect(last).toEqual({ name: "g.service", hash: "new", desiredState: "launched", global: true });
  });

  it("keeps machines rolled back on their previous hash, then puts the unit back on it when the rollout ends rolled back", () => {
    const back = globalRecord({ ...unit, machineHashes: { m3: "old" } }, [{ instance: "m1", toHash: "old" }], rollout({ phase: "rolling-back" }));
    expect(back.machineHashes).toEqual({ m1: "old", m3: "old" });
    const done = globalRecord(back, [], rollout({ phase: "done", outcome: "rolled-back" }));
    expect(done).toEqual({ name: "g.service", hash: "old", desiredState: "launched", global: true });
    expect(globalRecord(unit, [], rollout({ phase: "done", outcome: "succeeded" }))).toEqual({ name: "g.service", hash: "new", desiredState: "launched", global: true });
  });
});
