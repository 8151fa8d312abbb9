import { describe, expect, it } from "vitest";
import type { UnitTargetState } from "../../lib/api/types";
import { buildUnit } from "../../lib/unit/index";
import { SchedulerModel } from "./scheduler-model";
import { schedule } from "./schedule";
import type { Decision, SchedulerMachine, SchedulerUnit } from "./types";

function unit(name: string, xfleet = "", desiredState: UnitTargetState = "launched"): SchedulerUnit {
  const text = `[Service]\nExecStart=/bin/true\n${xfleet === "" ? "" : `\n[X-Fleet]\n${xfleet}\n`}`;
  return { ...buildUnit(name, text), desiredState };
}

function machine(id: string, metadata: Record<string, string> = {}): SchedulerMachine {
  return { id, metadata };
}

/** Decisions as compact strings: "+a.service@m1" / "-a.service@m1". */
function brief(decisions: readonly Decision[]): string[] {
  return decisions.map((d) => `${d.kind === "schedule" ? "+" : "-"}${d.unit}@${d.machineId}`);
}

function placements(model: SchedulerModel, names: readonly string[]): Record<string, string | undefined> {
  return Object.fromEntries(names.map((n) => [n, model.placementOf(n)]));
}

describe("least-loaded placement", () => {
  it("spreads a batch across machines, ties broken by machine ID ascending", () => {
    const r = schedule({
      machines: [machine("m3"), machine("m1"), machine("m2")],
      units: ["a", "b", "c", "d", "e"].map((n) => unit(`${n}.service`)),
    });
    expect(brief(r.decisions)).toEqual(["+a.service@m1", "+b.service@m2", "+c.service@m3", "+d.service@m1", "+e.service@m2"]);
    expect(r.unscheduled).toEqual([]);
    expect(r.decisions[0]?.reason).toBe("least-loaded eligible machine (load 0)");
  });

  it("counts units already placed, and global units, in a machine's load", () => {
    const r = schedule({
      machines: [machine("m1"), machine("m2", { role: "edge" }), machine("m3")],
      units: [unit("old.service"), unit("g.service", "Global=true\nMachineMetadata=role=edge"), unit("new1.service"), unit("new2.service")],
      placements: { "old.service": "m1" },
    });
    // m1 has old, m2 has the global unit: new1 goes to m3, then new2 to m1 (load 1, lowest ID).
    expect(brief(r.decisions)).toEqual(["+g.service@m2", "+new1.service@m3", "+new2.service@m1"]);
  });

  it("does not rebalance settled units when a machine joins", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("m1"));
    model.setUnit(unit("a.service"));
    model.setUnit(unit("b.service"));
    expect(brief(model.reconcile().decisions)).toEqual(["+a.service@m1", "+b.service@m1"]);
    model.setMachine(machine("m2"));
    expect(model.reconcile().decisions).toEqual([]);
    model.setUnit(unit("c.service"));
    expect(brief(model.reconcile().decisions)).toEqual(["+c.service@m2"]);
  });

  it("leaves inactive units unscheduled and unschedules units set to inactive", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("m1"));
    model.setUnit(unit("a.service", "", "inactive"));
    model.setUnit(unit("b.service", "", "loaded"));
    expect(brief(model.reconcile().decisions)).toEqual(["+b.service@m1"]);
    model.setUnit(unit("b.service", "", "inactive"));
    const r = model.reconcile();
    expect(r.decisions).toEqual([{ kind: "unschedule", unit: "b.service", machineId: "m1", global: false, reason: "target state inactive" }]);
    expect(r.unscheduled).toEqual([]);
    expect(model.pendingUnits()).toEqual([]);
  });

  it("unschedules a destroyed unit", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("m1"));
    model.setUnit(unit("a.service"));
    model.reconcile();
    model.removeUnit("a.service");
    expect(model.reconcile().decisions).toEqual([{ kind: "unschedule", unit: "a.service", machineId: "m1", global: false, reason: "unit destroyed" }]);
    expect(model.unitsOn("m1")).toEqual([]);
  });
});

