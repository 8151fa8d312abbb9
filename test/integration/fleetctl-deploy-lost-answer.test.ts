/**
 * deploy / rollback / scale when the answer to the start request is lost: a real etcd, three real
 * fleetds (engine + agent + deploy controller) and the real API, with fleetctl talking to it through an
 * HTTP proxy in this test that can carry a request out and then replace its answer with fleetd's 500
 * for an etcd deadline (what a loaded cluster answered) or drop the connection, or answer 500 without
 * forwarding at all. fleetctl must follow the rollout that was recorded (exactly one revision, no
 * second POST), retry one that was not, and fail clearly when every attempt fails.
 */
import http from "node:http";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ApiClient } from "../../lib/api/client";
import { parseUnitFile, unitHash } from "../../lib/unit";
import { etcdFixture } from "../helpers/fleet-fixture";
import { FleetctlEnv } from "./fleetctl-harness";

const M1 = "e1b2c3d4e5f60718293a4b5c6d7e8f91";
const M2 = "e2b2c3d4e5f60718293a4b5c6d7e8f92";
const M3 = "e3b2c3d4e5f60718293a4b5c6d7e8f93";
const APP = "[Unit]\nDescription=app %i\n\n[Service]\nEnvironment=image=localhost/app:1\nExecStart=/bin/sleep infinity ${image}\n";
/** What fleetd answered on a loaded cluster when etcd missed the deadline of the rollout's write. */
const ETCD_500 = "internal error: Cannot record the rollout of app@.service to revision 2: etcd rejected the request (context deadline exceeded)";

/** What the proxy does with one request. */
type Fault = "pass" | "carry-out-then-500" | "carry-out-then-drop" | "500-without-forwarding" | "503-without-forwarding";

interface FaultProxy {
  socket: string;
  /** Decides per request; `n` counts requests of that method and path (1-based). */
  fault: (method: string, path: string, n: number) => Fault;
  /** Requests seen, as "POST /fleet/v1/deployments/app%40.service". */
  seen: string[];
  /** Passes everything again and starts counting from 0. */
  reset(): void;
  close(): Promise<void>;
}

async function startFaultProxy(upstream: string, socket: string): Promise<FaultProxy> {
  const counts = new Map<string, number>();
  const proxy: FaultProxy = {
    socket,
    fault: () => "pass",
    seen: [],
    reset: () => {
      proxy.fault = () => "pass";
      proxy.seen = [];
      counts.clear();
    },
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const key = `${req.method ?? "?"} ${(req.url ?? "").split("?")[0]!}`;
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      proxy.seen.push(key);
      const f = proxy.fault(req.method ?? "", (req.url ?? "").split("?")[0]!, n);
      const fail = (status: number, message: string): void => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ error: { code: status, message } }));
      };
      if (f === "500-without-forwarding") return fail(500, ETCD_500);
      if (f === "503-without-forwarding") return fail(503, "fleet server unable to communicate with etcd");
      const up = http.request({ socketPath: upstream, method: req.method, path: req.url, headers: req.headers, agent: false }, (ures) => {
        const body: Buffer[] = [];
        ures.on("data", (c: Buffer) => body.push(c));
        ures.on("end", () => {
          if (f === "carry-out-then-500") return fail(500, ETCD_500);
          if (f === "carry-out-then-drop") return void req.socket.destroy();
          res.writeHead(ures.statusCode ?? 502, ures.headers);
          res.end(Buffer.concat(body));
        });
      });
      up.on("error", (err) => fail(502, err.message));
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  proxy.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}

const DEPLOY_POST = "/fleet/v1/deployments/app%40.service";
const SCALE_POST = "/fleet/v1/scale/app%40.service";

