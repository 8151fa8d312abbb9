/**
 * `fleetctl dashboard` (the real CLI in-process) checks its fleetd endpoint once before it listens: an
 * endpoint that cannot be reached, directly or through `--tunnel` (loopback SSH server, direct-tcpip),
 * fails the command with fleetctl's connection error, and no local port stays open; an endpoint that
 * answers at all (here 401: no token given, the page asks for one) is served.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../helpers/fleet-cluster";
import { etcdFixture } from "../helpers/fleet-fixture";
import { startDashboardCluster } from "./dashboard-harness";
import { fleetctl, type RunResult } from "./fleetctl-harness";
import { startSshServer, writeClientKey, type TestSshServer } from "./fleetctl-ssh-server";

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Whether `port` on 127.0.0.1 can be listened on (nothing holds it). */
async function isFree(port: number): Promise<boolean> {
  const s = createServer();
  return new Promise((resolve) => {
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

const POSSIBLE_ISSUES = [
  "Possible issues:",
  "  fleetd is not running or cannot be reached at the endpoint (check --endpoint / FLEETCTL_ENDPOINT, --tunnel)",
  "  etcd is unhealthy and/or lost quorum",
  "  connection cannot be established to any etcd servers",
].join("\n");

describe("fleetctl dashboard checks its endpoint before it listens", () => {
  const etcd = etcdFixture();
  let dir: string;
  let server: TestSshServer;
  let identity: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "dashboard-forward-"));
    const key = await writeClientKey(dir);
    identity = key.identity;
    server = await startSshServer({ clientPublicKey: key.publicKey, binDir: dir });
  });

  afterAll(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Runs `fleetctl dashboard` on a free port; Ctrl-C after 10 s (a run that listened would wait for it). */
  async function dashboard(argv: readonly string[], env: Record<string, string>): Promise<{ r: RunResult; port: number }> {
    const port = await freePort();
    const ctrlC = new AbortController();
    const timer = setTimeout(() => ctrlC.abort(), 10_000);
    try {
      const r = await fleetctl([...argv, "dashboard", "--local-port", String(port)], { HOME: dir, ...env }, { cwd: dir, signal: ctrlC.signal });
      return { r, port };
    } finally {
      clearTimeout(timer);
    }
  }

  it("fails at once, before listening, when fleetd's unix socket does not exist", async () => {
    const sock = join(dir, "missing.sock");
    const { r, port } = await dashboard([], { FLEETCTL_ENDPOINT: `unix://${sock}` });
    expect(r).toEqual({
      code: 1,
      stdout: "",
      stderr: `Cannot open the dashboard of unix://${sock}: fleetd cannot be reached: GET /fleet/v1/machines?pageSize=65535 via unix://${sock} failed: connect ENOENT ${sock}\n${POSSIBLE_ISSUES}\n`,
    });
    expect(await isFree(port)).toBe(true);
  });

  it("fails through --tunnel when the endpoint behind the tunnel host refuses connections", async () => {
    const dead = await freePort();
    const tunnel = ["--identity-file", identity, "--known-hosts-file", join(dir, "known_hosts"), "--strict-host-key-checking=false",
      "--tunnel", `127.0.0.1:${server.port}`, "--endpoint", `http://127.0.0.1:${dead}`];
    const { r, port } = await dashboard(tunnel, {});
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(new RegExp(`^Cannot open the dashboard of http://127\\.0\\.0\\.1:${dead} via 127\\.0\\.0\\.1:${server.port}: fleetd cannot be reached: GET /fleet/v1/machines\\?pageSize=65535 via http://127\\.0\\.0\\.1:${dead} failed: .+\n`));
    expect(r.stderr).toContain(`\n${POSSIBLE_ISSUES}\n`);
    expect(await isFree(port)).toBe(true);
  });

  it("serves an endpoint that answers, even with 401 (the page asks for the token)", async () => {
    const dc = await startDashboardCluster(etcd(), ["c0ffee00c0ffee00c0ffee00c0ffee00"], {}, "s3cret");
    try {
      const port = await freePort();
      const ctrlC = new AbortController();
      const done = fleetctl(["--endpoint", dc.url.replace(/\/$/, ""), "dashboard", "--local-port", String(port)], { HOME: dir }, { cwd: dir, signal: ctrlC.signal });
      try {
        await waitFor("the dashboard's local port to answer", async () => (await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined))?.ok);
      } finally {
        ctrlC.abort();
      }
      expect(await done).toEqual({ code: 0, stdout: `Dashboard of ${dc.url.replace(/\/$/, "")} at http://127.0.0.1:${port}/\nPress Ctrl-C to stop.\n`, stderr: "" });
    } finally {
      await dc.close();
    }
  });
});
