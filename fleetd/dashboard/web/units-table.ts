/**
 * The units table, virtualised: rows have a fixed height and only those in view (plus a margin) exist
 * in the DOM, recycled on scroll, so 10,000 units scroll as smoothly as ten.
 */
import type { DashboardMachine, DashboardUnit } from "../../../lib/api/dashboard-types";
import { el, shortId } from "./dom";
import type { UnitRow } from "./unit-rows";

export const ROW_HEIGHT = 26;
const OVERSCAN = 10;

export interface UnitsTableOptions {
  viewport: HTMLElement;
  spacer: HTMLElement;
  rows: HTMLElement;
  onSelectUnit(name: string): void;
  onToggleGroup(key: string): void;
}

function stateBadge(state: string | undefined): HTMLElement {
  return el("span", state ?? "-", `badge state-${state ?? "none"}`);
}

export class UnitsTable {
  private data: UnitRow[] = [];
  private machines: ReadonlyMap<string, DashboardMachine> = new Map();
  private selected = "";
  private showRevision = false;
  private readonly pool: HTMLElement[] = [];

  constructor(private readonly o: UnitsTableOptions) {
    o.viewport.addEventListener("scroll", () => this.paint(), { passive: true });
    new ResizeObserver(() => this.paint()).observe(o.viewport);
    o.rows.addEventListener("click", (ev) => {
      const row = (ev.target as HTMLElement).closest<HTMLElement>("[data-index]");
      const item = row ? this.data[Number(row.dataset.index)] : undefined;
      if (!item) return;
      if (item.kind === "group") o.onToggleGroup(item.key);
      else o.onSelectUnit(item.unit.name);
    });
  }

  update(rows: UnitRow[], machines: ReadonlyMap<string, DashboardMachine>, selected: string): void {
    this.data = rows;
    this.machines = machines;
    this.selected = selected;
    this.showRevision = rows.some((r) => r.kind === "unit" && r.unit.revision !== undefined);
    this.o.spacer.style.height = `${rows.length * ROW_HEIGHT}px`;
    this.paint();
  }

  get revisionShown(): boolean {
    return this.showRevision;
  }

  private paint(): void {
    const top = this.o.viewport.scrollTop;
    const height = this.o.viewport.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(this.data.length, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    const count = last - first;
    while (this.pool.length < count) {
      const row = el("div");
      this.pool.push(row);
      this.o.rows.appendChild(row);
    }
    for (let i = 0; i < this.pool.length; i++) {
      const row = this.pool[i]!;
      const item = this.data[first + i];
      if (i >= count || !item) {
        row.hidden = true;
        delete row.dataset.unit;
        delete row.dataset.group;
        delete row.dataset.index;
        continue;
      }
      row.hidden = false;
      row.dataset.index = String(first + i);
      row.style.transform = `translateY(${(first + i) * ROW_HEIGHT}px)`;
      this.fill(row, item);
    }
  }

  private fill(row: HTMLElement, item: UnitRow): void {
    row.replaceChildren();
    if (item.kind === "group") {
      row.className = "row group";
      row.dataset.group = item.key;
      delete row.dataset.unit;
      const title = el("span", `${item.collapsed ? "▸" : "▾"} ${item.title}`, "group-title");
      const stats = el("span", `${item.total} unit${item.total === 1 ? "" : "s"} · ${item.launched} launched${item.failed ? ` · ${item.failed} failed` : ""}`, "group-stats");
      row.append(title, stats);
      return;
    }
    const u: DashboardUnit = item.unit;
    row.className = `row unit${item.grouped ? " grouped" : ""}${u.name === this.selected ? " selected" : ""}${u.systemd?.active === "failed" ? " failed" : ""}`;
    row.dataset.unit = u.name;
    delete row.dataset.group;
    const machine = u.machineID !== undefined ? this.machines.get(u.machineID) : undefined;
    const where = u.global
      ? `global: ${u.globalActive ?? 0}/${u.globalMachines ?? 0} active`
      : u.machineID !== undefined
        ? `${shortId(u.machineID)}${machine?.primaryIP ? `/${machine.primaryIP}` : ""}`
        : "-";
    const systemd = u.systemd ? `${u.systemd.active}/${u.systemd.sub}` : "-";
    const revision = el("span", u.revision !== undefined ? String(u.revision) : "", "col-revision");
    const reason = el("span", u.unscheduled ?? "", "reason");
    if (u.unscheduled) reason.title = u.unscheduled;
    row.append(el("span", u.name, "name"), el("span", where, "machine"), stateBadge(u.desiredState), stateBadge(u.global ? undefined : u.currentState), el("span", systemd, `systemd active-${u.systemd?.active ?? "none"}`), revision, reason);
  }
}