describe("fleetctl deploy / rollback / scale when the start request's answer is lost", () => {
  const etcd = etcdFixture();
  let env: FleetctlEnv;
  let proxy: FaultProxy;
  let api: ApiClient;
  const viaProxy = (argv: string[]) => env.run(argv, { env: { FLEETCTL_ENDPOINT: `unix://${proxy.socket}` } });
  const posts = (path: string): number => proxy.seen.filter((s) => s === `POST ${path}`).length;
  const revisions = async (): Promise<number[]> => (await api.getDeployment("app@.service")).revisions.map((r) => r.revision);
  const hashOf = (image: string): string => unitHash(parseUnitFile(APP.replace("localhost/app:1", image)));
  /** Instances of app@ running on some machine, with the hash of the body their machine loaded. */
  const running = (): Map<string, string> => {
    const out = new Map<string, string>();
    for (const i of env.cluster.instances.values()) {
      for (const n of i.manager.running()) if (n.startsWith("app@")) out.set(n, unitHash(parseUnitFile(i.manager.disk.get(n) ?? "")));
    }
    return out;
  };

  beforeAll(async () => {
    env = await FleetctlEnv.start(etcd(), [M1, M2, M3]);
    proxy = await startFaultProxy(env.socket, join(env.dir, "proxy.sock"));
    api = new ApiClient({ endpoint: `unix://${env.socket}` });
    await writeFile(join(env.dir, "app@.service"), APP);
    expect((await env.run(["submit", "app@.service"])).code).toBe(0);
    expect((await env.run(["scale", "app@.service=3"])).code).toBe(0);
  });
  beforeEach(() => proxy.reset());
  afterAll(async () => {
    api?.close();
    await proxy?.close();
    await env?.close();
  });

  it("carried out, answer replaced by fleetd's 500 for an etcd deadline: follows the recorded rollout to success, one revision, no second POST", async () => {
    proxy.fault = (method, path, n) => (method === "POST" && path === DEPLOY_POST && n === 1 ? "carry-out-then-500" : "pass");
    const r = await viaProxy(["deploy", "--set", "image=localhost/app:2", "app@.service"]);
    expect(r.stderr).toContain(`No answer to the deploy request of app@.service (attempt 1 of 5: HTTP 500: ${ETCD_500}); checking whether fleetd recorded it\n`);
    expect(r.stderr).toContain("The answer to the deploy request of app@.service was lost (HTTP 500: internal error: Cannot record the rollout of app@.service to revision 2: etcd rejected the request (context deadline exceeded)), but fleetd recorded it as revision 2; following that rollout\n");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Rolling app@.service from revision 1 to revision 2 (deploy --set image=localhost/app:2, hash ");
    expect(r.stdout).toContain("  - Environment=image=localhost/app:1\n  + Environment=image=localhost/app:2\n");
    expect(r.stdout).toMatch(/Rollout of app@\.service to revision 2 succeeded in [\d.]+ s/);
    expect(posts(DEPLOY_POST)).toBe(1);
    expect(await revisions()).toEqual([1, 2]);
    expect(new Set(running().values())).toEqual(new Set([hashOf("localhost/app:2")]));
    // The next command finds no rollout running (the failure the QEMU cluster showed: scale got 409).
    expect((await env.run(["scale", "app@.service=3"])).code).toBe(0);
  });

  it("carried out, connection dropped before the answer: follows the recorded rollout to success, one revision", async () => {
    proxy.fault = (method, path, n) => (method === "POST" && path === DEPLOY_POST && n === 1 ? "carry-out-then-drop" : "pass");
    const r = await viaProxy(["deploy", "--set", "image=localhost/app:3", "app@.service"]);
    expect(r.stderr).toMatch(/^No answer to the deploy request of app@\.service \(attempt 1 of 5: POST \/fleet\/v1\/deployments\/app%40\.service via unix:\/\/\S+ failed: socket hang up\); checking whether fleetd recorded it\n/);
    expect(r.stderr).toContain("but fleetd recorded it as revision 3; following that rollout\n");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Rollout of app@\.service to revision 3 succeeded in [\d.]+ s/);
    expect(posts(DEPLOY_POST)).toBe(1);
    expect(await revisions()).toEqual([1, 2, 3]);
    expect(new Set(running().values())).toEqual(new Set([hashOf("localhost/app:3")]));
  });

  it("rollback: carried out, answer lost: follows it the same way", async () => {
    proxy.fault = (method, path, n) => (method === "POST" && path === DEPLOY_POST && n === 1 ? "carry-out-then-500" : "pass");
    const r = await viaProxy(["rollback", "--to", "2", "app@.service"]);
    expect(r.stderr).toContain("but fleetd recorded it as revision 4; following that rollout\n");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Rolling app@.service from revision 3 to revision 4 (rollback to 2, hash ");
    expect(r.stdout).toMatch(/Rollout of app@\.service to revision 4 succeeded/);
    expect(posts(DEPLOY_POST)).toBe(1);
    expect(await revisions()).toEqual([1, 2, 3, 4]);
    expect(new Set(running().values())).toEqual(new Set([hashOf("localhost/app:2")]));
  });

  it("not carried out (500 without forwarding, twice): looks, finds nothing recorded, sends it again and succeeds with one revision", async () => {
    proxy.fault = (method, path, n) => (method === "POST" && path === DEPLOY_POST && n <= 2 ? "500-without-forwarding" : "pass");
    const r = await viaProxy(["deploy", "--set", "image=localhost/app:5", "app@.service"]);
    expect(r.stderr).toContain("(attempt 1 of 5: HTTP 500: internal error: Cannot record the rollout");
    expect(r.stderr).toContain("(attempt 2 of 5: HTTP 500: internal error: Cannot record the rollout");
    expect(r.stderr).not.toContain("recorded it as revision");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Rollout of app@\.service to revision 5 succeeded/);
    expect(posts(DEPLOY_POST)).toBe(3);
    // Each failed POST was followed by a look at the history before the next one.
    expect(proxy.seen.slice(0, 5)).toEqual([`POST ${DEPLOY_POST}`, `GET ${DEPLOY_POST}`, `POST ${DEPLOY_POST}`, `GET ${DEPLOY_POST}`, `POST ${DEPLOY_POST}`]);
    expect(await revisions()).toEqual([1, 2, 3, 4, 5]);
  });

  it("never carried out: fails clearly after 5 attempts and records nothing", async () => {
    proxy.fault = (method, path) => (method === "POST" && path === DEPLOY_POST ? "500-without-forwarding" : "pass");
    const r = await viaProxy(["deploy", "--set", "image=localhost/app:6", "app@.service"]);
    expect(r.code).toBe(1);
    expect(r.stderr.split("\n").at(-2)).toBe(
      `Error starting the deploy of app@.service: 5 attempts failed (last: HTTP 500: ${ETCD_500}); fleetd recorded no rollout for it, nothing changed. Check that etcd is healthy (fleetctl list-machines) and run the command again`,
    );
    expect(posts(DEPLOY_POST)).toBe(5);
    expect(await revisions()).toEqual([1, 2, 3, 4, 5]);
  }, 30_000);

  it("a final error (400) is reported at once, without a retry", async () => {
    const r = await viaProxy(["deploy", "--set", "image=localhost/app:6", "--max-unavailable", "150%", "app@.service"]);
    expect(r).toEqual({
      code: 1,
      stdout: "",
      stderr: 'Error starting the deploy of app@.service: invalid max-unavailable "150%": a percentage must be from 0% to 100% (HTTP 400)\n',
    });
    expect(posts(DEPLOY_POST)).toBe(1);
  });

  it("following tolerates transient failures of its polls (503s, a dropped connection)", async () => {
    proxy.fault = (method, path, n) => {
      if (method !== "GET" || path !== DEPLOY_POST) return "pass";
      if (n >= 2 && n <= 4) return "503-without-forwarding";
      return n === 5 ? "carry-out-then-drop" : "pass";
    };
    const r = await viaProxy(["deploy", "--set", "image=localhost/app:7", "app@.service"]);
    expect(r.stderr).toContain("Cannot read the rollout of app@.service (HTTP 503: fleet server unable to communicate with etcd); retrying for up to 60 s (the rollout goes on in the cluster)\n");
    expect(r.stderr).toContain("Reading the rollout of app@.service works again; following it\n");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Rollout of app@\.service to revision 6 succeeded/);
  });

  it("fleetd answers a repeated requestId with the rollout it started (replayed, 200), not a second one or a 409", async () => {
    const first = await api.deploy("app@.service", { set: { image: "localhost/app:8" }, requestId: "test-request-1" });
    expect(first.replayed).toBeUndefined();
    const again = await api.deploy("app@.service", { set: { image: "localhost/app:8" }, requestId: "test-request-1" });
    expect(again).toEqual({ ...first, replayed: true });
    const record = await api.getDeployment("app@.service");
    expect(record.rollout?.requestId).toBe("test-request-1");
    expect(record.revisions.at(-1)).toMatchObject({ revision: 7, requestId: "test-request-1" });
    await expect(api.deploy("app@.service", { set: { image: "localhost/app:9" }, requestId: "test-request-2" })).rejects.toMatchObject({ status: 409 });
    await expect(api.deploy("app@.service", { set: { image: "localhost/app:9" }, requestId: "no spaces" })).rejects.toMatchObject({ status: 400 });
    await expect.poll(async () => (await api.getDeployment("app@.service")).rollout?.phase, { timeout: 30_000 }).toBe("done");
    expect(await revisions()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("scale: carried out, connection dropped: sends it again (declarative), waits for the instances, exits 0", async () => {
    proxy.fault = (method, path, n) => (method === "POST" && path === SCALE_POST && n === 1 ? "carry-out-then-drop" : "pass");
    const r = await viaProxy(["scale", "app@.service=5"]);
    expect(r.stderr).toContain("No answer to the scale request of app@.service (attempt 1 of 5: POST /fleet/v1/scale/app%40.service via ");
    expect(r.stderr).toContain("The answer to the first scale request of app@.service was lost (");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Unit app@1\.service launched on .*\nScaled app@\.service to 5 instances\n$/s);
    expect(posts(SCALE_POST)).toBe(2);
    expect([...running().keys()].sort()).toEqual(["app@1.service", "app@2.service", "app@3.service", "app@4.service", "app@5.service"]);
  });
});
