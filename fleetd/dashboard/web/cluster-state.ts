/** The page's copy of the cluster: replaced by a snapshot, patched by deltas. */
import type { DashboardDelta, DashboardListenerAuth, DashboardMachine, DashboardSnapshot, DashboardUnit } from "../../../lib/api/dashboard-types";

export class ClusterState {
  readonly machines = new Map<string, DashboardMachine>();
  readonly units = new Map<string, DashboardUnit>();
  listener: DashboardListenerAuth = "open";
  servedBy = "";
  revision = 0;
  /** Bumped on every change, so views recompute only when something changed. */
  version = 0;

  applySnapshot(s: DashboardSnapshot): void {
    this.machines.clear();
    this.units.clear();
    for (const m of s.machines) this.machines.set(m.id, m);
    for (const u of s.units) this.units.set(u.name, u);
    this.listener = s.listener;
    this.servedBy = s.servedBy ?? "";
    this.revision = s.revision;
    this.version++;
  }

  applyDelta(d: DashboardDelta): void {
    for (const m of d.machines) this.machines.set(m.id, m);
    for (const id of d.removedMachines) this.machines.delete(id);
    for (const u of d.units) this.units.set(u.name, u);
    for (const name of d.removedUnits) this.units.delete(name);
    this.revision = Math.max(this.revision, d.revision);
    this.version++;
  }

  /** Units placed on each machine, and how many of them failed. */
  machineLoad(): Map<string, { units: number; failed: number }> {
    const load = new Map<string, { units: number; failed: number }>();
    for (const u of this.units.values()) {
      if (u.machineID === undefined) continue;
      let l = load.get(u.machineID);
      if (!l) load.set(u.machineID, (l = { units: 0, failed: 0 }));
      l.units++;
      if (u.systemd?.active === "failed") l.failed++;
    }
    return load;
  }
}