describe("machine loss", () => {
  it("unschedules the units of a machine that went away and reschedules them elsewhere", () => {
    const model = new SchedulerModel();
    for (const id of ["m1", "m2", "m3"]) model.setMachine(machine(id));
    for (const n of ["a", "b", "c", "d"]) model.setUnit(unit(`${n}.service`));
    model.reconcile();
    expect(model.unitsOn("m1")).toEqual(["a.service", "d.service"]);
    model.removeMachine("m1");
    const r = model.reconcile();
    expect(brief(r.decisions)).toEqual(["-a.service@m1", "-d.service@m1", "+a.service@m2", "+d.service@m3"]);
    expect(r.decisions[0]?.reason).toBe("target Machine(m1) went away");
  });

  it("keeps the placements when the machine comes back before the next pass", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("m1"));
    model.setMachine(machine("m2"));
    model.setUnit(unit("a.service"));
    model.reconcile();
    model.removeMachine("m1");
    model.setMachine(machine("m1"));
    expect(model.reconcile().decisions).toEqual([]);
    expect(model.placementOf("a.service")).toBe("m1");
  });

  it("does not place a completed batch unit again when its machine goes away, nor a completed unplaced one", () => {
    const model = new SchedulerModel();
    for (const id of ["m1", "m2"]) model.setMachine(machine(id));
    model.setUnit(unit("job.service"));
    model.setUnit(unit("other.service"));
    model.reconcile();
    expect(model.placementOf("job.service")).toBe("m1");
    model.setUnit({ ...unit("job.service"), completed: true });
    // Completion alone changes nothing: it stays where it ran.
    expect(model.reconcile().decisions).toEqual([]);
    model.removeMachine("m1");
    const r = model.reconcile();
    expect(brief(r.decisions)).toEqual(["-job.service@m1"]);
    expect(r.unscheduled).toEqual([]);
    expect(model.placementOf("job.service")).toBeUndefined();
    // A new body (no longer completed) runs again.
    model.setUnit(unit("job.service", "Conflicts=nothing.service"));
    expect(brief(model.reconcile().decisions)).toEqual(["+job.service@m2"]);
  });

  it("treats a placement read from etcd on an unknown machine as gone", () => {
    const r = schedule({ machines: [machine("m2")], units: [unit("a.service")], placements: { "a.service": "m9" } });
    expect(brief(r.decisions)).toEqual(["-a.service@m9", "+a.service@m2"]);
  });

  it("explains units left without any machine", () => {
    const r = schedule({ machines: [], units: [unit("a.service")] });
    expect(r.unscheduled).toEqual([{ unit: "a.service", reason: "no machines are registered", excludedBy: {} }]);
  });
});

describe("MachineID", () => {
  const id = "0123456789abcdef0123456789abcdef";
  it.each([[id], [id.slice(0, 8)]])("places on the machine named by %s", (wanted) => {
    const r = schedule({ machines: [machine("ffffffffffffffffffffffffffffffff"), machine(id)], units: [unit("a.service", `MachineID=${wanted}`)] });
    expect(brief(r.decisions)).toEqual([`+a.service@${id}`]);
    expect(r.decisions[0]?.reason).toBe("required by MachineID (load 0)");
  });

  it("stays unscheduled while the machine is absent, and says why for each machine", () => {
    const r = schedule({ machines: [machine("m1"), machine("m2")], units: [unit("a.service", "MachineID=m9")] });
    expect(r.decisions).toEqual([]);
    expect(r.unscheduled).toEqual([{ unit: "a.service", reason: "no machine can run it (2 machines): 2 excluded by MachineID", excludedBy: { MachineID: 2 } }]);
    expect(r.model.explain("a.service")).toEqual([
      { machineId: "m1", rule: "MachineID", detail: "unit requires machine m9" },
      { machineId: "m2", rule: "MachineID", detail: "unit requires machine m9" },
    ]);
    r.model.setMachine(machine("m9"));
    expect(brief(r.model.reconcile().decisions)).toEqual(["+a.service@m9"]);
  });
});

