/**
 * The dashboard as the image ships it: dist/fleetd.cjs (built here) as its own process on a real etcd
 * serves the page, script and stylesheet inlined at bundle time (the same files fleetd builds from
 * source), without credentials; its live feed on the TCP listener needs the bearer token and starts
 * with a snapshot of the cluster.
 */
import { request, type IncomingMessage } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DashboardSnapshot } from "../../lib/api/dashboard-types";
import { run, type RunResult } from "../../lib/process/run";
import { buildDashboardAssets, type DashboardAssetFiles } from "../../scripts/dashboard-assets.mjs";
import { waitFor } from "../helpers/fleet-cluster";
import { etcdFixture } from "../helpers/fleet-fixture";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TOKEN = "bundle-test-token";

/** GET over TCP; `firstEvent` reads an event stream up to its first event, then hangs up. */
function get(url: string, headers: Record<string, string> = {}, firstEvent = false): Promise<{ res: IncomingMessage; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => {
        body += c;
        if (firstEvent && body.includes("\n\n")) {
          req.destroy();
          resolve({ res, body });
        }
      });
      res.on("end", () => resolve({ res, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the bundled fleetd's dashboard", () => {
  const etcd = etcdFixture();
  let dir: string;
  let assets: DashboardAssetFiles;
  let fleetd: { done: Promise<RunResult>; stop: () => void; log: () => string } | undefined;
  let base: string;

  beforeAll(async () => {
    await run(process.execPath, [join(ROOT, "scripts", "bundle.mjs")], { cwd: ROOT, timeoutMs: 120_000 });
    assets = await buildDashboardAssets();
    dir = await mkdtemp(join(tmpdir(), "dashboard-bundle-"));
    const controller = new AbortController();
    let log = "";
    const done = run(process.execPath, [join(ROOT, "dist", "fleetd.cjs")], {
      env: {
        PATH: process.env.PATH ?? "",
        FLEET_ETCD_SERVERS: etcd().endpoint,
        FLEET_ETCD_KEY_PREFIX: "/dashboard-bundle/",
        FLEET_MACHINE_ID: "bbbb2222",
        FLEET_UNIT_MANAGER: "memory",
        FLEET_API_SOCKET: join(dir, "fleet.sock"),
        FLEET_API_TCP_LISTEN: "127.0.0.1:0",
        FLEET_API_TOKEN: TOKEN,
        FLEET_LEASE_FILE: join(dir, "lease"),
        FLEET_AGENT_TTL: "2s",
        FLEET_PUBLIC_IP: "10.9.8.7",
      },
      signal: controller.signal,
      allowFailure: true,
      onStderr: (c) => (log += c),
    }).catch((err: unknown) => {
      const result = (err as { result?: RunResult }).result;
      if (!result) throw err;
      return result;
    });
    fleetd = { done, stop: () => controller.abort(), log: () => log };
    const address = await waitFor("fleetd to log its TCP listener", () => /API listening on .*?(http:\/\/127\.0\.0\.1:\d+)/.exec(log)?.[1], { timeoutMs: 30_000, describe: () => log });
    base = address;
  });

  afterAll(async () => {
    fleetd?.stop();
    await fleetd?.done;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("serves the page, script and stylesheet built at bundle time, without credentials", async () => {
    const page = await get(`${base}/`);
    expect(page.res.statusCode).toBe(200);
    expect(page.res.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.res.headers["content-security-policy"]).toContain("script-src 'self'");
    expect(page.res.headers.etag).toBe(assets.etag);
    expect(page.body).toBe(assets.html);
    const js = await get(`${base}/dashboard/app.js`);
    expect([js.res.statusCode, js.res.headers["content-type"], js.body]).toEqual([200, "text/javascript; charset=utf-8", assets.js]);
    const css = await get(`${base}/dashboard/app.css`);
    expect([css.res.statusCode, css.body]).toEqual([200, assets.css]);
    const cached = await get(`${base}/`, { "If-None-Match": assets.etag });
    expect([cached.res.statusCode, cached.body]).toEqual([304, ""]);
  });

  it("answers the feed only with the token, starting with a snapshot of the cluster", async () => {
    const refused = await get(`${base}/dashboard/v1/events`);
    expect(refused.res.statusCode).toBe(401);
    expect(refused.res.headers["www-authenticate"]).toBe('Bearer realm="fleet"');
    const snapshot = await waitFor("a snapshot listing the machine", async () => {
      const r = await get(`${base}/dashboard/v1/events`, { Authorization: `Bearer ${TOKEN}` }, true);
      expect(r.res.statusCode).toBe(200);
      expect(r.res.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
      // The first event: "id: <feed>.<seq>", "event: snapshot", "data: <json>" (ids since Last-Event-ID resume).
      const [id, event, data] = r.body.split("\n");
      expect(id).toMatch(/^id: \S+$/);
      expect(event).toBe("event: snapshot");
      const s = JSON.parse(data!.slice("data: ".length)) as DashboardSnapshot;
      return s.machines.length === 1 ? s : undefined;
    }, { describe: () => fleetd!.log() });
    expect(snapshot).toMatchObject({ listener: "bearer", servedBy: "bbbb2222", units: [], machines: [{ id: "bbbb2222", primaryIP: "10.9.8.7", metadata: {} }] });
  });
});
