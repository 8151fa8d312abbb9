/**
 * `fleetctl dashboard`: a local port forwarded to a real fleetd serving its API and dashboard (real
 * etcd, the real CLI in-process), directly to its unix socket and through `--tunnel` (loopback SSH server, direct-tcpip)
 * to its token-guarded TCP listener. The page, the API and the live feed answer through the forward,
 * and the TCP listener's credentials still apply. Before it listens it checks the endpoint once: one
 * that cannot be reached, directly or through `--tunnel`, fails the command with fleetctl's connection
 * error and no local port stays open; one that answers at all (401 without a token: the page asks for
 * one) is served.
 */
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/etcd";
import { etcdFixture } from "../helpers/fleet-fixture";
import { waitFor } from "../helpers/fleet-cluster";
import { startDashboardCluster, type DashboardCluster } from "./dashboard-harness";
import { fleetctl, type RunOptions, type RunResult } from "./fleetctl-harness";
import { startSshServer, writeClientKey, type TestSshServer } from "./fleetctl-ssh-server";

const M1 = "a1b2c3d4e5f60718293a4b5c6d7e8f91";

const POSSIBLE_ISSUES = [
  "Possible issues:",
  "  fleetd is not running or cannot be reached at the endpoint (check --endpoint / FLEETCTL_ENDPOINT, --tunnel)",
  "  etcd is unhealthy and/or lost quorum",
  "  connection cannot be established to any etcd servers",
].join("\n");