describe("MachineMetadata", () => {
  const machines = [
    machine("m1", { region: "us-east", disk: "ssd" }),
    machine("m2", { region: "us-west", disk: "ssd" }),
    machine("m3", { region: "us-east", disk: "hdd" }),
    machine("m4", {}),
  ];

  it("ORs values of one key and ANDs different keys", () => {
    const r = schedule({
      machines,
      units: [
        unit("east-ssd.service", 'MachineMetadata="region=us-east" "disk=ssd"'),
        unit("any-region-hdd.service", "MachineMetadata=region=us-east\nMachineMetadata=region=us-west\nMachineMetadata=disk=hdd"),
        unit("west.service", "MachineMetadata=region=us-west"),
      ],
    });
    expect(brief(r.decisions)).toEqual(["+any-region-hdd.service@m3", "+east-ssd.service@m1", "+west.service@m2"]);
  });

  it("explains which machines lack which metadata", () => {
    const r = schedule({ machines, units: [unit("x.service", 'MachineMetadata="region=eu" "disk=ssd"')] });
    expect(r.unscheduled[0]?.reason).toBe("no machine can run it (4 machines): 4 excluded by MachineMetadata");
    expect(r.model.explain("x.service")).toEqual([
      { machineId: "m1", rule: "MachineMetadata", detail: "unit requires region=eu, machine has region=us-east" },
      { machineId: "m2", rule: "MachineMetadata", detail: "unit requires region=eu, machine has region=us-west" },
      { machineId: "m3", rule: "MachineMetadata", detail: "unit requires region=eu, machine has region=us-east" },
      { machineId: "m4", rule: "MachineMetadata", detail: 'unit requires region=eu, machine has no "region"' },
    ]);
  });

  it("moves a unit when its machine's metadata stops matching", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("m1", { role: "web" }));
    model.setMachine(machine("m2", { role: "db" }));
    model.setUnit(unit("w.service", "MachineMetadata=role=web|db"));
    model.setUnit(unit("web.service", "MachineMetadata=role=web"));
    expect(brief(model.reconcile().decisions)).toEqual(["+web.service@m1"]);
    expect(model.pendingUnits()).toEqual(["w.service"]);
    model.setMachine(machine("m1", { role: "db" }));
    model.setMachine(machine("m2", { role: "web" }));
    const r = model.reconcile();
    expect(brief(r.decisions)).toEqual(["-web.service@m1", "+web.service@m2"]);
    expect(r.decisions[0]?.reason).toBe("MachineMetadata: unit requires role=web, machine has role=db");
  });
});

describe("Conflicts", () => {
  it("keeps conflicting units apart, checked in both directions, with globs", () => {
    const r = schedule({
      machines: [machine("m1"), machine("m2")],
      units: [unit("a.service", "Conflicts=b*.service"), unit("b1.service"), unit("c.service"), unit("z.service", "Conflicts=a.service")],
    });
    // a→m1; b1 avoids m1 (a's pattern) → m2; c → m1 (tie, lowest ID); z avoids m1 (its own pattern) → m2.
    expect(brief(r.decisions)).toEqual(["+a.service@m1", "+b1.service@m2", "+c.service@m1", "+z.service@m2"]);
  });

  it("spreads instances of a template that conflicts with itself, and explains the leftovers", () => {
    const units = [1, 2, 3].map((i) => unit(`web@${i}.service`, "Conflicts=web@*.service"));
    const r = schedule({ machines: [machine("m1"), machine("m2")], units });
    expect(brief(r.decisions)).toEqual(["+web@1.service@m1", "+web@2.service@m2"]);
    expect(r.unscheduled).toEqual([{ unit: "web@3.service", reason: "no machine can run it (2 machines): 2 excluded by Conflicts", excludedBy: { Conflicts: 2 } }]);
    expect(r.model.explain("web@3.service")).toEqual([
      { machineId: "m1", rule: "Conflicts", detail: 'unit conflicts with "web@1.service" on this machine (pattern "web@*.service")' },
      { machineId: "m2", rule: "Conflicts", detail: 'unit conflicts with "web@2.service" on this machine (pattern "web@*.service")' },
    ]);
    // Adding a machine lets the waiting instance in on the next pass.
    r.model.setMachine(machine("m3"));
    expect(brief(r.model.reconcile().decisions)).toEqual(["+web@3.service@m3"]);
  });

  it("refuses surplus self-conflicting instances, and places them when a machine joins or one leaves", () => {
    const model = new SchedulerModel();
    for (const id of ["m1", "m2"]) model.setMachine(machine(id));
    for (let i = 1; i <= 4; i++) model.setUnit(unit(`web@${i}.service`, "Conflicts=web@*.service"));
    const first = model.reconcile();
    expect(brief(first.decisions)).toEqual(["+web@1.service@m1", "+web@2.service@m2"]);
    expect(first.unscheduled.map((u) => [u.unit, u.excludedBy])).toEqual([
      ["web@3.service", { Conflicts: 2 }],
      ["web@4.service", { Conflicts: 2 }],
    ]);
    expect(model.reconcile().unscheduled).toHaveLength(2); // still reported on later passes
    model.setMachine(machine("m3"));
    expect(brief(model.reconcile().decisions)).toEqual(["+web@3.service@m3"]);
    model.removeUnit("web@1.service");
    expect(brief(model.reconcile().decisions)).toEqual(["-web@1.service@m1", "+web@4.service@m1"]);
    expect(model.reconcile().unscheduled).toEqual([]);
  });

  it("moves one of two conflicting units found on the same machine", () => {
    const r = schedule({
      machines: [machine("m1"), machine("m2")],
      units: [unit("a.service", "Conflicts=b.service"), unit("b.service")],
      placements: { "a.service": "m1", "b.service": "m1" },
    });
    expect(brief(r.decisions)).toEqual(["-a.service@m1", "+a.service@m2"]);
    expect(r.decisions[0]?.reason).toBe('Conflicts: unit conflicts with "b.service" on this machine');
  });

  it("lets a global unit block conflicting units on its machines", () => {
    const r = schedule({
      machines: [machine("m1", { role: "lb" }), machine("m2")],
      units: [unit("lb.service", "Global=true\nMachineMetadata=role=lb\nConflicts=app*.service"), unit("app1.service"), unit("app2.service")],
    });
    expect(brief(r.decisions)).toEqual(["+lb.service@m1", "+app1.service@m2", "+app2.service@m2"]);
  });
});

