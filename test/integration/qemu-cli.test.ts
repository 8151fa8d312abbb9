import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../../lib/process/run";

// The real CLI as an operator runs it, with its state in a temp folder.
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function cli(args: string[]) {
  const state = await mkdtemp(path.join(os.tmpdir(), "qemu-cli-"));
  dirs.push(state);
  return run(process.execPath, ["--import", "tsx", path.join(import.meta.dirname, "../../qemu/main.ts"), ...args], {
    env: { ...process.env, XDG_STATE_HOME: state },
    allowFailure: true,
    timeoutMs: 30_000,
  });
}

describe("qemu CLI", () => {
  it("refuses to start without an image and says how to build one", async () => {
    const r = await cli(["up", "--size", "3", "--image", "/nonexistent/image"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('qemu: Cannot start a cluster from /nonexistent/image: disk.qcow2 is missing; build the image with "npx tsx image-builder/main.ts build" (or pass --image)');
  });

  it("says there are no clusters, and names the missing cluster for ssh", async () => {
    expect((await cli(["status"])).stdout).toBe("no clusters\n");
    const r = await cli(["ssh", "1", "--name", "nope"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/qemu: No cluster named "nope" in .*; start one with "up --name nope --size 3"/);
  });

  it("treats down of an unknown cluster as done", async () => {
    const r = await cli(["down", "--name", "ghost"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe("no cluster ghost; removed its leftovers if any\n");
  });

  it("rejects a bad --size", async () => {
    const r = await cli(["up", "--size", "x"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('Invalid --size "x": expected a whole number');
  });
});
