// node-launch (image-builder/overlay/usr/lib/corefleet/node-launch), the script every node program of
// the image starts through, run by sh on this host with a real node, a real launch.cjs bundle and real
// start-up snapshots: one this node can load, and one it refuses the way a guest on another CPU does
// (V8 ties a snapshot to its flags and CPU features; a snapshot built with another V8 flag gets the
// same "built with a different version of V8 or with different V8 configurations" refusal).
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../lib/process/run";
import { buildNodeBundle } from "../../image-builder/bundles";
import { TRACE_ENV } from "../../image-builder/launch-env";

const script = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../image-builder/overlay/usr/lib/corefleet/node-launch");
let top: string;
let launcher: string;

// Stands in for fleetctl.cjs (node-launch's probe runs `fleetctl.cjs --version`) and for any bundle.
const BUNDLE = `"use strict";
const args = process.argv.slice(2);
console.log(args[0] === "--version" ? "fleetctl version test" : JSON.stringify({ args }));
`;

beforeAll(async () => {
  top = await mkdtemp(path.join(tmpdir(), "corefleet-node-launch-"));
  launcher = await buildNodeBundle(path.resolve(path.dirname(script), "../../../../launcher.ts"), path.join(top, "launch.cjs"));
});
afterAll(async () => {
  await rm(top, { recursive: true, force: true });
});

describe.each([
  { how: "a snapshot this node can load", v8Flags: [] as string[], usable: true },
  { how: "a snapshot made with other V8 settings (as on another CPU)", v8Flags: ["--no-opt"], usable: false },
])("node-launch with $how", ({ v8Flags, usable }) => {
  let lib: string;
  let mark: string;

  beforeAll(async () => {
    lib = path.join(top, usable ? "usable" : "refused");
    await mkdir(lib);
    await run("cp", [launcher, path.join(lib, "launch.cjs")]);
    await writeFile(path.join(lib, "fleetctl.cjs"), BUNDLE);
    await run(process.execPath, [...v8Flags, "--snapshot-blob", path.join(lib, "launch.blob"), "--build-snapshot", path.join(lib, "launch.cjs")], { timeoutMs: 60_000 });
    mark = path.join(lib, "run", "launch-snapshot");
  });

  const launch = (args: string[]) =>
    run("sh", [script, path.join(lib, "fleetctl.cjs"), ...args], {
      env: { ...process.env, COREFLEET_NODE: process.execPath, COREFLEET_LIB: lib, COREFLEET_LAUNCH_MARK: mark, [TRACE_ENV]: "1" },
      allowFailure: true,
      timeoutMs: 30_000,
    });

  it(`runs the bundle ${usable ? "from the snapshot" : "from source, saying why once"}, and remembers the answer`, async () => {
    const first = await launch(["a", "b"]);
    expect(first.exitCode).toBe(0);
    expect(first.stdout.trim()).toBe(JSON.stringify({ args: ["a", "b"] }));
    expect(await readdir(path.dirname(mark))).toEqual([usable ? "launch-snapshot.ok" : "launch-snapshot.unusable"]);
    if (usable) {
      expect(first.stderr).toMatch(/launch: fleetctl\.cjs: node started from the start-up snapshot in \d+ ms/);
      expect(first.stderr).not.toContain("cannot load");
    } else {
      expect(first.stderr).toContain("corefleet: node cannot load its start-up snapshot on this CPU");
      expect(first.stderr).toMatch(/launch: fleetctl\.cjs: node started (from source )?in \d+ ms/);
    }
    // Later runs trust the mark: no second probe, no second warning.
    const second = await launch(["--version"]);
    expect(second.exitCode).toBe(0);
    expect(second.stdout.trim()).toBe("fleetctl version test");
    expect(second.stderr).not.toContain("cannot load");
    expect(second.stderr).toMatch(usable ? /from the start-up snapshot/ : /node started (from source )?in/);
  });
});
