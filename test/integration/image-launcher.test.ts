// launch.cjs (image-builder/launcher.ts) as the image runs it: bundled the way the image build does,
// run by a real node on a real bundle, from source and from a start-up snapshot of itself, writing,
// requiring and falling back from its V8 code cache. (The image build checks the snapshot and caches
// with the image's node; the boot test checks that the guest starts provisioning and fleetd with them.)
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../lib/process/run";
import { buildNodeBundle } from "../../image-builder/bundles";
import { launchCommand } from "../../image-builder/code-cache";
import { CACHE_UNUSABLE_EXIT, CODE_CACHE_ENV } from "../../image-builder/launch-env";

const here = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../image-builder");
let top: string;
let launcher: string;

// A bundle that reports what it sees as the main module, then exits with a status from its arguments.
const BUNDLE = `#!/usr/bin/env node
"use strict";
const [, self, ...args] = process.argv;
function square(n) { return n * n; }
console.log(JSON.stringify({ self, args, isMain: require.main === module, filename: __filename, dirname: __dirname,
  squares: [1, 2, 3].map(square), builtin: typeof require("node:path").join }));
process.exitCode = Number(args.find((a) => a.startsWith("--exit="))?.slice(7) ?? 0);
`;

beforeAll(async () => {
  top = await mkdtemp(path.join(tmpdir(), "corefleet-launch-"));
  launcher = await buildNodeBundle(path.join(here, "launcher.ts"), path.join(top, "launch.cjs"));
});
afterAll(async () => {
  await rm(top, { recursive: true, force: true });
});

it("the provisioning service starts its bundle the way the image's commands do", async () => {
  const unit = await readFile(path.join(here, "overlay/usr/lib/systemd/system/corefleet-provision.service"), "utf8");
  expect(unit).toContain(`\nExecStart=${launchCommand("provision.cjs").join(" ")}\n`);
});

describe.each([
  { how: "node launch.cjs BUNDLE", snapshot: false },
  { how: "node --snapshot-blob launch.blob BUNDLE (start-up snapshot)", snapshot: true },
])("$how", ({ snapshot }) => {
  let dir: string;
  let bundle: string;
  let nodeArgs: string[];

  async function launch(args: string[], mode?: "write" | "require", extraEnv: Record<string, string> = {}): Promise<{ exitCode: number | null; out: Record<string, unknown> | undefined; stderr: string }> {
    const env = { ...process.env, ...extraEnv };
    delete env[CODE_CACHE_ENV];
    if (mode) env[CODE_CACHE_ENV] = mode;
    const r = await run(process.execPath, [...nodeArgs, bundle, ...args], { env, allowFailure: true, timeoutMs: 30_000 });
    const line = r.stdout.trim();
    return { exitCode: r.exitCode, out: line ? (JSON.parse(line) as Record<string, unknown>) : undefined, stderr: r.stderr };
  }

  beforeAll(async () => {
    dir = path.join(top, snapshot ? "snapshot" : "source");
    await mkdir(dir);
    bundle = path.join(dir, "app.cjs");
    await writeFile(bundle, BUNDLE, { mode: 0o755 });
    if (snapshot) {
      const blob = path.join(dir, "launch.blob");
      await run(process.execPath, ["--snapshot-blob", blob, "--build-snapshot", launcher], { timeoutMs: 60_000 });
      nodeArgs = ["--snapshot-blob", blob];
    } else {
      nodeArgs = [launcher];
    }
  });

    it("runs a bundle as node would run it directly (argv, main module, file names, exit status)", async () => {
      const r = await launch(["a", "--exit=3"]);
      expect(r.exitCode).toBe(3);
      expect(r.out).toEqual({ self: bundle, args: ["a", "--exit=3"], isMain: true, filename: bundle, dirname: dir, squares: [1, 4, 9], builtin: "function" });
    });

    it("without a cache: runs, but COREFLEET_CODE_CACHE=require refuses before running the bundle", async () => {
      await rm(`${bundle}.cache`, { force: true });
      expect((await launch([])).exitCode).toBe(0);
      const r = await launch([], "require");
      expect(r.exitCode).toBe(CACHE_UNUSABLE_EXIT);
      expect(r.out).toBeUndefined();
      expect(r.stderr).toContain("missing");
    });

    it("writes a cache that V8 then accepts, and the bundle behaves the same with it", async () => {
      const written = await launch(["x"], "write");
      expect(written.exitCode).toBe(0);
      expect((await stat(`${bundle}.cache`)).size).toBeGreaterThan(0);
      const cached = await launch(["x"], "require");
      expect(cached.exitCode).toBe(0);
      expect(cached.out).toEqual(written.out);
      expect(await readdir(dir)).not.toContain("app.cjs.cache.tmp");
      const traced = await launch(["x"], undefined, { COREFLEET_LAUNCH_TRACE: "1" });
      const from = snapshot ? "the start-up snapshot" : "source";
      expect(traced.stderr).toMatch(new RegExp(`^launch: app\\.cjs: node started from ${from} in \\d+ ms, compiled in \\d+ ms \\(code cache used\\), loaded in \\d+ ms\n$`));
    });

    it("a cache made for other source is rejected, and the bundle still runs from source", async () => {
      await launch([], "write");
      const cache = await readFile(`${bundle}.cache`);
      await writeFile(bundle, BUNDLE.replace("n * n", "n * n * 1 + 0"));
      await writeFile(`${bundle}.cache`, cache);
      const r = await launch(["y"]);
      expect(r.exitCode).toBe(0);
      expect(r.out?.squares).toEqual([1, 4, 9]);
      const required = await launch(["y"], "require");
      expect(required.exitCode).toBe(CACHE_UNUSABLE_EXIT);
      expect(required.stderr).toContain("rejected");
      await writeFile(bundle, BUNDLE);
    });
});
