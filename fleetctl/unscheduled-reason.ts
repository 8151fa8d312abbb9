/**
 * How fleetctl tells an operator that a unit has no machine, and why: the engine's record
 * (`unscheduledReason` on a unit, an extension of the fleet API) turned into the message grammar we
 * use everywhere: what, which unit, why, what to do.
 */
import { EXCLUSION_RULES, type ApiUnit, type ApiUnscheduledReason } from "../lib/api/types";
import { machineIdLegend } from "./legend";

/** True when the unit wants a machine (desired loaded/launched), has none, and is not global. */
export function isUnscheduled(unit: ApiUnit, global: boolean): boolean {
  return !global && unit.desiredState !== undefined && unit.desiredState !== "inactive" && !unit.machineID;
}

/** The rule that excluded the most machines (ties: check order), or undefined when none did. */
function mainRule(reason: ApiUnscheduledReason): string | undefined {
  let best: string | undefined;
  for (const rule of EXCLUSION_RULES) {
    const n = reason.excludedBy[rule] ?? 0;
    if (n > 0 && (best === undefined || n > (reason.excludedBy[best] ?? 0))) best = rule;
  }
  return best;
}

/** What the operator can do about the main rule, as one sentence. */
export function remedy(name: string, reason: ApiUnscheduledReason | undefined): string {
  const edit = `or change the unit's [X-Fleet] section and run "fleetctl start --replace ${name}"`;
  if (reason === undefined) {
    return `Retry in a few seconds; if no reason appears, check that fleetd runs with its engine enabled on some machine ("fleetctl list-machines").`;
  }
  switch (mainRule(reason)) {
    case "MachineID":
      return `Start fleetd on the machine it requires (MachineID), ${edit}.`;
    case "MachineOf":
      return `Get the unit it must run beside (MachineOf) scheduled first, ${edit}.`;
    case "MachineMetadata":
      return `Give a machine the metadata it requires (metadata in fleet.conf, or dynamic metadata through the API's PATCH /fleet/v1/machines; compare with "fleetctl list-machines"), ${edit}.`;
    case "Conflicts":
      return `Add a machine, or stop the units it conflicts with, ${edit}.`;
    case "Replaces":
      return `Add a machine, or stop the units that replace it, ${edit}.`;
    case "Resources":
      return `Add a machine with room for it, stop units to free CPU or memory ("fleetctl list-machines --fields machine,cpus,memory,allocated" shows what is left), raise capacity_cpus / capacity_memory in fleet.conf if the host has more, or lower its CPUs= / Memory= (CPUQuota= / MemoryMax=) and run "fleetctl start --replace ${name}".`;
    default:
      return `Start fleetd on at least one machine ("fleetctl list-machines" shows none).`;
  }
}

/** One line per excluded machine (indented), plus a count of those left out. */
export function machineLines(reason: ApiUnscheduledReason, full: boolean): string[] {
  const lines = reason.machines.map((m) => `  ${machineIdLegend(m.machineID, full)}: ${m.rule}: ${m.detail}`);
  if (reason.moreMachines > 0) lines.push(`  ... and ${reason.moreMachines} more machine(s)`);
  return lines;
}

/**
 * The full explanation for `fleetctl status`: headline with the summary, each excluded machine, what
 * to do. E.g. `Unit web.service is not scheduled on any machine: no machine can run it (2 machines): …`.
 */
export function describeUnscheduled(unit: ApiUnit, full = false): string {
  const reason = unit.unscheduledReason;
  const headline = reason ? `Unit ${unit.name} is not scheduled on any machine: ${reason.summary}` : `Unit ${unit.name} is not scheduled on any machine, and the engine has recorded no reason yet.`;
  return [headline, ...(reason ? machineLines(reason, full) : []), remedy(unit.name, reason)].join("\n");
}

/** Short form for one line (waits that time out, listings): the summary, or "-" when none is recorded. */
export function reasonSummary(unit: ApiUnit): string {
  return unit.unscheduledReason?.summary ?? "-";
}