describe("MachineOf", () => {
  it("places followers on their target's machine, whatever the order of names", () => {
    const r = schedule({
      machines: [machine("m1"), machine("m2")],
      units: [unit("a-follower.service", "MachineOf=z-target.service"), unit("filler.service"), unit("z-target.service")],
    });
    expect(brief(r.decisions)).toEqual(["+filler.service@m1", "+z-target.service@m2", "+a-follower.service@m2"]);
    expect(r.decisions[2]?.reason).toBe('MachineOf "z-target.service" (load 1)');
  });

  it("keeps a follower unscheduled while its target is not scheduled", () => {
    const r = schedule({
      machines: [machine("m1")],
      units: [unit("f.service", "MachineOf=t.service"), unit("t.service", "", "inactive")],
    });
    expect(r.decisions).toEqual([]);
    expect(r.unscheduled).toEqual([{ unit: "f.service", reason: 'MachineOf target "t.service" is not scheduled', excludedBy: { MachineOf: 1 } }]);
    expect(r.model.explain("f.service")).toEqual([{ machineId: "m1", rule: "MachineOf", detail: 'unit must run beside "t.service", which is not scheduled' }]);
  });

  it("moves followers with their target when the target's machine goes", () => {
    const model = new SchedulerModel();
    for (const id of ["m1", "m2"]) model.setMachine(machine(id));
    model.setUnit(unit("t.service"));
    model.setUnit(unit("f.service", "MachineOf=t.service"));
    model.setUnit(unit("other.service"));
    model.reconcile();
    // f waits for t; other (first by name after f) takes m1; t takes m2; f follows to m2.
    expect(placements(model, ["t.service", "f.service", "other.service"])).toEqual({ "t.service": "m2", "f.service": "m2", "other.service": "m1" });
    model.removeMachine("m2");
    const r = model.reconcile();
    expect(brief(r.decisions)).toEqual(["-f.service@m2", "-t.service@m2", "+t.service@m1", "+f.service@m1"]);
  });

  it("unschedules followers when their target is unscheduled", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("m1"));
    model.setUnit(unit("t.service"));
    model.setUnit(unit("f.service", "MachineOf=t.service"));
    model.reconcile();
    model.setUnit(unit("t.service", "", "inactive"));
    const r = model.reconcile();
    expect(brief(r.decisions)).toEqual(["-t.service@m1", "-f.service@m1"]);
    expect(r.decisions[1]?.reason).toBe('MachineOf: unit must run beside "t.service", which is not scheduled');
    expect(r.unscheduled.map((u) => u.unit)).toEqual(["f.service"]);
  });

  it("explains a bidirectional MachineOf instead of waiting silently", () => {
    const r = schedule({ machines: [machine("m1")], units: [unit("a.service", "MachineOf=b.service"), unit("b.service", "MachineOf=a.service")] });
    expect(r.decisions).toEqual([]);
    expect(r.unscheduled.map((u) => `${u.unit}: ${u.reason}`)).toEqual([
      'a.service: MachineOf target "b.service" needs this unit too (MachineOf must not be bidirectional)',
      'b.service: MachineOf target "a.service" needs this unit too (MachineOf must not be bidirectional)',
    ]);
  });

  it("counts a global unit present on the machine as the target", () => {
    const r = schedule({
      machines: [machine("m1"), machine("m2", { role: "x" })],
      units: [unit("g.service", "Global=true\nMachineMetadata=role=x"), unit("f.service", "MachineOf=g.service")],
    });
    expect(brief(r.decisions)).toEqual(["+g.service@m2", "+f.service@m2"]);
  });
});

