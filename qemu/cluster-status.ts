/** `status`: per machine, whether QEMU runs and the health verdict (machine-health.ts). */
import { clusterPaths, type ClusterSpec } from "./cluster-layout";
import { checkMachine, describeHealth, type HealthReport } from "./machine-health";
import { Vm } from "./vm";

export interface MachineStatus {
  index: number;
  hostname: string;
  ip: string;
  sshPort: number;
  running: boolean;
  health?: HealthReport;
}

export async function clusterStatus(root: string, spec: ClusterSpec, signal?: AbortSignal): Promise<MachineStatus[]> {
  const paths = clusterPaths(root, spec.name);
  return Promise.all(
    spec.machines.map(async (m): Promise<MachineStatus> => {
      const vm = await Vm.find(paths.machine(m.index).dir);
      const running = vm?.isRunning() ?? false;
      const base = { index: m.index, hostname: m.hostname, ip: m.ip, sshPort: m.sshPort, running };
      return running ? { ...base, health: await checkMachine(paths, m, signal) } : base;
    }),
  );
}

/** One line per machine. */
export function formatStatus(rows: readonly MachineStatus[]): string {
  return rows
    .map((r) => `${r.index}\t${r.hostname}\t${r.ip}\tssh 127.0.0.1:${r.sshPort}\t${r.running ? (r.health ? describeHealth(r.health).replace(`${r.hostname}: `, "") : "running") : "stopped"}`)
    .join("\n");
}
