/**
 * Actions on a unit through fleet's own API, with the bearer token in a header (so a page on another
 * site can never make the browser act: it cannot set that header without a CORS preflight fleetd
 * does not grant). start = desired launched, stop = loaded, unload = inactive, destroy = DELETE.
 */
import type { UnitTargetState } from "../../../lib/api/types";
import type { Credentials } from "./credentials";
import { errorText } from "./event-stream";

export type UnitAction = UnitTargetState | "destroy";

export const ACTION_VERBS: Record<UnitAction, string> = { launched: "start", loaded: "stop", inactive: "unload", destroy: "destroy" };

/** Runs the action; throws an Error whose message says what failed and why. */
export async function runUnitAction(credentials: Credentials, name: string, action: UnitAction): Promise<void> {
  const url = `fleet/v1/units/${encodeURIComponent(name)}`;
  const res =
    action === "destroy"
      ? await fetch(url, { method: "DELETE", headers: credentials.headers(), cache: "no-store" })
      : await fetch(url, {
          method: "PUT",
          headers: credentials.headers({ "Content-Type": "application/json" }),
          body: JSON.stringify({ name, desiredState: action }),
          cache: "no-store",
        });
  if (!res.ok) throw new Error(`Cannot ${ACTION_VERBS[action]} ${name}: fleetd answered ${res.status}: ${await errorText(res)}`);
}

/** The unit file as `fleetctl cat` prints it, from `GET /fleet/v1/units/<name>`. */
export async function fetchUnitFile(credentials: Credentials, name: string, signal: AbortSignal): Promise<string> {
  const res = await fetch(`fleet/v1/units/${encodeURIComponent(name)}`, { headers: credentials.headers(), cache: "no-store", signal });
  if (!res.ok) throw new Error(`Cannot read ${name}: fleetd answered ${res.status}: ${await errorText(res)}`);
  const unit = (await res.json()) as { options?: { section: string; name: string; value: string }[] };
  const lines: string[] = [];
  let section = "";
  for (const o of unit.options ?? []) {
    if (o.section !== section) {
      if (lines.length > 0) lines.push("");
      lines.push(`[${o.section}]`);
      section = o.section;
    }
    lines.push(`${o.name}=${o.value}`);
  }
  return lines.join("\n");
}