describe("Global", () => {
  it("runs on every matching machine without a conflict, and follows machines joining and leaving", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("m1", { role: "web" }));
    model.setMachine(machine("m2", { role: "web" }));
    model.setMachine(machine("m3", { role: "db" }));
    model.setUnit(unit("blocker.service", "MachineID=m2"));
    expect(brief(model.reconcile().decisions)).toEqual(["+blocker.service@m2"]);
    // Placed units keep their machine: the global unit does not go where it conflicts with one.
    model.setUnit(unit("g.service", "Global=true\nMachineMetadata=role=web\nConflicts=blocker.service"));
    const first = model.reconcile();
    expect(brief(first.decisions)).toEqual(["+g.service@m1"]);
    expect(model.globalMachines("g.service")).toEqual(["m1"]);
    expect(first.decisions[0]?.global).toBe(true);

    model.setMachine(machine("m4", { role: "web" }));
    expect(brief(model.reconcile().decisions)).toEqual(["+g.service@m4"]);
    model.setMachine(machine("m1", { role: "db" }));
    const changed = model.reconcile();
    expect(brief(changed.decisions)).toEqual(["-g.service@m1"]);
    expect(changed.decisions[0]?.reason).toBe("MachineMetadata: unit requires role=web, machine has role=db");
    model.removeMachine("m4");
    expect(model.reconcile().decisions).toEqual([{ kind: "unschedule", unit: "g.service", machineId: "m4", global: true, reason: "target Machine(m4) went away" }]);
    expect(model.globalMachines("g.service")).toEqual([]);
    // The blocker leaves m2: the global unit may go there now.
    model.setUnit(unit("blocker.service", "MachineID=m2", "inactive"));
    expect(brief(model.reconcile().decisions)).toEqual(["-blocker.service@m2", "+g.service@m2"]);
  });

  it("is removed everywhere when set inactive or destroyed", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("m1"));
    model.setMachine(machine("m2"));
    model.setUnit(unit("g.service", "Global=yes"));
    expect(brief(model.reconcile().decisions)).toEqual(["+g.service@m1", "+g.service@m2"]);
    model.setUnit(unit("g.service", "Global=yes", "inactive"));
    const r = model.reconcile();
    expect(brief(r.decisions)).toEqual(["-g.service@m1", "-g.service@m2"]);
    expect(r.decisions[0]?.reason).toBe("target state inactive");
    model.setUnit(unit("g.service", "Global=yes"));
    model.reconcile();
    model.removeUnit("g.service");
    expect(brief(model.reconcile().decisions)).toEqual(["-g.service@m1", "-g.service@m2"]);
  });

  it("between two conflicting global units, the first by name wins a machine", () => {
    const r = schedule({
      machines: [machine("m1")],
      units: [unit("b.service", "Global=true\nConflicts=a.service"), unit("a.service", "Global=true")],
    });
    expect(brief(r.decisions)).toEqual(["+a.service@m1"]);
  });
});

