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

/** Most variables one deploy sets: a unit's environment, not a data channel (and the work stays small). */
export const MAX_SET_KEYS = 100;

/**
 * The options with every assignment of `set` applied (input untouched), in one pass over the
 * `Environment=` lines: per key it was a pass per key, quadratic, and a request setting 100,000 keys
 * kept fleetd's event loop busy for minutes (its lease expired).
 */
export function applySet(options: readonly UnitOption[], set: Readonly<Record<string, string>>): UnitOption[] {
  const wanted = new Map(Object.entries(set));
  if (wanted.size > MAX_SET_KEYS) throw new SetAssignmentError(`too many --set assignments (${wanted.size}); at most ${MAX_SET_KEYS} per deploy`);
  for (const key of wanted.keys()) {
    if (!KEY.test(key)) throw new SetAssignmentError(`invalid --set key "${key}": use letters, digits and _ (not starting with a digit)`);
  }
  const out = options.map((o) => ({ ...o }));
  const assigned = new Set<string>();
  for (const o of out) {
    if (o.section !== "Service" || o.name !== "Environment") continue;
    const parts = splitAssignments(o.value);
    let changed = false;
    const next = parts.map((p) => {
      const eq = p.indexOf("=");
      const key = eq > 0 ? p.slice(0, eq) : undefined;
      const value = key !== undefined ? wanted.get(key) : undefined;
      if (key === undefined || value === undefined) return p;
      assigned.add(key);
      changed = true;
      return `${key}=${value}`;
    });
    if (changed) o.value = next.map(quote).join(" ");
  }
  const missing = [...wanted].filter(([key]) => !assigned.has(key));
  if (missing.length === 0) return out;
  const lastService = out.map((o) => o.section).lastIndexOf("Service");
  if (lastService === -1) throw new SetAssignmentError(`cannot --set ${missing[0]![0]}: the unit has no [Service] section to hold Environment=${missing[0]![0]}=…`);
  out.splice(lastService + 1, 0, ...missing.map(([key, value]) => ({ section: "Service", name: "Environment", value: quote(`${key}=${value}`) })));
  return out;
}
