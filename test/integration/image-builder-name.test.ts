/**
 * image-builder container --name: the final image name (--name, else image.json's, else the
 * directory's) is checked once, before any work. The CLI runs with a PATH holding only node, so a
 * check that came too late would fail on a missing mmdebstrap rather than build anything.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../lib/process/run";

const repoRoot = path.resolve(__dirname, "../..");
let dir = "";
let bin = "";

/** Runs the image-builder CLI with only node on PATH. */
function cli(args: string[]): Promise<{ exitCode: number | null; stderr: string }> {
  return run(process.execPath, [path.join(repoRoot, "node_modules/tsx/dist/cli.mjs"), path.join(repoRoot, "image-builder/main.ts"), ...args],
    { allowFailure: true, env: { PATH: bin, HOME: dir }, timeoutMs: 60_000 });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "corefleet-ib-name-test-"));
  bin = path.join(dir, "bin");
  await mkdir(bin);
  await symlink(process.execPath, path.join(bin, "node"));
  await mkdir(path.join(dir, "Bad_Name"));
  await writeFile(path.join(dir, "Bad_Name/image.json"), JSON.stringify({ packages: ["busybox-static"], cmd: ["/bin/true"] }));
  await mkdir(path.join(dir, "out-dir"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("image-builder container --name", () => {
  it("refuses a name with a slash up front, saying what a name may hold (not a raw ENOENT)", async () => {
    const r = await cli(["container", "--name", "a/b", "--packages", "busybox-static", "--cmd", "/bin/true"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe('image-builder: Invalid image name "a/b" (--name): an image name is lowercase letters and digits, separated by . _ or - (no /)\n');
  }, 60_000);

  it("lets --name win over an image directory whose own name is not an image name", async () => {
    // The --out directory stops the command before building: the error shows the name that was accepted.
    const out = path.join(dir, "out-dir");
    const r = await cli(["container", path.join(dir, "Bad_Name"), "--name", "good", "--out", out]);
    expect(r.stderr).toBe(`image-builder: Cannot build container image "good": --out "${out}" is a directory, but it names the archive file to write; give a file, e.g. --out ${path.join(out, "good.oci.tar")}\n`);
  }, 60_000);

  it("still refuses the directory's name when no --name is given", async () => {
    const r = await cli(["container", path.join(dir, "Bad_Name"), "--out", path.join(dir, "out-dir")]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^image-builder: Invalid build file ".*Bad_Name\/image\.json": the directory name must be an image name/);
  }, 60_000);
});
