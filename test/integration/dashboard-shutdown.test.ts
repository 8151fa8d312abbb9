/**
 * The dashboard's event stream when fleetd's API shuts down: a stream being opened (its first read of
 * etcd still pending) or open ends cleanly, with no error answer and nothing logged as an error.
 * Real etcd (paused to hold the first read), real ClusterFeed and HTTP API on a unix socket.
 */
import { request, type IncomingMessage } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Etcd3 } from "etcd3";
import { DASHBOARD_EVENTS_PATH } from "../../lib/api/dashboard-types";
import { createApiServer, registryBackend, type ApiServer } from "../../fleetd/api";
import { ClusterFeed, createDashboardRoutes } from "../../fleetd/dashboard";
import { createEtcdClient, EtcdStore } from "../../fleetd/registry/etcd-store";
import { EtcdRegistry } from "../../fleetd/registry/etcd-registry";
import { etcdFixture } from "../helpers/fleet-fixture";
import { waitFor } from "../helpers/fleet-cluster";

interface Stream {
  status: number;
  contentType: string | undefined;
  /** Everything received until the server ended the answer. */
  ended: Promise<string>;
}

function openStream(socketPath: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: "GET", path: DASHBOARD_EVENTS_PATH }, (res: IncomingMessage) => {
      let text = "";
      const ended = new Promise<string>((done, fail) => {
        res.setEncoding("utf8").on("data", (c: string) => (text += c));
        res.on("end", () => done(text));
        res.on("error", fail);
      });
      resolve({ status: res.statusCode ?? 0, contentType: res.headers["content-type"], ended });
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the dashboard's event stream when the API shuts down", () => {
  const etcd = etcdFixture();
  let client: Etcd3;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "dashboard-shutdown-"));
    client = createEtcdClient({ endpoints: [etcd().endpoint] });
  });

  afterAll(async () => {
    etcd().resume();
    client?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function start(name: string): Promise<{ api: ApiServer; feed: ClusterFeed; socketPath: string; errors: string[]; requests: () => number }> {
    const store = new EtcdStore(client, { prefix: `/${name}/` });
    const feed = new ClusterFeed({ store: () => store });
    let requests = 0;
    const routes = createDashboardRoutes({ feed });
    const errors: string[] = [];
    const api = createApiServer({
      backend: registryBackend(new EtcdRegistry(store, { isRegistered: () => true })),
      version: "0.1.0",
      dashboard: {
        ...routes,
        serveData: (req, res, ctx) => {
          requests++;
          return routes.serveData(req, res, ctx);
        },
      },
      onError: (err) => errors.push((err as Error).message),
    });
    const socketPath = join(dir, `${name}.sock`);
    await api.listen({ kind: "unix", path: socketPath });
    return { api, feed, socketPath, errors, requests: () => requests };
  }

  it("ends a stream whose first read is still pending, without an error answer or log", async () => {
    const { api, feed, socketPath, errors, requests } = await start("pending");
    etcd().pause();
    try {
      const opening = openStream(socketPath);
      await waitFor("the request reached the dashboard", () => requests() === 1);
      await api.close();
      const stream = await opening;
      expect(stream.status).toBe(200);
      expect(stream.contentType).toMatch(/^text\/event-stream/);
      expect(await stream.ended).toBe("");
      expect(errors).toEqual([]);
    } finally {
      etcd().resume();
      await feed.close();
    }
  });

  it("ends an open stream at once, without an error log", async () => {
    const { api, feed, socketPath, errors } = await start("open");
    try {
      const stream = await openStream(socketPath);
      expect(stream.status).toBe(200);
      const started = Date.now();
      await api.close();
      expect(await stream.ended).toMatch(/^id: \S+\nevent: snapshot\n/);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(errors).toEqual([]);
    } finally {
      await feed.close();
    }
  });

  it("ends a stream asked for after the feed closed, without an error log", async () => {
    const { api, feed, socketPath, errors } = await start("closed-feed");
    try {
      await feed.close();
      const stream = await openStream(socketPath);
      expect(stream.status).toBe(200);
      expect(await stream.ended).toBe("");
      expect(errors).toEqual([]);
    } finally {
      await api.close();
    }
  });
});