/** Whether `port` on 127.0.0.1 can be listened on (nothing holds it). */
async function isFree(port: number): Promise<boolean> {
  const s = createServer();
  return new Promise((resolve) => {
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

describe("fleetctl dashboard", () => {
  const etcd = etcdFixture();
  let dc: DashboardCluster;
  let server: TestSshServer;
  let identity: string;

  beforeAll(async () => {
    dc = await startDashboardCluster(etcd(), [M1], {}, "s3cret");
    const key = await writeClientKey(dc.dir);
    identity = key.identity;
    server = await startSshServer({ clientPublicKey: key.publicKey, binDir: dc.dir });
  });

  afterAll(async () => {
    await server?.close();
    await dc?.close();
  });

  const run = (argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> =>
    fleetctl(argv, { FLEETCTL_ENDPOINT: `unix://${join(dc.dir, `${M1}.sock`)}`, HOME: dc.dir }, { cwd: dc.dir, ...opts });

  /** Runs `fleetctl dashboard` until `body` is done, then Ctrl-C; returns the run's result. */
  async function withDashboard(argv: string[], body: (base: string) => Promise<void>): Promise<RunResult> {
    const port = await freePort();
    const ctrlC = new AbortController();
    const done = run([...argv, "dashboard", "--local-port", String(port)], { signal: ctrlC.signal });
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitFor("the dashboard's local port to answer", async () => (await fetch(`${base}/`).catch(() => undefined))?.ok);
      await body(base);
    } finally {
      ctrlC.abort();
    }
    return done;
  }

  it("forwards a local port to fleetd's unix socket: the page, the API and the live feed answer", async () => {
    const r = await withDashboard([], async (base) => {
      const page = await fetch(`${base}/`);
      expect(page.headers.get("content-type")).toContain("text/html");
      expect(await page.text()).toContain("<title>fleet dashboard</title>");
      const machines = (await (await fetch(`${base}/fleet/v1/machines`)).json()) as { machines: { id: string }[] };
      expect(machines.machines.map((m) => m.id)).toEqual([M1]);
      // DNS rebinding: a page of another site whose name points at 127.0.0.1 sends its own name; the
      // open listener refuses it (actions need no token there), while 127.0.0.1 and localhost work.
      const status = (host: string, browser = true): Promise<number> =>
        new Promise((resolve, reject) => {
          const u = new URL(base);
          const headers = { Host: host, ...(browser ? { "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors" } : {}) };
          const req = request({ host: u.hostname, port: u.port, path: "/fleet/v1/machines", headers }, (res) => (res.resume(), resolve(res.statusCode ?? 0)));
          req.on("error", reject);
          req.end();
        });
      expect([await status("evil.example:8080"), await status("evil.example"), await status(new URL(base).host), await status("localhost:1234"), await status("[::1]:80")]).toEqual([403, 403, 200, 200, 200]);
      // Clients that are not browsers (fleet's fleetctl with --endpoint http://core-1:4001, curl) by any name, as before.
      expect(await status("core-1:4001", false)).toBe(200);
      const feed = await fetch(`${base}/dashboard/v1/events`);
      expect(feed.status).toBe(200);
      const reader = feed.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value as Uint8Array);
      expect(first).toContain(M1);
      await reader.cancel();
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Dashboard of unix://.*${M1}\\.sock at http://127\\.0\\.0\\.1:\\d+/\nPress Ctrl-C to stop\\.\n$`));
  });

  it("through --tunnel to a token-guarded TCP listener: the URL carries the token, requests without it are refused", async () => {
    const tcp = { address: dc.url.replace(/\/$/, "") };
    const tunnel = ["--identity-file", identity, "--known-hosts-file", join(dc.dir, "known_hosts"), "--strict-host-key-checking=false",
      "--tunnel", `127.0.0.1:${server.port}`, "--endpoint", tcp.address, "--api-token", "s3cret"];
    const before = server.tcpipChannels;
    const r = await withDashboard(tunnel, async (base) => {
      expect(await (await fetch(`${base}/`)).text()).toContain("<title>fleet dashboard</title>");
      expect((await fetch(`${base}/fleet/v1/machines`)).status).toBe(401);
      expect((await fetch(`${base}/dashboard/v1/events`)).status).toBe(401);
      const ok = await fetch(`${base}/fleet/v1/machines`, { headers: { authorization: "Bearer s3cret" } });
      expect(ok.status).toBe(200);
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Dashboard of ${tcp.address} via 127.0.0.1:${server.port} at http://127.0.0.1:`);
    expect(r.stdout).toContain("/#token=s3cret\n");
    expect(server.tcpipChannels).toBeGreaterThan(before);
  });

  it("says which port it cannot open", async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const port = (busy.address() as AddressInfo).port;
    try {
      const r = await run(["dashboard", "--local-port", String(port)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`Cannot open the dashboard on 127.0.0.1:${port}: listen EADDRINUSE`);
      expect(r.stderr).toContain("choose another --local-port");
      expect(await run(["dashboard", "--local-port", "70000"])).toMatchObject({ code: 1, stderr: "error: option '--local-port <port>' argument '70000' is invalid. \"70000\" is not a port; use 0 to 65535 (0 = any free port)\n" });
    } finally {
      await new Promise<void>((resolve) => busy.close(() => resolve()));
    }
  });

  /** Runs `fleetctl dashboard` on a free port; Ctrl-C after 10 s (a run that listened would wait for it). */
  async function dashboard(argv: readonly string[], env: Record<string, string>): Promise<{ r: RunResult; port: number }> {
    const port = await freePort();
    const ctrlC = new AbortController();
    const timer = setTimeout(() => ctrlC.abort(), 10_000);
    try {
      const r = await fleetctl([...argv, "dashboard", "--local-port", String(port)], { HOME: dc.dir, ...env }, { cwd: dc.dir, signal: ctrlC.signal });
      return { r, port };
    } finally {
      clearTimeout(timer);
    }
  }

  it("fails at once, before listening, when fleetd's unix socket does not exist", async () => {
    const sock = join(dc.dir, "missing.sock");
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
    const tunnel = ["--identity-file", identity, "--known-hosts-file", join(dc.dir, "known_hosts"), "--strict-host-key-checking=false",
      "--tunnel", `127.0.0.1:${server.port}`, "--endpoint", `http://127.0.0.1:${dead}`];
    const { r, port } = await dashboard(tunnel, {});
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(new RegExp(`^Cannot open the dashboard of http://127\\.0\\.0\\.1:${dead} via 127\\.0\\.0\\.1:${server.port}: fleetd cannot be reached: GET /fleet/v1/machines\\?pageSize=65535 via http://127\\.0\\.0\\.1:${dead} failed: .+\n`));
    expect(r.stderr).toContain(`\n${POSSIBLE_ISSUES}\n`);
    expect(await isFree(port)).toBe(true);
  });

  it("serves an endpoint that answers, even with 401 (the page asks for the token)", async () => {
    const address = dc.url.replace(/\/$/, "");
    let base = "";
    const r = await withDashboard(["--endpoint", address], async (b) => {
      base = b;
    });
    expect(r).toEqual({ code: 0, stdout: `Dashboard of ${address} at ${base}/\nPress Ctrl-C to stop.\n`, stderr: "" });
  });
});
