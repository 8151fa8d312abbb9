import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { upCluster, type UpOptions } from "./cluster-up";

describe("up checks its options before it creates anything", () => {
  let dir: string;
  let root: string;
  let image: string;
  let emptyImage: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "qemu-up-"));
    root = path.join(dir, "clusters");
    image = path.join(dir, "image");
    emptyImage = path.join(dir, "no-image");
    await mkdir(image);
    await mkdir(emptyImage);
    for (const f of ["disk.qcow2", "vmlinuz", "initramfs.img", "cmdline.txt"]) await writeFile(path.join(image, f), "");
    await writeFile(path.join(dir, "key.pub"), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB operator@host\n");
    await writeFile(path.join(dir, "id_ed25519"), "-----BEGIN OPENSSH PRIVATE KEY-----\nxxx\n-----END OPENSSH PRIVATE KEY-----\n");
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  // An image folder without the image: the old code got past option checks to this message.
  const up = (o: Partial<UpOptions>) => upCluster({ root, name: "nope", size: 1, imageDir: emptyImage, accelerator: "tcg", log: () => undefined, ...o });

  it("names the bad option (not the image, probe or an ENOENT) and writes no state", async () => {
    const cases: [Partial<UpOptions>, string][] = [
      [{ publicKeyFile: "/nonexistent" }, "Cannot read --public-key /nonexistent"],
      [{ publicKeyFile: path.join(dir, "id_ed25519") }, "it is not an OpenSSH public key"],
      [{ size: 0 }, "Invalid --size 0: use a whole number from 1 to 50 machines"],
      [{ size: 51 }, "Invalid --size 51"],
      [{ memoryMiB: 0 }, "Invalid --memory 0: use a whole number from 256 to 262144 MiB"],
      [{ cpus: 0 }, "Invalid --cpus 0"],
      [{ timeoutS: 0 }, "Invalid --timeout 0"],
      [{ staggerMs: -1 }, "Invalid --stagger -1"],
      [{ agentTtl: "0" }, 'Invalid --agent-ttl "0": use a Go duration of at least 1s'],
      [{ agentTtl: "thirty" }, 'Invalid --agent-ttl "thirty"'],
      [{ metadata: "2:zone=a" }, "machine 2 does not exist in a cluster of 1"],
    ];
    for (const [o, message] of cases) await expect(up(o), JSON.stringify(o)).rejects.toThrow(message);
    await expect(readdir(root)).rejects.toThrow("ENOENT");
    // Good options get as far as the image check.
    await expect(up({ publicKeyFile: path.join(dir, "key.pub"), agentTtl: "1m30s", memoryMiB: 896, cpus: 2 })).rejects.toThrow("disk.qcow2 is missing");
  });

  it("removes what a failed up created, so a retry is not refused as 'already exists'", async () => {
    // Aborted: ensureClusterKeys fails after cluster.json was written, before any process is started.
    const signal = AbortSignal.abort(new Error("cancelled"));
    await expect(up({ imageDir: image, signal })).rejects.toThrow("cancelled");
    await expect(readdir(root)).resolves.toEqual([]);
    await expect(up({ imageDir: image, signal })).rejects.toThrow("cancelled");
  });

  it("explains a folder left by an up that was killed before it created machines", async () => {
    await mkdir(path.join(root, "nope"), { recursive: true });
    await writeFile(path.join(root, "nope", "cluster.json"), JSON.stringify({ name: "nope", netns: "corefleet-nope", machines: [] }));
    await expect(up({ imageDir: image })).rejects.toThrow('a previous "up" stopped before it created any machine and left its folder; remove it with "down --name nope", then retry');
  });
});
