/**
 * Where a qemu cluster's image registry lives (units/registry.service): on machine 1, which gets the
 * fleet metadata `registry=true` the unit asks for, under the stable name `registry.cluster:5000`
 * that every machine resolves through an /etc/hosts entry written by provisioning (cloud-config
 * `hosts`). The registry keeps its blobs on that machine's state partition, so it is pinned there
 * rather than free to move.
 */
import type { MachineSpec } from "./cluster-layout";

export const REGISTRY_NAME = "registry.cluster";
export const REGISTRY_PORT = 5000;
/** `registry.cluster:5000`: how units and podman name the registry. */
export const REGISTRY_ADDRESS = `${REGISTRY_NAME}:${REGISTRY_PORT}`;
/** The machine that runs the registry. */
export const REGISTRY_MACHINE_INDEX = 1;
/** The metadata units/registry.service's MachineMetadata= matches. */
export const REGISTRY_METADATA = "registry=true";

/** A machine's fleet metadata with `registry=true` added on the registry machine. */
export function withRegistryMetadata(index: number, metadata: string): string {
  if (index !== REGISTRY_MACHINE_INDEX) return metadata;
  return metadata ? `${metadata},${REGISTRY_METADATA}` : REGISTRY_METADATA;
}

/** The registry machine, or undefined for a cluster without one (none has index 1). */
export function registryMachine(machines: readonly MachineSpec[]): MachineSpec | undefined {
  return machines.find((m) => m.index === REGISTRY_MACHINE_INDEX);
}
