import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseDeb822, parseOneLine } from "./apt-sources";
import { pruneStages } from "./build";
import { moduleName, parseModulesDep, resolveModules } from "./initramfs";
import { explainMmdebstrapFailure, mmdebstrapArgs } from "./rootfs";
import { parseDpkgStatus } from "./trim";

describe("apt sources of the host", () => {
  it("reads suites and components from deb822 and one-line files, skipping deb-src and disabled entries", () => {
    const deb822 = "Types: deb deb-src\nURIs: http://archive.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main contrib\n\nTypes: deb\nEnabled: no\nSuites: sid\n";
    expect(parseDeb822(deb822)).toEqual([{ suites: ["bookworm", "bookworm-updates"], components: ["main", "contrib"] }]);
    expect(parseOneLine("# comment\ndeb-src http://a.invalid/ bookworm main\ndeb [arch=amd64] http://a.invalid/ bookworm main non-free\n")).toEqual([
      { suites: ["bookworm"], components: ["main", "non-free"] },
    ]);
  });
});

describe("mmdebstrap", () => {
  it("shares the .deb cache through sync-in/sync-out hooks and passes the host's source files", () => {
    const args = mmdebstrapArgs({ target: "/t", packages: ["b", "a"], sources: { files: ["/etc/apt/sources.list.d/x.sources"], content: "", suite: "bookworm", components: ["main"] }, suite: "bookworm", debCache: "/c", epoch: 0 });
    expect(args).toContain("--include=a,b");
    expect(args).toContain("--setup-hook=sync-in /c /var/cache/apt/archives/");
    expect(args).toContain("--customize-hook=sync-out /var/cache/apt/archives /c");
    expect(args.slice(-3)).toEqual(["bookworm", "/t", "/etc/apt/sources.list.d/x.sources"]);
  });

  it("explains unknown packages and an unreachable archive", () => {
    expect(explainMmdebstrapFailure("E: Unable to locate package nosuchpkg\n")).toBe(
      'package "nosuchpkg" is not in the archive of the host\'s apt configuration; fix the profile\'s package list',
    );
    expect(explainMmdebstrapFailure("E: Failed to fetch http://x/y  Could not resolve 'x'\n")).toMatch(/^the Debian archive named by the host's apt configuration .* is unreachable/);
    expect(explainMmdebstrapFailure("something else")).toBeUndefined();
  });
});

describe("kernel modules for the initramfs", () => {
  const dep = parseModulesDep([
    "kernel/drivers/virtio/virtio_ring.ko:",
    "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko",
    "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
    "kernel/drivers/scsi/sd_mod.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko",
    "kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko",
    "kernel/drivers/scsi/scsi_common.ko:",
  ].join("\n"));
  it("orders dependencies before the modules that need them, each once", () => {
    expect(resolveModules(dep, ["virtio_blk", "sd_mod", "virtio-blk"]).map(moduleName)).toEqual(
      ["virtio_ring", "virtio", "virtio_blk", "scsi_common", "scsi_mod", "sd_mod"],
    );
  });
  it("skips built-in modules and rejects unknown ones", () => {
    expect(resolveModules(dep, ["nvme"], new Set(["nvme"]))).toEqual([]);
    expect(() => resolveModules(dep, ["nosuch"])).toThrow('Cannot put kernel module "nosuch" into the initramfs: it is neither in modules.dep nor built in');
  });
});

describe("manifest package list", () => {
  it("lists installed packages with versions, sorted", () => {
    const status = "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13\n\nPackage: bash\nStatus: install ok installed\nVersion: 5.2.15-2\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n";
    expect(parseDpkgStatus(status)).toEqual([{ name: "bash", version: "5.2.15-2" }, { name: "zlib1g", version: "1:1.2.13" }]);
  });
});

describe("package stage cache", () => {
  it("keeps the most recently used stages and removes the older ones", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "corefleet-stages-"));
    try {
      for (const [i, name] of ["rootfs-a", "rootfs-b", "rootfs-c", "rootfs-d"].entries()) {
        await mkdir(path.join(dir, name));
        await writeFile(path.join(dir, name, "done"), "");
        // a used first, d last; then a used again (a cache hit touches its marker).
        const t = new Date(Date.UTC(2025, 0, 1, 0, i));
        await utimes(path.join(dir, name, "done"), t, t);
      }
      const hit = new Date(Date.UTC(2025, 0, 2));
      await utimes(path.join(dir, "rootfs-a", "done"), hit, hit);
      await writeFile(path.join(dir, "unrelated"), "");
      expect(await pruneStages(dir, 2)).toEqual(["rootfs-c", "rootfs-b"]);
      expect((await readdir(dir)).sort()).toEqual(["rootfs-a", "rootfs-d", "unrelated"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
