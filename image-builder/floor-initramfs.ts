/**
 * The "floor" for boot-time measurements: a kernel plus an initramfs holding only busybox, whose
 * /init prints a marker and powers off. No real image can boot faster than this on the same host.
 */
import { buildInitramfs } from "./initramfs";

/** What the floor's /init prints once userspace runs. */
export const FLOOR_MARKER = "corefleet-floor: userspace is up";

/** The floor's /init: mount /proc, print the marker with the uptime, power off at once. */
export function floorInit(): string {
  return `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo "${FLOOR_MARKER} after $(/bin/busybox cut -d' ' -f1 /proc/uptime) s"
/bin/busybox poweroff -f
`;
}

/** Builds the floor initramfs at `out` from a static busybox. */
export async function buildFloorInitramfs(busybox: string, out: string, options: { signal?: AbortSignal } = {}): Promise<void> {
  await buildInitramfs({ busybox, init: floorInit(), out, epoch: 0, ...(options.signal ? { signal: options.signal } : {}) });
}
