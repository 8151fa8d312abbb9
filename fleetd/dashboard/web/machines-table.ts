/** The machines table (a fleet has tens to hundreds of machines: a plain table). */
import type { DashboardMachine } from "../../../lib/api/dashboard-types";
import { el, shortId } from "./dom";

export interface MachineLoad {
  units: number;
  failed: number;
}

function health(m: DashboardMachine, load: MachineLoad | undefined): [string, string] {
  if (m.leaving) return ["leaving", "warn"];
  if ((load?.failed ?? 0) > 0) return ["degraded", "warn"];
  return ["healthy", "ok"];
}

function capacityText(c: Record<string, unknown> | undefined): string {
  if (!c) return "";
  return Object.entries(c)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
}

export function renderMachines(body: HTMLElement, capacityHead: HTMLElement, machines: DashboardMachine[], load: ReadonlyMap<string, MachineLoad>, onPick: (id: string) => void): void {
  const showCapacity = machines.some((m) => m.capacity !== undefined);
  capacityHead.hidden = !showCapacity;
  const rows = machines.map((m) => {
    const tr = el("tr");
    tr.dataset.machine = m.id;
    const id = el("td", shortId(m.id), "mono");
    id.title = m.id;
    const meta = el("td");
    for (const [k, v] of Object.entries(m.metadata).sort()) meta.append(el("span", `${k}=${v}`, "chip"));
    const l = load.get(m.id);
    const [label, cls] = health(m, l);
    tr.append(id, el("td", m.primaryIP ?? "-", "mono"), meta, el("td", String(l?.units ?? 0), "num"), el("td", String(l?.failed ?? 0), `num${l?.failed ? " bad" : ""}`));
    if (showCapacity) tr.append(el("td", capacityText(m.capacity), "mono"));
    tr.append(el("td", m.version ?? "-"), el("td", label, `health ${cls}`));
    tr.addEventListener("click", () => onPick(m.id));
    return tr;
  });
  body.replaceChildren(...rows);
}
