/**
 * The README's first promise, run the way an operator runs it: `npm start` on this tree (setup, bundle,
 * image kept or rebuilt, a fresh 3-machine cluster, the cluster registry, the web image built and
 * pushed, web@.service submitted, web@1..3 started) exits 0 and shows where web@1..3 run; the commands
 * it prints for the operator work as printed (fleetctl through the tunnel, each web instance's page);
 * and a second `npm start` reuses the running cluster instead of booting another.
 * The cluster has a state folder (XDG_STATE_HOME) and a name of its own, so an operator's "default"
 * cluster is untouched; it is removed at the end.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run, type RunResult } from "../../lib/process/run";
import { repoRoot } from "../../qemu/cluster-fleetctl";
import { clustersRoot } from "../../qemu/cluster-layout";
import { downCluster } from "../../qemu/cluster-down";

const NAME = "npm-start";
const WEB = ["web@1.service", "web@2.service", "web@3.service"];
let stateHome = "";
let env: NodeJS.ProcessEnv = {};

const npmStart = (): Promise<RunResult> =>
  run("npm", ["start"], {
    cwd: repoRoot,
    env,
    timeoutMs: 30 * 60_000,
    allowFailure: true,
    onStderr: (c) => process.stderr.write(c),
  });

/** Runs one line that `npm start` printed for the operator, as printed, in a shell with the same environment. */
const shell = (line: string): Promise<RunResult> => run("bash", ["-c", line], { cwd: repoRoot, env, timeoutMs: 120_000, allowFailure: true });

/** The rows of the `fleetctl list-units` table that `npm start` prints: unit → machine, active, sub. */
function listedUnits(stdout: string): Map<string, { machine: string; active: string; sub: string }> {
  const lines = stdout.split("\n");
  const start = lines.indexOf("$ fleetctl list-units");
  expect(start, `npm start printed no list-units table:\n${stdout}`).toBeGreaterThanOrEqual(0);
  const header = lines[start + 1]?.trim().split(/\s+/);
  expect(header).toEqual(["UNIT", "MACHINE", "ACTIVE", "SUB"]);
  const rows = new Map<string, { machine: string; active: string; sub: string }>();
  for (const line of lines.slice(start + 2)) {
    const cells = line.trim().split(/\s+/);
    if (cells.length !== 4) break;
    const [unit, machine, active, sub] = cells as [string, string, string, string];
    rows.set(unit, { machine, active, sub });
  }
  return rows;
}

describe.sequential("npm start (the README's main job)", () => {
  let first: RunResult | undefined;

  beforeAll(async () => {
    stateHome = await mkdtemp(path.join(os.tmpdir(), "corefleet-npm-start-"));
    env = { ...process.env, XDG_STATE_HOME: stateHome, COREFLEET_CLUSTER: NAME };
    first = await npmStart();
  });

  afterAll(async () => {
    if (stateHome === "") return;
    await downCluster(clustersRoot(env), NAME, (l) => process.stderr.write(`${l}\n`));
    await rm(stateHome, { recursive: true, force: true });
  });

  it("boots the cluster, starts web@1..3 on three machines and shows where they run", () => {
    if (!first) throw new Error("npm start did not run");
    expect(first.exitCode, `npm start failed:\n${first.stderr.slice(-4000)}`).toBe(0);
    const rows = listedUnits(first.stdout);
    for (const unit of WEB) expect(rows.get(unit), `${unit} in:\n${first.stdout}`).toMatchObject({ active: "active", sub: "running" });
    // Conflicts=web@*.service: one instance per machine.
    expect(new Set(WEB.map((u) => rows.get(u)?.machine)).size).toBe(3);
    expect(first.stdout).toContain(`The cluster "${NAME}" is up and web@1..3 are active`);
  });

  it("prints commands that work as printed: each web instance's page, and fleetctl through the tunnel", async () => {
    if (!first) throw new Error("npm start did not run");
    const pages = first.stdout.split("\n").filter((l) => l.includes("ip netns exec") && l.includes("fetch("));
    expect(pages).toHaveLength(3);
    const hosts = new Set<string>();
    for (const line of pages) {
      const r = await shell(line.replace(/#.*$/, "").trim());
      expect(r.exitCode, `${line}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toContain("web image version 1");
      hosts.add(/corefleet web on (\S+)<\/h1>/.exec(r.stdout)?.[1] ?? "");
    }
    expect(hosts.size).toBe(3);

    const fleetctlLine = first.stdout.split("\n").find((l) => l.includes("qemu/main.ts env") && l.includes("list-machines"));
    expect(fleetctlLine, first.stdout).toBeDefined();
    const machines = await shell(fleetctlLine?.trim() ?? "");
    expect(machines.exitCode, machines.stderr).toBe(0);
    expect(machines.stdout.trim().split("\n")).toHaveLength(4); // the header and three machines
  });

  it("reuses the running cluster when run again", async () => {
    const again = await npmStart();
    expect(again.exitCode, again.stderr.slice(-4000)).toBe(0);
    expect(again.stderr).toContain(`demo: reusing the running cluster "${NAME}" (3 machines)`);
    const rows = listedUnits(again.stdout);
    for (const unit of WEB) expect(rows.get(unit)).toMatchObject({ active: "active", sub: "running" });
  });
});
