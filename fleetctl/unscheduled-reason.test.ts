import { describe, expect, it } from "vitest";
import type { ApiUnit } from "../lib/api/types";
import { describeUnscheduled, isUnscheduled, remedy } from "./unscheduled-reason";

const base: ApiUnit = { name: "x.service", options: [], desiredState: "launched", currentState: "inactive" };

describe("how fleetctl explains an unscheduled unit", () => {
  it("is about units that want a machine and have none, never global or inactive ones", () => {
    expect(isUnscheduled(base, false)).toBe(true);
    expect(isUnscheduled(base, true)).toBe(false);
    expect(isUnscheduled({ ...base, desiredState: "inactive" }, false)).toBe(false);
    expect(isUnscheduled({ ...base, machineID: "m1" }, false)).toBe(false);
  });

  it("says when the engine has recorded no reason yet, and what to do", () => {
    expect(describeUnscheduled(base)).toBe(
      'Unit x.service is not scheduled on any machine, and the engine has recorded no reason yet.\nRetry in a few seconds; if no reason appears, check that fleetd runs with its engine enabled on some machine ("fleetctl list-machines").',
    );
  });

  it("lists the machines shown, counts the others, and picks the remedy of the rule that excluded most", () => {
    const unit: ApiUnit = {
      ...base,
      unscheduledReason: {
        summary: "no machine can run it (60 machines): 1 excluded by MachineMetadata, 59 by Conflicts",
        excludedBy: { MachineMetadata: 1, Conflicts: 59 },
        machines: [{ machineID: "0123456789abcdef0123456789abcdef", rule: "Conflicts", detail: 'unit conflicts with "y.service" on this machine' }],
        moreMachines: 59,
        since: "2026-01-01T00:00:00.000Z",
      },
    };
    expect(describeUnscheduled(unit, true).split("\n")).toEqual([
      "Unit x.service is not scheduled on any machine: no machine can run it (60 machines): 1 excluded by MachineMetadata, 59 by Conflicts",
      '  0123456789abcdef0123456789abcdef: Conflicts: unit conflicts with "y.service" on this machine',
      "  ... and 59 more machine(s)",
      'Add a machine, or stop the units it conflicts with, or change the unit\'s [X-Fleet] section and run "fleetctl start --replace x.service".',
    ]);
    const none = { summary: "no machines are registered", excludedBy: {}, machines: [], moreMachines: 0, since: "" };
    expect(remedy("x.service", none)).toBe('Start fleetd on at least one machine ("fleetctl list-machines" shows none).');
    expect(remedy("x.service", { ...none, excludedBy: { MachineOf: 2 } })).toMatch(/^Get the unit it must run beside \(MachineOf\) scheduled first/);
    // Resources counts like the other rules: the remedy is about room, not about metadata.
    expect(remedy("x.service", { ...none, excludedBy: { MachineMetadata: 1, Resources: 2 } })).toMatch(/^Add a machine with room for it, stop units to free CPU or memory/);
  });
});
