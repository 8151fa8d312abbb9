/**
 * image-builder `build --out` and `container --out`: a path the build would destroy, or cannot write,
 * is refused before any work. The CLI runs with a PATH holding only node, so a check that came too
 * late would fail on a missing mmdebstrap rather than build anything.
 */
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nodeOnlyImageBuilder, type NodeOnlyImageBuilder } from "./image-builder-cli";
import { buildImage, checkOutDir } from "../../image-builder/build";

const repoRoot = path.resolve(__dirname, "../..");
let ib: NodeOnlyImageBuilder;
let dir = "";
const cli = (args: string[]): ReturnType<NodeOnlyImageBuilder["cli"]> => ib.cli(args);

beforeAll(async () => {
  ib = await nodeOnlyImageBuilder("corefleet-ib-out-test-");
  dir = ib.dir;
});
afterAll(async () => {
  await ib?.cleanup();
});

describe("image-builder build --out", () => {
  it("refuses an existing directory that is not a previous image, before any work, and leaves it alone", async () => {
    const out = path.join(dir, "build");
    await mkdir(path.join(out, "containers"), { recursive: true });
    await writeFile(path.join(out, "containers/web.oci.tar"), "keep me");
    // No tools on PATH: a check made after the build host's would fail on those instead.
    await expect(buildImage({ profile: path.join(repoRoot, "image-builder/profiles/corefleet.json"), out, repoRoot, log: () => {}, env: { PATH: "/nonexistent" } }))
      .rejects.toThrow(`Refusing --out "${out}": it holds 1 entry (containers) but no manifest.json, so it is not a previous image, and a build replaces --out as a whole`);
    expect(await readdir(path.join(out, "containers"))).toEqual(["web.oci.tar"]);
    expect((await readdir(dir)).filter((e) => e.startsWith("build."))).toEqual([]);
  });

  it("accepts a missing or empty directory and a previous image; refuses a file", async () => {
    await expect(checkOutDir(path.join(dir, "absent"))).resolves.toBeUndefined();
    await mkdir(path.join(dir, "empty"));
    await expect(checkOutDir(path.join(dir, "empty"))).resolves.toBeUndefined();
    await mkdir(path.join(dir, "image"));
    await writeFile(path.join(dir, "image/manifest.json"), "{}");
    await writeFile(path.join(dir, "image/disk.raw"), "");
    await expect(checkOutDir(path.join(dir, "image"))).resolves.toBeUndefined();
    await writeFile(path.join(dir, "file"), "x");
    await expect(checkOutDir(path.join(dir, "file"))).rejects.toThrow(`Refusing --out "${path.join(dir, "file")}": it exists and is not a directory`);
  });
});

describe("image-builder container --out", () => {
  it("refuses an existing directory up front, naming a file to give instead", async () => {
    const out = path.join(dir, "archives");
    await mkdir(out, { recursive: true });
    const r = await cli(["container", "--name", "web", "--packages", "busybox-static", "--cmd", "/bin/true", "--out", out]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe(`image-builder: Cannot build container image "web": --out "${out}" is a directory, but it names the archive file to write; give a file, e.g. --out ${path.join(out, "web.oci.tar")}\n`);
  }, 60_000);
});
