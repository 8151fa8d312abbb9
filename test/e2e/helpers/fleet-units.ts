/** What fleetctl and systemd say about units, parsed for assertions. */
import type { E2eCluster } from "./e2e-cluster";

export interface ListedUnit {
  unit: string;
  machineId: string;
  ip: string;
  active: string;
  sub: string;
}

/** `fleetctl list-units` as rows (JSON output: full machine IDs). */
export async function listUnits(cluster: E2eCluster): Promise<ListedUnit[]> {
  const r = await cluster.fleetctl(["list-units", "--fields", "unit,machine,active,sub", "--output", "json"]);
  const rows = JSON.parse(r.stdout) as { unit: string; machine: string; active: string; sub: string }[];
  return rows.map((row) => {
    const [machineId = "", ip = ""] = row.machine.split("/");
    return { unit: row.unit, machineId, ip, active: row.active, sub: row.sub };
  });
}

/** Machine IDs `fleetctl list-machines` shows. */
export async function listMachineIds(cluster: E2eCluster): Promise<string[]> {
  const r = await cluster.fleetctl(["list-machines", "--fields", "machine", "--output", "json"]);
  return (JSON.parse(r.stdout) as { machine: string }[]).map((m) => m.machine);
}

/** Units matching `patterns` that systemd reports active on each running machine: unit → hostnames. */
export async function activeEverywhere(cluster: E2eCluster, patterns: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const index of [...cluster.alive].sort()) {
    const m = cluster.machine(index);
    const quoted = patterns.map((p) => `'${p}'`).join(" ");
    const r = await cluster.ssh(index, `systemctl list-units --state=active --plain --no-legend --no-pager ${quoted}`);
    for (const line of r.stdout.split("\n")) {
      const unit = line.trim().split(/\s+/)[0];
      if (!unit) continue;
      out.set(unit, [...(out.get(unit) ?? []), m.hostname]);
    }
  }
  return out;
}

/** systemd's InvocationID per unit on one machine: changes whenever a unit is restarted. */
export async function invocationIds(cluster: E2eCluster, index: number, units: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const u of units) {
    const r = await cluster.ssh(index, `systemctl show --property=InvocationID --value '${u}'`);
    out.set(u, r.stdout.trim());
  }
  return out;
}
