/** Human-readable summary of why no machine can take a unit. */
import type { Refusal } from "./cluster-state";
import { EXCLUSION_RULES as ORDER } from "../../lib/api/types";

/** e.g. "no machine can run it (3 machines): 2 excluded by MachineMetadata, 1 by Conflicts". */
export function summarizeRefusal(refusal: Refusal): string {
  if (refusal.machines === 0) return "no machines are registered";
  const parts = ORDER.filter((rule) => (refusal.excludedBy[rule] ?? 0) > 0).map((rule, i) => `${refusal.excludedBy[rule] ?? 0} ${i === 0 ? "excluded by " : "by "}${rule}`);
  const noun = refusal.machines === 1 ? "machine" : "machines";
  return `no machine can run it (${refusal.machines} ${noun}): ${parts.join(", ")}`;
}
