/**
 * `up` that fails after it changed the host (network namespace, bridge, taps, the SSH forwarder) but
 * before any machine is launched removes all of it, so a retry starts clean and nothing is left
 * running. The failure: an image whose disk cannot be read (a folder named disk.qcow2), which `up`
 * finds only once the network and the forwarder exist. Real `ip netns` and a real forwarder process;
 * no QEMU machine is started.
 */
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../lib/process/run";
import { clusterPaths } from "../../qemu/cluster-layout";
import { upCluster } from "../../qemu/cluster-up";

const NAME = `upfail${process.pid}`;
const NETNS = `corefleet-${NAME}`;

const namespaces = async (): Promise<string[]> => (await run("ip", ["netns", "list"])).stdout.split("\n").map((l) => l.split(" ")[0] ?? "");
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("up that fails once the network exists", () => {
  let dir = "";
  let root = "";
  let image = "";
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "qemu-up-cleanup-"));
    root = path.join(dir, "clusters");
    image = path.join(dir, "image");
    await mkdir(path.join(image, "disk.qcow2"), { recursive: true });
    for (const f of ["vmlinuz", "initramfs.img", "cmdline.txt"]) await writeFile(path.join(image, f), "");
  });
  afterAll(async () => {
    if ((await namespaces()).includes(NETNS)) await run("ip", ["netns", "del", NETNS]);
    await rm(dir, { recursive: true, force: true });
  });

  it("removes the namespace, stops the forwarder and deletes the folder; a retry fails the same way, not as 'already exists'", async () => {
    const logged: string[] = [];
    let forwarderPid = 0;
    const up = () =>
      upCluster({
        root,
        name: NAME,
        size: 2,
        imageDir: image,
        accelerator: "tcg",
        log: (l) => {
          logged.push(l);
        },
      });
    // While `up` runs, note the forwarder it starts (its pid file) and that the namespace exists.
    let sawNetns = false;
    const watch = setInterval(() => {
      void readFile(clusterPaths(root, NAME).forwarderPid, "utf8").then(
        (t) => (forwarderPid ||= Number(t.trim())),
        () => undefined,
      );
      void namespaces().then((n) => (sawNetns ||= n.includes(NETNS)));
    }, 20);
    try {
      await expect(up()).rejects.toThrow(/disk\.qcow2/);
    } finally {
      clearInterval(watch);
    }
    expect(logged.join("\n")).toContain(`cluster ${NAME}: "up" failed before every machine was launched; removed what it had created`);
    expect(sawNetns, "up got as far as creating the network").toBe(true);
    expect(forwarderPid, "up started the forwarder").toBeGreaterThan(0);
    expect(alive(forwarderPid), `forwarder ${forwarderPid} still running`).toBe(false);
    expect(await namespaces()).not.toContain(NETNS);
    expect(await readdir(root)).toEqual([]);

    await expect(up()).rejects.toThrow(/disk\.qcow2/);
    expect(await namespaces()).not.toContain(NETNS);
    expect(await readdir(root)).toEqual([]);
  });
});
