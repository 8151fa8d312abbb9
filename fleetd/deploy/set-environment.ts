/**
 * `fleetctl deploy --set KEY=VALUE`: sets the environment variable KEY of the unit's [Service] to VALUE.
 * Every assignment of KEY in an `Environment=` line gets the new value (systemd takes the last one, so
 * changing only the first left `Environment=image=a image=b` running b); a line assigning several
 * variables keeps the others; without one a line `Environment=KEY=VALUE` is added at the end of
 * [Service]. The unit uses it as `${KEY}` (e.g. `ExecStart=/usr/bin/podman run … ${image}`),
 * so `--set image=registry.cluster:5000/web:2` rolls out a new image tag.
 */
import type { UnitOption } from "../../lib/api/types";

/** A `--set` that cannot be applied; the message names the assignment and what to do. */
export class SetAssignmentError extends Error {
  override readonly name = "SetAssignmentError";
}

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses `KEY=VALUE` (the value may contain `=`; it may not contain a newline). */
export function parseAssignment(text: string): [string, string] {
  const eq = text.indexOf("=");
  const key = eq === -1 ? text : text.slice(0, eq);
  if (eq === -1 || !KEY.test(key)) {
    throw new SetAssignmentError(`invalid --set "${text}": expected KEY=VALUE with KEY made of letters, digits and _ (not starting with a digit), e.g. image=registry.cluster:5000/web:2`);
  }
  const value = text.slice(eq + 1);
  if (/[\n\r]/.test(value)) throw new SetAssignmentError(`invalid --set "${key}=…": the value may not contain a line break`);
  return [key, value];
}

/** Splits an Environment= value into assignments, honouring double quotes as systemd does. */
function splitAssignments(value: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(value); m; m = re.exec(value)) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]!);
  return out;
}

function quote(assignment: string): string {
  return /[\s"\\]/.test(assignment) ? `"${assignment.replace(/(["\\])/g, "\\$1")}"` : assignment;
}

/** The options with every assignment of `set` applied (input untouched). */
export function applySet(options: readonly UnitOption[], set: Readonly<Record<string, string>>): UnitOption[] {
  const out = options.map((o) => ({ ...o }));
  for (const [key, value] of Object.entries(set)) {
    if (!KEY.test(key)) throw new SetAssignmentError(`invalid --set key "${key}": use letters, digits and _ (not starting with a digit)`);
    let done = false;
    for (const o of out) {
      if (o.section !== "Service" || o.name !== "Environment") continue;
      const parts = splitAssignments(o.value);
      if (!parts.some((p) => p.startsWith(`${key}=`))) continue;
      o.value = parts.map((p) => (p.startsWith(`${key}=`) ? `${key}=${value}` : p)).map(quote).join(" ");
      done = true;
    }
    if (done) continue;
    const lastService = out.map((o) => o.section).lastIndexOf("Service");
    if (lastService === -1) throw new SetAssignmentError(`cannot --set ${key}: the unit has no [Service] section to hold Environment=${key}=…`);
    out.splice(lastService + 1, 0, { section: "Service", name: "Environment", value: quote(`${key}=${value}`) });
  }
  return out;
}