describe("Replaces", () => {
  it("lets the replacer take the replaced unit's machine and moves the replaced unit away", () => {
    const r = schedule({
      machines: [machine("m1"), machine("m2"), machine("m3")],
      units: [unit("old.service"), unit("other.service"), unit("new.service", "Replaces=old.service")],
      placements: { "old.service": "m1", "other.service": "m2" },
    });
    // new goes to m3 (least loaded, nothing to replace there): no move needed.
    expect(brief(r.decisions)).toEqual(["+new.service@m3"]);
  });

  it("moves the replaced unit to the least-loaded other machine when both meet", () => {
    const r = schedule({
      machines: [machine("m1"), machine("m2"), machine("m3")],
      units: [unit("old.service"), unit("x.service"), unit("y.service"), unit("new.service", "Replaces=old*.service")],
      placements: { "old.service": "m1", "x.service": "m2", "y.service": "m3" },
    });
    // All loads are 1: new takes m1 (lowest ID), old is pushed to m2 (least loaded, lowest ID, not m1).
    expect(brief(r.decisions)).toEqual(["+new.service@m1", "-old.service@m1", "+old.service@m2"]);
    expect(r.decisions[1]?.reason).toBe('replaced by "new.service"');
  });

  it("keeps a replaced unit away from machines running its replacer", () => {
    const r = schedule({
      machines: [machine("m1")],
      units: [unit("new.service", "Replaces=old.service"), unit("old.service")],
      placements: { "new.service": "m1" },
    });
    expect(r.decisions).toEqual([]);
    expect(r.model.explain("old.service")).toEqual([{ machineId: "m1", rule: "Replaces", detail: '"new.service" on this machine replaces it (pattern "old.service")' }]);
  });

  const pair = (): SchedulerUnit[] => [unit("a.service", "Replaces=b.service"), unit("b.service", "Replaces=a*.service")];
  const circularDetail = (partner: string, on: string): string =>
    `it and "${partner}" (on machine ${on}) replace each other (circular Replaces): only one of the two runs, and "${partner}" was scheduled first`;

  it("runs one unit of a circular Replaces pair: the one placed stays, the other stays unscheduled and says why", () => {
    const r = schedule({ machines: [machine("m1"), machine("m2")], units: pair(), placements: { "b.service": "m2" } });
    expect(r.decisions).toEqual([]);
    expect(r.unscheduled).toEqual([{ unit: "a.service", reason: "no machine can run it (2 machines): 2 excluded by Replaces", excludedBy: { Replaces: 2 } }]);
    expect(r.model.explain("a.service")).toEqual([
      { machineId: "m1", rule: "Replaces", detail: circularDetail("b.service", "m2") },
      { machineId: "m2", rule: "Replaces", detail: circularDetail("b.service", "m2") },
    ]);
  });

  it("places only the first of a circular pair submitted together", () => {
    const r = schedule({ machines: [machine("m1"), machine("m2")], units: pair() });
    expect(brief(r.decisions)).toEqual(["+a.service@m1"]);
    expect(r.unscheduled.map((u) => u.unit)).toEqual(["b.service"]);
  });

  it("unschedules one of a circular pair found running together (the name sorting first stays)", () => {
    const r = schedule({ machines: [machine("m1"), machine("m2")], units: pair(), placements: { "a.service": "m1", "b.service": "m2" } });
    expect(brief(r.decisions)).toEqual(["-b.service@m2"]);
    expect(r.decisions[0]?.reason).toBe(`Replaces: ${circularDetail("a.service", "m1")}`);
    expect(r.model.placementOf("a.service")).toBe("m1");
  });

  it("closing the circle by changing a running unit leaves only one of the two running", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("m1"));
    model.setMachine(machine("m2"));
    model.setUnit(unit("a.service", "Replaces=b.service"));
    model.setUnit(unit("c.service"));
    expect(brief(model.reconcile().decisions)).toEqual(["+a.service@m1", "+c.service@m2"]);
    // A unit named b arrives on m2 and does not replace a: both run.
    model.setUnit(unit("b.service"));
    expect(brief(model.reconcile().decisions)).toEqual(["+b.service@m2"]);
    model.setUnit(unit("b.service", "Replaces=a.service"));
    expect(brief(model.reconcile().decisions)).toEqual(["-b.service@m2"]);
    expect(model.placementOf("a.service")).toBe("m1");
  });

  it("schedules the waiting unit of a circular pair once the running one is gone or inactive", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("m1"));
    const [a, b] = pair();
    model.setUnit(b!);
    expect(brief(model.reconcile().decisions)).toEqual(["+b.service@m1"]);
    model.setUnit(a!);
    expect(model.reconcile().decisions).toEqual([]);
    model.setUnit({ ...b!, desiredState: "inactive" });
    expect(brief(model.reconcile().decisions)).toEqual(["-b.service@m1", "+a.service@m1"]);
    model.setUnit(b!);
    expect(model.reconcile().decisions).toEqual([]);
    model.removeUnit("a.service");
    expect(brief(model.reconcile().decisions)).toEqual(["-a.service@m1", "+b.service@m1"]);
  });
});

