import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { downCluster } from "./cluster-down";
import { clusterPaths } from "./cluster-layout";
import { createProgram } from "./main";

describe("cluster names are checked by every command", () => {
  let state: string;
  let root: string;
  beforeEach(async () => {
    state = await mkdtemp(path.join(os.tmpdir(), "qemu-main-"));
    root = path.join(state, "corefleet", "clusters");
    for (const n of ["a", "b"]) {
      await mkdir(path.join(root, n), { recursive: true });
      await writeFile(path.join(root, n, "cluster.json"), JSON.stringify({ name: n, netns: `corefleet-${n}`, machines: [] }));
    }
  });
  afterEach(async () => {
    await rm(state, { recursive: true, force: true });
  });

  const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => createProgram(root, env).exitOverride().parseAsync(argv, { from: "user" });

  it("down with an empty COREFLEET_CLUSTER, --name .. or --name '' fails and removes nothing", async () => {
    await expect(parse(["down"], { COREFLEET_CLUSTER: "" })).rejects.toThrow('Invalid cluster name "" from COREFLEET_CLUSTER');
    await expect(parse(["down", "--name", ".."])).rejects.toThrow('Invalid cluster name ".."');
    await expect(parse(["down", "--name", ""])).rejects.toThrow('Invalid cluster name ""');
    await expect(parse(["down", "--name", "../clusters"])).rejects.toThrow("Invalid cluster name");
    expect((await readdir(root)).sort()).toEqual(["a", "b"]);
    expect(await readdir(state)).toEqual(["corefleet"]);
  });

  it("status, ssh, console and env refuse the same names", async () => {
    for (const argv of [["status", "--name", ".."], ["ssh", "1", "--name", ".."], ["console", "1", "--name", "/"], ["env", "--name", "a/../b"]]) {
      await expect(parse(argv), argv.join(" ")).rejects.toThrow("Invalid cluster name");
    }
    await expect(parse(["env"], { COREFLEET_CLUSTER: "" })).rejects.toThrow("from COREFLEET_CLUSTER");
  });

  it("downCluster and the path helpers refuse a name that is not a plain cluster name", async () => {
    for (const bad of ["", ".", "..", "a/..", "/"]) {
      await expect(downCluster(root, bad), JSON.stringify(bad)).rejects.toThrow("Invalid cluster name");
      expect(() => clusterPaths(root, bad)).toThrow("Invalid cluster name");
    }
    expect((await readdir(root)).sort()).toEqual(["a", "b"]);
  });
});

describe("status", () => {
  let root: string;
  let out: string[];
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "qemu-status-"));
    for (const n of ["a", "b", "c"]) await mkdir(path.join(root, n));
    await writeFile(path.join(root, "a", "cluster.json"), JSON.stringify({ name: "a", netns: "corefleet-a", machines: [] }));
    await writeFile(path.join(root, "b", "cluster.json"), "{ not json");
    await writeFile(path.join(root, "c", "cluster.json"), JSON.stringify({ name: "c", netns: "corefleet-c", machines: [] }));
    await mkdir(path.join(root, "empty"));
    out = [];
    vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      out.push(String(chunk));
      return true;
    });
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await rm(root, { recursive: true, force: true });
  });

  const status = (argv: string[], env: NodeJS.ProcessEnv = {}) => createProgram(root, env).exitOverride().parseAsync(["status", ...argv], { from: "user" });

  it("lists every cluster, reports an unreadable cluster.json in its row and skips a folder without one", async () => {
    await status([]);
    const text = out.join("");
    expect(text).toContain("cluster a (corefleet-a)");
    expect(text).toMatch(/cluster b: unreadable: .*JSON.*"down --name b" removes it/);
    expect(text).toContain("cluster c (corefleet-c)");
    expect(text).not.toContain("empty");
  });

  it("fails when asked about the unreadable cluster only", async () => {
    await expect(status(["--name", "b"])).rejects.toThrow('Cannot read cluster "b"');
    await status(["--name", "a"]);
    expect(out.join("")).toBe("cluster a (corefleet-a)\n\n");
  });

  it("honours COREFLEET_CLUSTER like the other commands; --all lists every cluster", async () => {
    await status([], { COREFLEET_CLUSTER: "c" });
    expect(out.join("")).toBe("cluster c (corefleet-c)\n\n");
    out.length = 0;
    await status(["--all"], { COREFLEET_CLUSTER: "c" });
    expect(out.join("")).toContain("cluster a (corefleet-a)");
    await expect(status([], { COREFLEET_CLUSTER: "" })).rejects.toThrow("from COREFLEET_CLUSTER");
  });
});

describe("up --help", () => {
  it("says --size is required and limited to 1-50, and states the other limits up enforces", () => {
    const help = createProgram("/nonexistent", {}).commands.find((c) => c.name() === "up")?.helpInformation() ?? "";
    expect(help).toMatch(/--size <n>\s+number of machines, 1-50 \(required\)/);
    expect(help).toContain("guest memory in MiB, 256-262144");
    expect(help).toContain("vCPUs per guest, 1-64");
    expect(help).toContain("a Go duration of at least 1s");
  });
});
