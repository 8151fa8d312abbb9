/**
 * The console lines of the image's readiness reporter (overlay/usr/lib/corefleet/ready, run by
 * corefleet-ready.service): what `qemu up`, the boot tests and bench:image wait for. It checks etcd
 * and fleetd's registration inside the guest, on member and on proxy hosts alike.
 */
export const ETCD_ANSWERS_MARKER = "corefleet-ready: etcd answers on 127.0.0.1:2379";

export function fleetdRegisteredMarker(machineId: string): string {
  return `corefleet-ready: fleetd registered machine ${machineId}`;
}