describe("schedule()", () => {
  it("accepts placements as a Map or a plain object and does not modify them", () => {
    const units = [unit("a.service"), unit("g.service", "Global=true")];
    const asMap = new Map([["a.service", "m2"]]);
    const fromMap = schedule({ machines: [machine("m1"), machine("m2")], units, placements: asMap, globalPlacements: new Map([["g.service", ["m1"]]]) });
    const fromRecord = schedule({ machines: [machine("m1"), machine("m2")], units, placements: { "a.service": "m2" }, globalPlacements: { "g.service": ["m1"] } });
    expect(brief(fromMap.decisions)).toEqual(["+g.service@m2"]);
    expect(brief(fromRecord.decisions)).toEqual(["+g.service@m2"]);
    expect([...asMap]).toEqual([["a.service", "m2"]]);
    expect(fromMap.model.globalMachines("g.service")).toEqual(["m1", "m2"]);
  });
});

describe("incremental passes", () => {
  it("returns nothing when nothing changed", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("m1"));
    model.setUnit(unit("a.service"));
    expect(model.reconcile().decisions).toHaveLength(1);
    expect(model.reconcile().decisions).toEqual([]);
    model.setUnit(unit("a.service")); // same inputs
    model.setMachine(machine("m1")); // same metadata
    expect(model.reconcile().decisions).toEqual([]);
  });

  it("re-reads the truth after the engine corrects a placement it failed to write", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("m1"));
    model.setMachine(machine("m2"));
    model.setUnit(unit("a.service"));
    expect(brief(model.reconcile().decisions)).toEqual(["+a.service@m1"]);
    model.setPlacement("a.service", undefined); // the transaction failed
    expect(brief(model.reconcile().decisions)).toEqual(["+a.service@m1"]);
  });

  it("re-checks everything after markAllDirty", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("m1"));
    model.setUnit(unit("a.service", "MachineID=m1"));
    model.reconcile();
    model.markAllDirty();
    expect(model.reconcile().decisions).toEqual([]);
  });
});

describe("units of a held machine (the engine's grace for a machine that may come back)", () => {
  it("stay placed and cost no decision while held; the first pass that no longer holds the machine moves them", () => {
    const model = new SchedulerModel();
    for (const m of ["m1", "m2"]) model.setMachine(machine(m));
    for (const n of ["a", "b", "c", "d"]) model.setUnit(unit(`${n}.service`));
    model.reconcile();
    const onM1 = ["a.service", "b.service", "c.service", "d.service"].filter((n) => model.placementOf(n) === "m1");
    expect(onM1).toEqual(["a.service", "c.service"]);
    model.removeMachine("m1");
    for (let i = 0; i < 3; i++) {
      const held = model.reconcile({ holding: (id) => id === "m1" });
      expect(held.decisions).toEqual([]);
      expect(placements(model, onM1)).toEqual({ "a.service": "m1", "c.service": "m1" });
    }
    const moved = model.reconcile({ holding: () => false });
    expect(brief(moved.decisions)).toEqual(["-a.service@m1", "-c.service@m1", "+a.service@m2", "+c.service@m2"]);
  });

  it("a held machine that comes back keeps its units without any decision", () => {
    const model = new SchedulerModel();
    model.setMachine(machine("m1"));
    model.setUnit(unit("a.service"));
    model.reconcile();
    model.removeMachine("m1");
    expect(model.reconcile({ holding: () => true }).decisions).toEqual([]);
    model.setMachine(machine("m1"));
    expect(model.reconcile().decisions).toEqual([]);
    expect(model.placementOf("a.service")).toBe("m1");
  });
});
