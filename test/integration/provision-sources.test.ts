import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { run } from "../../lib/process/run";
import { configDriveSource, findUserData, fwCfgSource, imdsSource, parseBlkidExport, userspaceReader } from "../../image-builder/provision/sources";

// This build host's kernel has neither iso9660 nor vfat, so the drive is read in user space here;
// the image mounts it (exercised by test/e2e/image-boot.test.ts).
const reader = userspaceReader;

const userData = "#cloud-config\nhostname: from-drive\n";
let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "corefleet-sources-"));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe("config drive", () => {
  it("reads openstack/latest/user_data from a real ISO9660 image labelled config-2", async () => {
    const tree = path.join(dir, "iso-tree");
    await mkdir(path.join(tree, "openstack/latest"), { recursive: true });
    await writeFile(path.join(tree, "openstack/latest/user_data"), userData);
    const iso = path.join(dir, "config.iso");
    await run("xorriso", ["-as", "mkisofs", "-quiet", "-V", "config-2", "-J", "-R", "-o", iso, tree]);
    const found = await configDriveSource({ devices: [iso], reader }).read();
    expect(found?.text).toBe(userData);
    expect(found?.source).toBe(`config drive ${iso} (config-2:/openstack/latest/user_data)`);
  });

  it("reads user-data from a real FAT image labelled cidata", async () => {
    const img = path.join(dir, "cidata.img");
    await run("mkfs.vfat", ["-n", "CIDATA", "-C", img, "2048"]);
    await writeFile(path.join(dir, "user-data"), userData);
    await run("mcopy", ["-i", img, path.join(dir, "user-data"), "::user-data"], { env: { ...process.env, MTOOLS_SKIP_CHECK: "1" } });
    const found = await configDriveSource({ devices: [img], reader }).read();
    expect(found?.text).toBe(userData);
  });

  it("finds nothing on a drive with another label", async () => {
    const img = path.join(dir, "other.img");
    await run("mkfs.vfat", ["-n", "DATA", "-C", img, "2048"]);
    expect(await configDriveSource({ devices: [img], reader }).read()).toBeUndefined();
  });

  it("parses blkid's export format", () => {
    expect(parseBlkidExport("DEVNAME=/dev/vdb\nLABEL=config-2\nTYPE=iso9660\n\nDEVNAME=/dev/vda3\nTYPE=ext4\n")).toEqual([
      { devname: "/dev/vdb", label: "config-2", type: "iso9660" }, { devname: "/dev/vda3", type: "ext4" },
    ]);
  });
});

describe("fw_cfg", () => {
  it("reads opt/corefleet/user-data from the fw_cfg sysfs tree and reports absence as none", async () => {
    const sysfs = path.join(dir, "fw_cfg");
    await mkdir(path.join(sysfs, "by_name/opt/corefleet/user-data"), { recursive: true });
    await writeFile(path.join(sysfs, "by_name/opt/corefleet/user-data/raw"), userData);
    expect((await fwCfgSource({ sysfs }).read())?.text).toBe(userData);
    expect(await fwCfgSource({ sysfs: path.join(dir, "nothing") }).read()).toBeUndefined();
  });
});

describe("EC2 instance metadata (IMDSv2) served on loopback", () => {
  let server: Server;
  let base = "";
  let body: string | undefined = userData;
  const seen: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.method === "PUT" && req.url === "/latest/api/token" && req.headers["x-aws-ec2-metadata-token-ttl-seconds"] === "300") {
        res.end("tok-123");
      } else if (req.method === "GET" && req.url === "/latest/user-data") {
        if (req.headers["x-aws-ec2-metadata-token"] !== "tok-123") { res.statusCode = 401; res.end(); return; }
        if (body === undefined) { res.statusCode = 404; res.end(); return; }
        res.end(body);
      } else {
        res.statusCode = 400;
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const addr = server.address();
    base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("gets a token, then the user data with it", async () => {
    body = userData;
    seen.length = 0;
    const found = await imdsSource({ baseUrl: base }).read();
    expect(found?.text).toBe(userData);
    expect(seen).toEqual(["PUT /latest/api/token", "GET /latest/user-data"]);
  });

  it("treats 404 as no user data, and an unreachable service as an error after its timeout", async () => {
    body = undefined;
    expect(await imdsSource({ baseUrl: base }).read()).toBeUndefined();
    await expect(imdsSource({ baseUrl: "http://127.0.0.1:9", timeoutMs: 1200 }).read()).rejects.toThrow(
      /^no answer from the instance metadata service at http:\/\/127.0.0.1:9 within 1200 ms/,
    );
  });

  it("is used only when the earlier sources have nothing", async () => {
    body = "#cloud-config\nhostname: from-imds\n";
    const r = await findUserData([fwCfgSource({ sysfs: path.join(dir, "nothing") }), imdsSource({ baseUrl: base })]);
    expect(r.data?.text).toBe(body);
    expect(r.notes).toEqual(["fw_cfg: none"]);
  });
});
