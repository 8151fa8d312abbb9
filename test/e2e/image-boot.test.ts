/**
 * Boots the built image (build/image, built here if missing or stale) under QEMU, as the qemu tool
 * and EC2 would: provisioning from each source (config drive, fw_cfg, EC2 IMDSv2 served by this
 * test on loopback and reached through QEMU's guestfwd), etcd and fleetd up, `fleetctl
 * list-machines` inside the VM, the preloaded web container answering HTTP, and UEFI boot of the disk.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Vm } from "../../qemu/vm";
import { probeAccelerator } from "../../qemu/kvm-probe";
import { ensureImage, imageDir } from "./helpers/image";
import { SNAPSHOT_MARK } from "../../image-builder/code-cache";
import { fleetdRegisteredMarker } from "../../image-builder/ready-markers";
import { freePort, imageKernelBoot, makeConfigDrive, makeSshKey, ssh, waitForSsh } from "../../image-builder/testing/boot";

const image = imageDir;
const BOOT_TIMEOUT = 8 * 60_000;
let dir = "";
let key = "";
let pub = "";
let accelerator: "kvm" | "tcg" = "tcg";
const running: Vm[] = [];

beforeAll(async () => {
  await ensureImage((l) => console.log(l));
  dir = await mkdtemp(path.join(os.tmpdir(), "corefleet-image-e2e-"));
  ({ key, pub } = await makeSshKey(dir));
  const probe = await probeAccelerator({ kernel: path.join(image, "vmlinuz") });
  if (probe.notice !== undefined) console.log(probe.notice);
  accelerator = probe.accelerator;
});

afterEach(async (ctx) => {
  for (const vm of running.splice(0)) {
    if (ctx.task.result?.state === "fail") console.log(`console tail of ${vm.name}:\n${await vm.consoleTail(60)}`);
    await vm.kill();
  }
});

afterAll(async () => {
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

async function launch(name: string, extra: { drives?: { path: string }[]; fwCfg?: { name: string; file: string }[]; netArgs?: string[]; cmdline?: string }): Promise<Vm> {
  const vm = await Vm.launch({
    name, workDir: path.join(dir, name), accelerator, memoryMiB: 1024, cpus: 2,
    boot: await imageKernelBoot(image, extra.cmdline ?? ""),
    disk: { base: path.join(image, "disk.qcow2"), sizeBytes: 3 * 1024 ** 3 },
    ...(extra.drives ? { drives: extra.drives } : {}),
    ...(extra.fwCfg ? { fwCfg: extra.fwCfg } : {}),
    netArgs: extra.netArgs ?? ["-netdev", "user,id=n0,restrict=on", "-device", "virtio-net-pci,netdev=n0"],
  });
  running.push(vm);
  return vm;
}

describe("the built image under QEMU", () => {
  it("boots from a config drive: provisioning applies, etcd and fleetd come up, fleetctl lists the machine, the preloaded web container serves HTTP", async () => {
    const machineId = "c0eef1e7c0eef1e7c0eef1e7c0eef101";
    const sshPort = await freePort();
    const webPort = await freePort();
    const iso = path.join(dir, "config-2.iso");
    await makeConfigDrive([
      "#cloud-config",
      "hostname: core-e2e",
      `machine_id: ${machineId}`,
      `ssh_authorized_keys: ["${pub}"]`,
      "coreos:",
      "  fleet:",
      "    metadata: role=web,zone=e2e",
      "",
    ].join("\n"), iso);
    const vm = await launch("config-drive", {
      drives: [{ path: iso }],
      cmdline: `systemd.machine_id=${machineId}`,
      netArgs: ["-netdev", `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${sshPort}-:22,hostfwd=tcp:127.0.0.1:${webPort}-:80`, "-device", "virtio-net-pci,netdev=n0"],
    });
    await vm.waitForConsole(/corefleet-provision: user data from config drive \/dev\/vd[b-z] \(config-2:\/openstack\/latest\/user_data\)/, { timeoutMs: BOOT_TIMEOUT });
    await vm.waitForConsole("corefleet-provision: applied host name core-e2e", { timeoutMs: BOOT_TIMEOUT });
    await vm.waitForConsole(fleetdRegisteredMarker(machineId), { timeoutMs: BOOT_TIMEOUT });
    await waitForSsh(sshPort, key);

    expect((await ssh(sshPort, key, "hostname")).stdout.trim()).toBe("core-e2e");
    expect((await ssh(sshPort, key, "cat /etc/machine-id")).stdout.trim()).toBe(machineId);
    expect((await ssh(sshPort, key, "systemctl is-active etcd.service fleet.service ssh.service")).stdout.trim().split("\n")).toEqual(["active", "active", "active"]);
    // As core, without sudo: the image gives core's group the API socket, as CoreOS did.
    const machines = await ssh(sshPort, key, "fleetctl list-machines --no-legend --full");
    expect(machines.stdout).toContain(machineId);
    expect(machines.stdout).toContain("role=web");
    // The start-up snapshot and V8 code caches are made at build time on the build host's CPU; V8 ties
    // both to the CPU features it saw there. Where the guest's CPU can load them, provisioning and
    // fleetd start with them (their trace lines; launch.cjs exits 70 if a cache is rejected). Where it
    // cannot (a TCG guest, or a host with other CPU features), node-launch says so once and everything
    // starts from source instead of failing. Nothing else on stderr: node 18 warns about some modules
    // loaded after a snapshot is deserialised.
    const marks = (await ssh(sshPort, key, `ls ${SNAPSHOT_MARK}.*`)).stdout.trim().split("\n");
    expect(marks.length).toBe(1);
    const snapshotUsable = marks[0] === `${SNAPSHOT_MARK}.ok`;
    const journal = await ssh(sshPort, key, "journalctl -b -o cat --no-pager -u corefleet-provision.service -u fleet.service");
    if (snapshotUsable) {
      expect((await ssh(sshPort, key, "COREFLEET_CODE_CACHE=require fleetctl --version 2>&1")).stdout).toMatch(/^fleetctl version \S+\n$/);
      expect(journal.stdout).toMatch(/launch: provision\.cjs: node started from the start-up snapshot .*\(code cache used\)/);
      expect(journal.stdout).toMatch(/launch: fleetd\.cjs: node started from the start-up snapshot .*\(code cache used\)/);
    } else {
      expect(marks[0]).toBe(`${SNAPSHOT_MARK}.unusable`);
      expect((await ssh(sshPort, key, "fleetctl --version 2>&1")).stdout).toMatch(/^fleetctl version \S+\n$/);
      expect(journal.stdout).toContain("node cannot load its start-up snapshot on this CPU");
      expect(journal.stdout).toMatch(/launch: provision\.cjs: node started (from source )?in \d+ ms/);
      expect(journal.stdout).toMatch(/launch: fleetd\.cjs: node started (from source )?in \d+ ms/);
    }
    expect(journal.stdout).not.toContain("Warning:");

    // The web image was preloaded at build time: it runs with no registry reachable (restrict=on).
    await ssh(sshPort, key, "sudo podman run -d --rm --name web --network host -e HOST_NAME=core-e2e localhost/web");
    const page = await retryFetch(`http://127.0.0.1:${webPort}/`);
    expect(page).toContain("corefleet web on core-e2e");

    // The state partition grew to the 3 GiB disk (in the background, after the boot: wait until the
    // service has exited); /usr is read-only.
    const df = await ssh(sshPort, key, [
      "for i in $(seq 1 300); do case $(systemctl show -P SubState corefleet-growfs.service) in exited|failed) break ;; esac; sleep 1; done",
      "df -B1M --output=size / | tail -1; touch /usr/x 2>&1 || true"].join("; "));
    expect(Number(df.stdout.split("\n")[0]?.trim())).toBeGreaterThan(2500);
    expect(df.stdout).toContain("Read-only file system");
    const failed = await ssh(sshPort, key, "systemctl --failed --no-legend --plain");
    expect(failed.stdout.trim()).toBe("");
  });

  it("reads user data from QEMU fw_cfg", async () => {
    const ud = path.join(dir, "fw-cfg-user-data");
    await writeFile(ud, "#cloud-config\nhostname: core-fwcfg\n");
    const vm = await launch("fw-cfg", { fwCfg: [{ name: "opt/corefleet/user-data", file: ud }] });
    await vm.waitForConsole("corefleet-provision: user data from fw_cfg opt/corefleet/user-data", { timeoutMs: BOOT_TIMEOUT });
    await vm.waitForConsole("corefleet-provision: applied host name core-fwcfg", { timeoutMs: BOOT_TIMEOUT });
  });

  describe("EC2 instance metadata", () => {
    let server: Server;
    let port = 0;
    const requests: string[] = [];
    beforeAll(async () => {
      server = createServer((req, res) => {
        requests.push(`${req.method} ${req.url}`);
        if (req.method === "PUT" && req.url === "/latest/api/token") return res.end("e2e-token");
        if (req.url === "/latest/user-data" && req.headers["x-aws-ec2-metadata-token"] === "e2e-token") return res.end("#cloud-config\nhostname: core-imds\n");
        res.statusCode = 401;
        res.end();
      });
      port = await freePort();
      await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it("reads user data with the IMDSv2 token flow through QEMU's guest forwarding", async () => {
      // guestfwd's address must lie inside slirp's network, and a "tcp:" target is one connection for
      // the VM's lifetime while IMDSv2 needs two: so a per-connection relay (cmd:) to the test's server.
      const relay = path.join(dir, "relay.cjs");
      await writeFile(relay, 'const s = require("net").connect(Number(process.argv[3]), process.argv[2]); process.stdin.pipe(s); s.pipe(process.stdout); s.on("close", () => process.exit(0)); s.on("error", () => process.exit(1));\n');
      const vm = await launch("imds", {
        netArgs: ["-netdev", `user,id=n0,restrict=on,net=169.254.169.0/24,host=169.254.169.2,dhcpstart=169.254.169.15,guestfwd=tcp:169.254.169.254:80-cmd:${process.execPath} ${relay} 127.0.0.1 ${port}`,
          "-device", "virtio-net-pci,netdev=n0"],
      });
      await vm.waitForConsole("corefleet-provision: user data from EC2 instance metadata http://169.254.169.254", { timeoutMs: BOOT_TIMEOUT });
      await vm.waitForConsole("corefleet-provision: applied host name core-imds", { timeoutMs: BOOT_TIMEOUT });
      expect(requests).toContain("PUT /latest/api/token");
      expect(requests).toContain("GET /latest/user-data");
    });
  });

  it("boots the GPT disk with UEFI firmware (OVMF) through the unified kernel image", async () => {
    const vm = await Vm.launch({
      name: "uefi", workDir: path.join(dir, "uefi"), accelerator, memoryMiB: 1024, cpus: 2, boot: { kind: "uefi" },
      disk: { base: path.join(image, "disk.qcow2") },
      netArgs: ["-netdev", "user,id=n0,restrict=on", "-device", "virtio-net-pci,netdev=n0"],
    });
    running.push(vm);
    await vm.waitForConsole("corefleet-initramfs: / on vda3, /usr on vda2", { timeoutMs: BOOT_TIMEOUT });
    await vm.waitForConsole("corefleet-provision: no user data found", { timeoutMs: BOOT_TIMEOUT });
  });
});

async function retryFetch(url: string): Promise<string> {
  let last: unknown;
  for (let i = 0; i < 60; i++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      if (res.ok) return await res.text();
      last = new Error(`HTTP ${res.status}`);
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`Waiting for ${url} to answer failed after 60 attempts: ${String(last)}`);
}
