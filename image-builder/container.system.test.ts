// Root, mmdebstrap and podman: the system tier.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { run } from "../lib/process/run";
import { readHostAptSources } from "./apt-sources";
import { debCacheDir } from "./cache-dir";
import { buildContainerImage } from "./container";
import { loadImageDir } from "./image-file";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "corefleet-container-test-"));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe("container images", () => {
  it("builds an archive from Debian packages that podman loads under its name, byte-identical when rebuilt", async () => {
    const sources = await readHostAptSources(dir);
    const spec = { name: "hello", packages: ["busybox-static"], cmd: ["/bin/busybox", "echo", "hello"] };
    const opts = { sources, suite: sources.suite, debCache: debCacheDir(), epoch: 1735689600 };
    const a = await buildContainerImage(spec, { ...opts, out: path.join(dir, "a.tar") });
    await buildContainerImage(spec, { ...opts, out: path.join(dir, "b.tar") });
    expect(a.ref).toBe("localhost/hello:latest");
    const sum = async (f: string): Promise<string> => (await run("sha256sum", [f])).stdout.split(" ")[0] ?? "";
    expect(await sum(path.join(dir, "a.tar"))).toBe(await sum(path.join(dir, "b.tar")));
    const store = ["--root", path.join(dir, "storage"), "--runroot", path.join(dir, "run"), "--storage-driver", "vfs"];
    await run("podman", [...store, "load", "-q", "-i", path.join(dir, "a.tar")]);
    const cmd = await run("podman", [...store, "image", "inspect", "--format", "{{json .Config.Cmd}}", "localhost/hello:latest"]);
    expect(JSON.parse(cmd.stdout)).toEqual(["/bin/busybox", "echo", "hello"]);
  });

  it("builds the web image directory (units/web) to the same digest twice; podman sees its files, port and environment", async () => {
    const sources = await readHostAptSources(dir);
    const opts = { sources, suite: sources.suite, debCache: debCacheDir(), epoch: 1735689600 };
    const spec = await loadImageDir("units/web");
    const a = await buildContainerImage(spec, { ...opts, out: path.join(dir, "web-a.tar") });
    const b = await buildContainerImage(await loadImageDir("units/web"), { ...opts, out: path.join(dir, "web-b.tar") });
    expect(b.digest).toBe(a.digest);
    const store = ["--root", path.join(dir, "storage"), "--runroot", path.join(dir, "run"), "--storage-driver", "vfs"];
    await run("podman", [...store, "load", "-q", "-i", path.join(dir, "web-a.tar")]);
    const inspect = await run("podman", [...store, "image", "inspect", "--format", "{{json .Config.ExposedPorts}} {{json .Config.Env}} {{.Digest}}", "localhost/web:latest"]);
    expect(inspect.stdout).toContain('{"80/tcp":{}}');
    expect(inspect.stdout).toContain("PORT=80");
    expect(inspect.stdout.trim().endsWith(a.digest)).toBe(true);
    const mount = await run("podman", [...store, "image", "mount", "localhost/web:latest"]);
    const page = await run("cat", [path.join(mount.stdout.trim(), "srv/web/index.html")]);
    await run("podman", [...store, "image", "unmount", "localhost/web:latest"]);
    expect(page.stdout).toContain("corefleet web on @HOST@");
  });
});
