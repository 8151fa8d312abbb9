/**
 * /init of the image's initramfs (busybox sh). It loads the few disk modules, finds the partitions
 * by their GPT names (from sysfs, no blkid needed), mounts the state partition as / (read-write) and
 * the /usr partition (squashfs, read-only) on it, and hands over to systemd. On failure it prints
 * why and opens a shell on the console for repair.
 */

/** GPT partition names written by the disk assembly and looked up by /init. */
export const PART_NAMES = { esp: "esp", usr: "corefleet-usr", state: "corefleet-state" } as const;

/** The init script. */
export function bootInit(): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "corefleet-initramfs: started after $(cut -d' ' -f1 /proc/uptime) s"
fail() {
  echo "corefleet-initramfs: ERROR: $*"
  echo "corefleet-initramfs: starting a shell on the console for repair (exit to retry)"
  sh
}
for m in $(cat /etc/modules.order 2>/dev/null); do insmod /lib/modules/$m 2>/dev/null; done
find_part() {
  for u in /sys/class/block/*/uevent; do
    if grep -qx "PARTNAME=$1" "$u"; then sed -n 's/^DEVNAME=//p' "$u"; return 0; fi
  done
  return 1
}
i=0
while :; do
  state=$(find_part ${PART_NAMES.state}) && usr=$(find_part ${PART_NAMES.usr}) && break
  i=$((i + 1))
  if [ $i -gt 300 ]; then fail "no partitions named ${PART_NAMES.state} and ${PART_NAMES.usr} after 30 s"; i=0; fi
  sleep 0.1
done
mount -t ext4 -o rw,noatime /dev/$state /sysroot || fail "cannot mount the state partition /dev/$state"
mount -t squashfs -o ro /dev/$usr /sysroot/usr || fail "cannot mount /usr from /dev/$usr"
echo "corefleet-initramfs: / on $state, /usr on $usr; starting systemd after $(cut -d' ' -f1 /proc/uptime) s"
mount --move /dev /sysroot/dev
mount --move /proc /sysroot/proc
mount --move /sys /sysroot/sys
exec switch_root /sysroot /usr/lib/systemd/systemd
`;
}
