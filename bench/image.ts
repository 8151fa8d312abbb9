/**
 * bench:image — build and boot figures of the host image, measured in one run:
 *   cold build   the package stage is rebuilt (mmdebstrap installs everything; .debs come from the
 *                download cache, as on any machine that built once), then the whole image
 *   warm build   package stage from its cache, everything after it rebuilt (--force)
 *   /usr size    uncompressed, and the compressed image size (disk.qcow2)
 *   boot         QEMU start → "corefleet-ready: fleetd registered" on the console (direct kernel boot,
 *                user data via fw_cfg), and in the same run the floor: the same kernel with a
 *                busybox-only initramfs, QEMU start → its userspace marker. Each is booted N times
 *                (--boots, default 3), alternating, and the median is reported: TCG boot times on
 *                this shared machine vary by ±20% from one minute to the next.
 * Builds into build/bench-image so the shared build/image is left alone. Last line: one JSON object.
 * Usage: npm run bench:image [-- --skip-cold] [-- --boots N]
 */
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { buildImage } from "../image-builder/build";
import { fleetdRegisteredMarker } from "../image-builder/ready-markers";
import { buildFloorInitramfs, FLOOR_MARKER } from "../image-builder/floor-initramfs";
import { imageKernelBoot } from "../image-builder/testing/boot";
import { probeAccelerator } from "../qemu/kvm-probe";
import { Vm, type VmOptions } from "../qemu/vm";

const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const out = path.join(repoRoot, "build/bench-image");
const profile = path.join(repoRoot, "image-builder/profiles/corefleet.json");
const MiB = 1048576;

/**
 * QEMU start → MARKER on the console. A boot that shows nothing within TIMEOUT is killed and started
 * again, once: a TCG guest on this shared machine has, rarely, hung before printing anything.
 */
async function timeBoot(o: VmOptions, marker: string, timeoutMs: number): Promise<{ seconds: number; console: string }> {
  for (let attempt = 1; ; attempt++) {
    const started = Date.now();
    const vm = await Vm.launch({ ...o, workDir: `${o.workDir}-${attempt}` });
    try {
      await vm.waitForConsole(marker, { timeoutMs });
      return { seconds: (Date.now() - started) / 1000, console: await vm.consoleText() };
    } catch (err) {
      const last = (await vm.consoleText().catch(() => "")).trim().split("\n").pop() ?? "";
      if (attempt >= 2) throw err;
      process.stderr.write(`bench: ${o.name} did not reach "${marker}" within ${timeoutMs / 1000} s (console's last line: "${last}"); booting it again\n`);
    } finally {
      await vm.kill();
    }
  }
}

/** Where the boot's time went, by the guest's clock (seconds since the kernel started), from its console. */
function bootMilestones(console: string): [string, number][] {
  const found: [string, number][] = [];
  const at = (what: string, re: RegExp): void => {
    const m = re.exec(console);
    if (m?.[1] !== undefined) found.push([what, Number(m[1])]);
  };
  at("initramfs starts systemd", /corefleet-initramfs: .*starting systemd after ([\d.]+) s/);
  at("provisioning's Node is running", /\[\s*([\d.]+)\][^\n]*corefleet-provision: (?:user data|no user data)/);
  at("provisioning finished", /\[\s*([\d.]+)\][^\n]*corefleet-provision: finished/);
  at("etcd answers", /\[\s*([\d.]+)\][^\n]*corefleet-ready: etcd answers/);
  at("fleetd registered", /\[\s*([\d.]+)\][^\n]*corefleet-ready: fleetd registered/);
  return found;
}

