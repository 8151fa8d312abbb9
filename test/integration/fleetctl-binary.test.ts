/**
 * The built fleetctl (dist/fleetctl.cjs, what the image ships) as a separate process: help, version,
 * exit codes for bad flags and unknown commands, the unreachable-endpoint hint, and a real request to
 * a fleetd API over its unix socket. Builds the bundle first (`npm run build`'s script).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pkg from "../../package.json";
import { run } from "../../lib/process/run";
import { createApiServer, type ApiServer } from "../../fleetd/api";
import type { ApiBackend } from "../../fleetd/api";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = join(ROOT, "dist", "fleetctl.cjs");

function fleetctl(args: string[], env: Record<string, string> = {}): ReturnType<typeof run> {
  return run(process.execPath, [BIN, ...args], { allowFailure: true, timeoutMs: 30_000, env: { PATH: process.env.PATH ?? "", HOME: tmpdir(), ...env } });
}

describe("the built fleetctl binary", () => {
  let dir: string;
  let api: ApiServer;

  beforeAll(async () => {
    await run(process.execPath, [join(ROOT, "scripts", "bundle.mjs")], { cwd: ROOT, timeoutMs: 120_000 });
    dir = await mkdtemp(join(tmpdir(), "fleetctl-bin-"));
    // A backend with one machine behind the real API server: enough to see the process talk HTTP.
    const backend: ApiBackend = {
      isRegistered: () => true,
      listMachines: async () => [{ id: "0123456789abcdef0123456789abcdef", primaryIP: "10.1.2.3" }],
      setMachineMetadata: async () => undefined,
      listUnits: async () => [],
      getUnit: async () => undefined,
      createUnit: async () => "created" as const,
      setUnitDesiredState: async () => undefined,
      destroyUnit: async () => false,
      listUnitStates: async () => [],
    };
    api = createApiServer({ backend, version: "0.1.0" });
    await api.listen({ kind: "unix", path: join(dir, "fleet.sock") });
  }, 180_000);

  afterAll(async () => {
    await api?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("prints help with every command and the version section, exit 0", async () => {
    const r = await fleetctl(["help"]);
    expect(r.exitCode).toBe(0);
    for (const c of ["submit", "load", "start", "stop", "unload", "destroy", "restart", "list-machines", "list-units", "list-unit-files", "cat", "status", "journal", "ssh", "version", "fd-forward"]) {
      expect(r.stdout).toContain(`  ${c} `);
    }
    expect(r.stdout).toContain(`VERSION:\n  ${pkg.version}\n`);
    expect((await fleetctl([])).stdout).toBe(r.stdout);
  });

  it("stops quietly with SIGPIPE's status when its reader goes away (| head), as fleet's Go fleetctl", async () => {
    // `true` exits at once, before node has written: every write meets a closed pipe.
    const r = await run("bash", ["-c", `"${process.execPath}" "${BIN}" help | true; echo "status \${PIPESTATUS[0]}"`], { allowFailure: true, timeoutMs: 30_000 });
    expect({ stdout: r.stdout, stderr: r.stderr }).toEqual({ stdout: "status 141\n", stderr: "" });
  });

  it("prints its version", async () => {
    for (const args of [["version"], ["--version"], ["-v"]]) {
      const r = await fleetctl(args);
      expect({ code: r.exitCode, out: r.stdout }).toEqual({ code: 0, out: `fleetctl version ${pkg.version}\n` });
    }
  });

  it("exits non-zero on a bad flag and on an unknown command", async () => {
    const flag = await fleetctl(["list-units", "--no-such-flag"]);
    expect(flag.exitCode).toBe(1);
    expect(flag.stderr).toBe("error: unknown option '--no-such-flag'\n");
    const cmd = await fleetctl(["no-such-command"]);
    expect(cmd.exitCode).toBe(1);
    expect(cmd.stderr).toBe('Unknown command "no-such-command" for "fleetctl"; run "fleetctl help" for the list of commands\n');
    expect(await fleetctl(["help", "no-such-command"])).toMatchObject({ exitCode: 1, stdout: "", stderr: cmd.stderr });
    const scaleHelp = await fleetctl(["help", "scale"]);
    expect(scaleHelp.exitCode).toBe(0);
    expect(scaleHelp.stdout).toContain("Usage: fleetctl scale [options] <template=count>");
  });

  it("explains an unreachable endpoint with fleet's Possible issues hint, exit 1", async () => {
    const sock = join(dir, "missing.sock");
    const r = await fleetctl(["list-machines"], { FLEETCTL_ENDPOINT: `unix://${sock}` });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe(
      [
        `Error retrieving list of active machines from fleet API: GET /fleet/v1/machines?pageSize=65535 via unix://${sock} failed: connect ENOENT ${sock}`,
        "Possible issues:",
        "  fleetd is not running or cannot be reached at the endpoint (check --endpoint / FLEETCTL_ENDPOINT, --tunnel)",
        "  etcd is unhealthy and/or lost quorum",
        "  connection cannot be established to any etcd servers",
        "",
      ].join("\n"),
    );
    const scheme = await fleetctl(["list-units", "--endpoint", "unix://var/run/fleet.sock"]);
    expect(scheme.exitCode).toBe(1);
    expect(scheme.stderr).toContain('unable to connect to host "var" with scheme "unix"');
  });

  it("talks to a fleetd API over its unix socket, accepting a command prefix like fleet", async () => {
    const r = await fleetctl(["list-m", "--no-legend"], { FLEETCTL_ENDPOINT: `unix://${join(dir, "fleet.sock")}` });
    expect({ code: r.exitCode, out: r.stdout, err: r.stderr }).toEqual({ code: 0, out: "01234567...\t10.1.2.3\t-\n", err: "" });
  });
});
