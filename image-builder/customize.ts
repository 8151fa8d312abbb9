/**
 * Turns the trimmed package tree into a corefleet host: our files (image-builder/overlay), the fleet
 * bundles and their wrappers, the `core` user, services enabled and disabled, no SSH host keys and
 * an uninitialised machine ID (both created on first boot).
 */
import { chmod, copyFile, mkdir, readdir, rm, symlink, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { run } from "../lib/process/run";
import { launchCommand } from "./code-cache";

export interface CustomizeOptions {
  root: string;
  /** image-builder/overlay. */
  overlayDir: string;
  /** fleetd/systemd (fleet.service, fleet.socket). */
  fleetUnitsDir: string;
  /** name → file to install as /usr/lib/corefleet/<name> (fleetd.cjs, fleetctl.cjs, provision.cjs, launch.cjs). */
  bundles: Record<string, string>;
  /** SOURCE_DATE_EPOCH: the /usr tree's time stamps. */
  epoch: number;
  signal?: AbortSignal;
}

/** Bundles that get a command in /usr/bin. */
export const COMMANDS = ["fleetd", "fleetctl"];
/** Services enabled in every image. */
export const ENABLED_UNITS = ["corefleet-provision.service", "corefleet-growfs.service", "etcd.service", "fleet.socket",
  "fleet.service", "systemd-networkd.service", "ssh.service", "corefleet-ready.service"];
/** Units Debian enables that a fleet host does not want (timers for apt, podman's API socket, the registry: fleet runs it as units/registry.service ...). */
export const DISABLED_UNITS = ["podman-auto-update.timer", "podman-auto-update.service", "podman-restart.service", "podman.service",
  "podman.socket", "e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer", "getty@tty1.service", "remote-fs.target",
  "systemd-pstore.service", "docker-registry.service"];
/**
 * Masked: wait-online would hold boot for 2 minutes on a network without DHCP. The rest is early-boot
 * work a fleet host never uses, each a process that competes with provisioning's and fleetd's Node
 * start-up in an emulated guest: module loads for DRM, device mapper, loop, FUSE and configfs (the
 * kernel still loads modules on demand), debugfs/tracefs/hugetlbfs mounts, and the kernel-command-line
 * network generator (networking comes from provisioning or DHCP). `systemctl unmask` brings any back.
 */
export const MASKED_UNITS = ["systemd-networkd-wait-online.service", "apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer",
  "modprobe@.service", "sys-kernel-debug.mount", "sys-kernel-tracing.mount", "dev-hugepages.mount", "systemd-network-generator.service"];
/**
 * Generators that systemd would run on every boot and daemon-reload for things the image does not
 * have: encrypted, integrity or verity volumes, GPT auto-discovery (the initramfs mounts by partition
 * name), hibernation, SysV scripts, rc.local, offline updates. Masked by /etc/systemd/system-generators
 * links to /dev/null, like units. Kept: fstab, getty (the serial console), debug (systemd.mask= to repair).
 */
export const MASKED_GENERATORS = ["systemd-cryptsetup-generator", "systemd-gpt-auto-generator", "systemd-hibernate-resume-generator",
  "systemd-integritysetup-generator", "systemd-veritysetup-generator", "systemd-rc-local-generator", "systemd-sysv-generator",
  "systemd-system-update-generator"];

/** Applies everything. */
export async function customizeRootfs(o: CustomizeOptions): Promise<void> {
  const r = (p: string): string => path.join(o.root, p);
  const sig = o.signal ? { signal: o.signal } : {};
  await run("cp", ["-a", "--no-preserve=ownership", `${o.overlayDir}/.`, o.root], sig);
  await chmod(r("etc/sudoers.d/core"), 0o440);

  // fleet's units are fleetd's own files (one copy, also used on hosts that are not our image).
  for (const unit of ["fleet.service", "fleet.socket"]) await copyFile(path.join(o.fleetUnitsDir, unit), r(`usr/lib/systemd/system/${unit}`));

  await mkdir(r("usr/lib/corefleet"), { recursive: true });
  for (const [name, file] of Object.entries(o.bundles).sort()) {
    await copyFile(file, r(`usr/lib/corefleet/${name}`));
    await chmod(r(`usr/lib/corefleet/${name}`), 0o755);
  }
  // The commands start through node-launch: from the start-up snapshot with their bundle's code cache (both
  // made later in the build) when the CPU can load them.
  for (const command of COMMANDS) {
    await writeFile(r(`usr/bin/${command}`), `#!/bin/sh\nexec ${launchCommand(`${command}.cjs`).join(" ")} "$@"\n`, { mode: 0o755 });
  }

  await run("chroot", [o.root, "useradd", "--create-home", "--shell", "/bin/bash", "--user-group", "--groups", "sudo,systemd-journal,adm", "core"], sig);
  await mkdir(r("home/core/.ssh"), { recursive: true, mode: 0o700 });
  await writeFile(r("home/core/.ssh/authorized_keys"), "", { mode: 0o600 });
  await run("chroot", [o.root, "chown", "-R", "core:core", "/home/core"], sig);

  for (const f of await readdir(r("etc/ssh"))) if (f.startsWith("ssh_host_")) await rm(r(`etc/ssh/${f}`));
  // Empty (not "uninitialized"): systemd generates and commits an ID at boot without treating it as
  // a first boot, which would re-apply all presets (7 s in a TCG guest).
  await writeFile(r("etc/machine-id"), "");
  await rm(r("var/lib/dbus/machine-id"), { force: true });
  await writeFile(r("etc/hostname"), "corefleet\n");
  await writeFile(r("etc/hosts"), "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
  await writeFile(r("etc/fstab"), "# / (the state partition) and /usr (read-only) are mounted by the initramfs.\n");
  await mkdir(r("etc/containers"), { recursive: true });
  await writeFile(r("etc/containers/storage.conf"), '[storage]\ndriver = "overlay"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n');

  // No SysV scripts: systemctl would hand them to update-rc.d (perl, not in the image).
  for (const d of ["etc/init.d", "etc/rc0.d", "etc/rc1.d", "etc/rc2.d", "etc/rc3.d", "etc/rc4.d", "etc/rc5.d", "etc/rc6.d", "etc/rcS.d"]) {
    await rm(r(d), { recursive: true, force: true });
  }
  await run("chroot", [o.root, "systemctl", "enable", ...ENABLED_UNITS], sig);
  await run("chroot", [o.root, "systemctl", "disable", ...DISABLED_UNITS], { ...sig, allowFailure: true });
  await run("chroot", [o.root, "systemctl", "mask", ...MASKED_UNITS], sig);
  await mkdir(r("etc/systemd/system-generators"), { recursive: true });
  for (const g of MASKED_GENERATORS) await symlink("/dev/null", r(`etc/systemd/system-generators/${g}`));
  // /etc is up to date with this /usr: without the stamp, ConditionNeedsUpdate=/etc reruns
  // systemd-sysusers on every boot (Debian has no systemd-update-done.service to write it).
  for (const stamp of ["etc/.updated", "var/.updated"]) {
    await writeFile(r(stamp), `# corefleet image build\nTIMESTAMP_NSEC=${o.epoch}000000000\n`);
    await utimes(r(stamp), o.epoch, o.epoch);
  }
}