async function main(): Promise<void> {
  const skipCold = process.argv.includes("--skip-cold");
  const bootsArg = process.argv.indexOf("--boots");
  const bootsWanted = bootsArg > 0 ? Number(process.argv[bootsArg + 1]) : 3;
  if (!Number.isInteger(bootsWanted) || bootsWanted < 1) throw new Error(`--boots needs a whole number of boots (at least 1), not "${process.argv[bootsArg + 1] ?? ""}"`);
  const quiet = (): void => undefined;
  const rows: [string, string][] = [];

  let cold = NaN;
  if (!skipCold) {
    process.stderr.write("bench: cold build (package stage rebuilt) ...\n");
    cold = (await buildImage({ profile, out, repoRoot, force: true, noStageCache: true, log: quiet })).seconds;
    rows.push(["cold build (package stage rebuilt, .debs cached)", `${cold.toFixed(1)} s`]);
  }
  process.stderr.write("bench: warm build (package stage cached) ...\n");
  const warm = await buildImage({ profile, out, repoRoot, force: true, log: quiet });
  rows.push(["warm build (--force, package stage cached)", `${warm.seconds.toFixed(1)} s`]);
  const noop = await buildImage({ profile, out, repoRoot, log: quiet });
  rows.push(["no-op build (inputs unchanged)", `${noop.seconds.toFixed(1)} s`]);
  const usrMb = warm.manifest.usrBytes / MiB;
  const qcow2Mb = (await stat(path.join(out, "disk.qcow2"))).size / MiB;
  const rawMb = (await stat(path.join(out, "disk.raw"))).size / MiB;
  rows.push(["/usr uncompressed", `${usrMb.toFixed(1)} MiB`], ["disk.qcow2 (compressed)", `${qcow2Mb.toFixed(1)} MiB`], ["disk.raw", `${rawMb.toFixed(1)} MiB`]);

  const probe = await probeAccelerator({ kernel: path.join(out, "vmlinuz") });
  if (probe.notice !== undefined) process.stderr.write(`${probe.notice}\n`);
  const work = await mkdtemp(path.join(os.tmpdir(), "corefleet-bench-image-"));
  try {
    const floorInitrd = path.join(work, "floor.img");
    await buildFloorInitramfs("/usr/bin/busybox", floorInitrd);
    const common = { accelerator: probe.accelerator, memoryMiB: 1024, cpus: 2, log: quiet } as const;
    const ud = path.join(work, "user-data");
    const machineId = "b0000000000000000000000000000001";
    await writeFile(ud, `#cloud-config\nhostname: bench-1\nmachine_id: "${machineId}"\n`);
    const floors: number[] = [];
    const boots: { seconds: number; console: string }[] = [];
    for (let i = 1; i <= bootsWanted; i++) {
      process.stderr.write(`bench: boot ${i}/${bootsWanted}: floor (kernel + busybox initramfs), then the image to fleetd registered ...\n`);
      floors.push((await timeBoot({ ...common, name: "bench-floor", workDir: path.join(work, `floor-${i}`),
        boot: { kind: "kernel", kernel: path.join(out, "vmlinuz"), initrd: floorInitrd, cmdline: "console=ttyS0 quiet panic=-1" } }, FLOOR_MARKER, 120_000)).seconds);
      boots.push(await timeBoot({ ...common, name: "bench-image", workDir: path.join(work, `image-${i}`),
        boot: await imageKernelBoot(out, `systemd.machine_id=${machineId}`), disk: { base: path.join(out, "disk.qcow2") },
        fwCfg: [{ name: "opt/corefleet/user-data", file: ud }],
        netArgs: ["-netdev", "user,id=n0,restrict=on", "-device", "virtio-net-pci,netdev=n0"] }, fleetdRegisteredMarker(machineId), 600_000));
    }
    const floor = median(floors);
    const boot = median(boots.map((b) => b.seconds));
    const list = (xs: number[]): string => (xs.length > 1 ? ` (median of ${xs.map((x) => x.toFixed(1)).join(", ")})` : "");
    rows.push(["floor boot: QEMU start → busybox userspace", `${floor.toFixed(1)} s${list(floors)}`]);
    rows.push([`image boot: QEMU start → fleetd registered (${probe.accelerator})`, `${boot.toFixed(1)} s${list(boots.map((b) => b.seconds))}`],
      ["  ratio to floor", `${(boot / floor).toFixed(1)}x`]);
    // The milestones of the median boot.
    const typical = [...boots].sort((a, b) => a.seconds - b.seconds)[Math.floor((boots.length - 1) / 2)];
    for (const [what, t] of bootMilestones(typical?.console ?? "")) rows.push([`  guest clock (median boot): ${what}`, `${t.toFixed(1)} s`]);

    const width = Math.max(...rows.map(([k]) => k.length));
    console.log(`accelerator: ${probe.accelerator} (${probe.reason}); host load average ${os.loadavg()[0]?.toFixed(1) ?? "?"}`);
    for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
    console.log(JSON.stringify({
      accelerator: probe.accelerator,
      cold_build_seconds: Number.isNaN(cold) ? null : round(cold),
      warm_build_seconds: round(warm.seconds),
      usr_mb: round(usrMb),
      compressed_image_mb: round(qcow2Mb),
      boot_to_fleetd_seconds: round(boot),
      floor_boot_seconds: round(floor),
    }));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:image: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
