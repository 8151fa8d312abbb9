/**
 * fleetctl reading local unit files, through the real CLI against a real etcd and fleetd API: a file
 * whose Name=Value lines come before any [Section] header says which line is wrong and why (it said
 * "an empty unit file"), and nothing is written.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { etcdFixture } from "../helpers/fleet-fixture";
import { FleetctlEnv } from "./fleetctl-harness";

const M1 = "c1b2c3d4e5f60718293a4b5c6d7e8f91";

describe("fleetctl and unit files without a section header", () => {
  const etcd = etcdFixture();
  let env: FleetctlEnv;

  beforeAll(async () => {
    env = await FleetctlEnv.start(etcd(), [M1]);
  });
  afterAll(async () => {
    await env?.close();
  });

  it("names the first option line before any [Section] and says an option must follow a section header", async () => {
    await writeFile(join(env.dir, "fine.service"), "[Service]\nExecStart=/bin/true\n");
    await writeFile(join(env.dir, "headless.service"), "# web server\n\nDescription=web\nExecStart=/bin/sleep 1000\n");
    expect(await env.run(["start", "fine.service", "headless.service"])).toEqual({
      code: 1,
      stdout: "",
      stderr:
        'Error creating units: failed getting Unit(headless.service) from file: line 3: "Description=web" comes before any [Section] header; an option must follow a section header such as [Unit] or [Service], so this file has no options (text before the first section is ignored)\n',
    });
    expect(await env.cluster.registry.getUnit("fine.service")).toBeUndefined();
    expect(await env.cluster.registry.getUnit("headless.service")).toBeUndefined();
    // submit reads files the same way; a file with only comments and blank lines is still "empty".
    const submitted = await env.run(["submit", "headless.service"]);
    expect(submitted.code).toBe(1);
    expect(submitted.stderr).toContain('failed getting Unit(headless.service) from file: line 3: "Description=web" comes before any [Section] header');
    await writeFile(join(env.dir, "comments.service"), "# nothing here\n\n; nor here\n");
    expect((await env.run(["submit", "comments.service"])).stderr).toBe(
      "Error creating units: failed getting Unit(comments.service) from file: it has no [Section] and no Key=Value lines (an empty unit file)\n",
    );
  });

  it("still accepts text before the first section when sections follow, as fleet does (same options, same hash)", async () => {
    await writeFile(join(env.dir, "preamble.service"), "Stray=line\n[Service]\nExecStart=/bin/true\n");
    const r = await env.run(["submit", "preamble.service"]);
    expect(r).toEqual({ code: 0, stdout: "Unit preamble.service inactive\n", stderr: "" });
    expect((await env.run(["cat", "preamble.service"])).stdout).toBe("[Service]\nExecStart=/bin/true\n");
  });
});
