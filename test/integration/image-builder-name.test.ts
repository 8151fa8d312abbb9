/**
 * image-builder container --name: the final image name (--name, else image.json's, else the
 * directory's) is checked once, before any work. The CLI runs with a PATH holding only node, so a
 * check that came too late would fail on a missing mmdebstrap rather than build anything.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nodeOnlyImageBuilder, type NodeOnlyImageBuilder } from "./image-builder-cli";

let ib: NodeOnlyImageBuilder;
let dir = "";
const cli = (args: string[]): ReturnType<NodeOnlyImageBuilder["cli"]> => ib.cli(args);

beforeAll(async () => {
  ib = await nodeOnlyImageBuilder("corefleet-ib-name-test-");
  dir = ib.dir;
  await mkdir(path.join(dir, "Bad_Name"));
  await writeFile(path.join(dir, "Bad_Name/image.json"), JSON.stringify({ packages: ["busybox-static"], cmd: ["/bin/true"] }));
  await mkdir(path.join(dir, "out-dir"));
});
afterAll(async () => {
  await ib?.cleanup();
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
