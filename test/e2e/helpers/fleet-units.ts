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

/** The command that prints systemd's view of `units` (one block per unit), parsed by {@link parseUnitStates}. */
export function unitStatesCommand(units: readonly string[]): string {
  return `systemctl show --property=Id,InvocationID,ActiveState -- ${units.map((u) => `'${u}'`).join(" ")}`;
}

export interface UnitState {
  invocationId: string;
  active: string;
}

/** Parses `systemctl show` blocks (separated by blank lines) into unit → state. */
export function parseUnitStates(stdout: string): Map<string, UnitState> {
  const out = new Map<string, UnitState>();
  for (const block of stdout.split(/\n\s*\n/)) {
    const props = new Map(block.split("\n").flatMap((line) => {
      const eq = line.indexOf("=");
      return eq > 0 ? [[line.slice(0, eq), line.slice(eq + 1).trim()] as const] : [];
    }));
    const id = props.get("Id");
    if (id) out.set(id, { invocationId: props.get("InvocationID") ?? "", active: props.get("ActiveState") ?? "" });
  }
  return out;
}

/** systemd's InvocationID per unit on one machine (changes whenever a unit is restarted), in one SSH round trip. */
export async function invocationIds(cluster: E2eCluster, index: number, units: readonly string[]): Promise<Map<string, string>> {
  const states = parseUnitStates((await cluster.ssh(index, unitStatesCommand(units))).stdout);
  return new Map(units.map((u) => [u, states.get(u)?.invocationId ?? ""]));
}
