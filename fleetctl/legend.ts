/** How fleetctl names machines in its output (fleet's `machineIDLegend`/`machineFullLegend`). */
import type { ApiMachine } from "../lib/api/types";

/** `113f16a7...`, or the full ID with `full`. */
export function machineIdLegend(id: string, full: boolean): string {
  return full ? id : `${id.slice(0, 8)}...`;
}

/** `113f16a7.../172.17.8.103`; the IP part only when the machine is known and has one. */
export function machineFullLegend(id: string, machine: ApiMachine | undefined, full: boolean): string {
  const legend = machineIdLegend(id, full);
  return machine?.primaryIP ? `${legend}/${machine.primaryIP}` : legend;
}
