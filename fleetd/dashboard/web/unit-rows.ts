/**
 * From units to the rows the table shows: filtered (free text, `machine:`, `state:`, the state menu),
 * sorted by name, optionally grouped by template with a header row per group (collapsible).
 */
import type { DashboardUnit } from "../../../lib/api/dashboard-types";

export type UnitRow =
  | { kind: "group"; key: string; title: string; total: number; launched: number; failed: number; collapsed: boolean }
  | { kind: "unit"; unit: DashboardUnit; grouped: boolean };

export interface RowQuery {
  text: string;
  state: string;
  group: boolean;
  collapsed: ReadonlySet<string>;
}

/** Key of the group of units that are no template's instances. */
export const UNGROUPED = "";

export function isFailed(u: DashboardUnit): boolean {
  return u.systemd?.active === "failed";
}

function matchesState(u: DashboardUnit, state: string): boolean {
  switch (state) {
    case "":
      return true;
    case "unscheduled":
      return u.unscheduled !== undefined || (!u.global && u.desiredState !== "inactive" && u.machineID === undefined);
    case "failed":
      return isFailed(u);
    case "converging":
      return !u.global && u.desiredState !== u.currentState;
    default:
      return u.currentState === state || (u.global && u.desiredState === state);
  }
}

function matchesTerm(u: DashboardUnit, term: string): boolean {
  const colon = term.indexOf(":");
  if (colon > 0) {
    const key = term.slice(0, colon);
    const value = term.slice(colon + 1);
    if (key === "machine") return (u.machineID ?? "").startsWith(value);
    if (key === "state") return matchesState(u, value) || u.systemd?.active === value || u.systemd?.sub === value;
  }
  return u.name.toLowerCase().includes(term) || (u.machineID ?? "").startsWith(term);
}

export function unitRows(units: Iterable<DashboardUnit>, q: RowQuery): { rows: UnitRow[]; shown: number } {
  const terms = q.text.toLowerCase().split(/\s+/).filter(Boolean);
  const list = [...units].filter((u) => matchesState(u, q.state) && terms.every((t) => matchesTerm(u, t)));
  list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (!q.group) return { rows: list.map((unit) => ({ kind: "unit", unit, grouped: false })), shown: list.length };
  const groups = new Map<string, DashboardUnit[]>();
  for (const u of list) {
    const key = u.template ?? UNGROUPED;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(u);
  }
  const keys = [...groups.keys()].sort((a, b) => (a === UNGROUPED ? 1 : b === UNGROUPED ? -1 : a < b ? -1 : 1));
  const rows: UnitRow[] = [];
  for (const key of keys) {
    const members = groups.get(key)!;
    const collapsed = q.collapsed.has(key);
    rows.push({
      kind: "group",
      key,
      title: key === UNGROUPED ? "other units" : key,
      total: members.length,
      launched: members.filter((u) => u.currentState === "launched").length,
      failed: members.filter(isFailed).length,
      collapsed,
    });
    if (!collapsed) for (const unit of members) rows.push({ kind: "unit", unit, grouped: true });
  }
  return { rows, shown: list.length };
}
