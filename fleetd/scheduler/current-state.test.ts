import { describe, expect, it } from "vitest";
import { currentState } from "./current-state";

describe("currentState", () => {
  it.each([
    ["unscheduled", undefined, [], "inactive"],
    ["unscheduled with a stale state elsewhere", undefined, [{ machineId: "m1", launched: true }], "inactive"],
    ["scheduled, no state from the target yet", "m1", [], "inactive"],
    ["scheduled, state only from the old machine", "m2", [{ machineId: "m1", launched: true }], "inactive"],
    ["scheduled, target reports loaded", "m1", [{ machineId: "m1", launched: false }], "loaded"],
    ["scheduled, target reports launched", "m1", [{ machineId: "m1", launched: true }], "launched"],
    ["moving: old launched, new loaded", "m2", [{ machineId: "m1", launched: true }, { machineId: "m2", launched: false }], "loaded"],
  ] as const)("%s → %s", (_label, machineId, states, expected) => {
    expect(currentState({ machineId, states })).toBe(expected);
  });
});
