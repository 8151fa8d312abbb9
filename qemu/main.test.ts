import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
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
