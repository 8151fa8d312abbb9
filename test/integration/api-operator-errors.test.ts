/**
 * What an operator calling the API by hand (curl) gets for requests fleetd cannot take: always a 4xx
 * with the API's JSON error saying what failed and what to do. Real etcd, real HTTP API on a unix socket.
 */
import { connect } from "node:net";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Etcd3 } from "etcd3";
import { createApiServer, registryBackend } from "../../fleetd/api";
import type { EtcdRegistry } from "../../fleetd/registry/etcd-registry";
import { delay } from "../../lib/async/delay";
import { startApiOnSocket, type ApiOnSocket } from "../helpers/api-on-socket";
import { etcdFixture } from "../helpers/fleet-fixture";
import { socketCall } from "../helpers/socket-request";

const ID = "0123456789abcdef0123456789abcdef";

/** Sends `raw` bytes as they are and returns everything answered until the server closes. */
function raw(socketPath: string, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let text = "";
    socket.setEncoding("utf8").on("data", (c: string) => (text += c));
    socket.on("end", () => resolve(text));
    socket.on("error", reject);
    socket.end(bytes);
  });
}

describe("the API's answers to requests it cannot take", () => {
  const etcd = etcdFixture();
  let fleet: ApiOnSocket;
  let client: Etcd3;
  let registry: EtcdRegistry;
  let socketPath: string;
  /** What the API passed to onError (fleetd logs it as an error). */
  let errors: string[];

  beforeAll(async () => {
    fleet = await startApiOnSocket(etcd().endpoint, { prefix: "/api-operator/", machineId: ID });
    ({ client, registry, socketPath, errors } = fleet);
  });

  afterAll(async () => {
    await fleet?.close();
  });

  it("answers a URL too long for the HTTP parser with a JSON 431 that says what to shorten", async () => {
    const body = JSON.stringify({ desiredState: "inactive", options: [{ section: "Service", name: "ExecStart", value: "/bin/true" }] });
    const res = await socketCall(socketPath, "PUT", `/fleet/v1/units/${"a".repeat(70_000)}.service`, { body, headers: { "Content-Type": "application/json" } });
    expect(res.status).toBe(431);
    expect(res.headers["content-type"]).toBe("application/json");
    expect(res.headers.server).toBe("fleetd/0.1.0");
    expect(JSON.parse(res.body)).toEqual({
      error: { code: 431, message: expect.stringMatching(/^request line and headers too large: over \d+ bytes, the most fleetd reads; shorten the URL \(a unit name is at most 256 characters\) or the headers$/) as unknown },
    });
    // Nothing else changed: the listener still answers.
    expect((await socketCall(socketPath, "GET", "/fleet/v1/units")).status).toBe(200);
  });

  it("answers a request that is not HTTP with a JSON 400", async () => {
    const answer = await raw(socketPath, "HELLO fleetd\r\n\r\n");
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(answer).toContain("Content-Type: application/json\r\n");
    const json = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as { error: { code: number; message: string } };
    expect(json.error.code).toBe(400);
    expect(json.error.message).toMatch(/^malformed HTTP request \(HPE_\w+\): send an HTTP\/1\.1 request such as "GET \/fleet\/v1\/units HTTP\/1\.1"$/);
  });

  it("refuses the metadata key __proto__, which a listing could never show, instead of answering 204", async () => {
    const patch = (key: string) => socketCall(socketPath, "PATCH", "/fleet/v1/machines", { body: JSON.stringify([{ op: "add", path: `/${ID}/metadata/${key}`, value: { value: "x" } }]) });
    const res = await patch("__proto__");
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({ error: { code: 400, message: "machine metadata key __proto__ is reserved: choose another key name" } });
    expect(await client.getAll().prefix("/api-operator/metadata/").keys()).toEqual([]);
    // Other names of Object.prototype are ordinary keys, shown as set.
    expect((await patch("constructor")).status).toBe(204);
    expect((await registry.listMachines())[0]!.metadata).toEqual({ role: "web", constructor: "x" });
  });

  it("answers a compressed body with a 415 that says to send it uncompressed, and writes nothing", async () => {
    const unit = { desiredState: "inactive", options: [{ section: "Service", name: "ExecStart", value: "/bin/true" }] };
    const res = await socketCall(socketPath, "PUT", "/fleet/v1/units/gz.service", {
      body: gzipSync(JSON.stringify(unit)),
      headers: { "Content-Type": "application/json", "Content-Encoding": "gzip" },
    });
    expect(res.status).toBe(415);
    expect(JSON.parse(res.body)).toEqual({ error: { code: 415, message: 'Content-Encoding "gzip" is not supported: send the body uncompressed, without a Content-Encoding header' } });
    expect(await registry.getUnit("gz.service")).toBeUndefined();
    const patch = await socketCall(socketPath, "PATCH", "/fleet/v1/machines", { body: gzipSync("[]"), headers: { "Content-Encoding": "gzip" } });
    expect(patch.status).toBe(415);
    // identity is no encoding.
    const plain = await socketCall(socketPath, "PUT", "/fleet/v1/units/gz.service", { body: JSON.stringify(unit), headers: { "Content-Type": "application/json", "Content-Encoding": "identity" } });
    expect(plain.status).toBe(201);
  });

  it("does not report a client that leaves in the middle of its body as fleetd's error", async () => {
    const socket = connect(socketPath);
    await new Promise<void>((resolve) => socket.once("connect", resolve));
    socket.write('PUT /fleet/v1/units/gone.service HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"desi');
    await delay(200);
    socket.destroy();
    await delay(300);
    expect(errors).toEqual([]);
    expect(await registry.getUnit("gone.service")).toBeUndefined();
  });

  it("shuts down at once while a client is still sending its body, answering it 503", async () => {
    const own = createApiServer({ backend: registryBackend(registry), version: "0.1.0", onError: (err) => errors.push((err as Error).message) });
    const ownPath = join(dirname(socketPath), "own.sock");
    await own.listen({ kind: "unix", path: ownPath });
    const socket = connect(ownPath);
    let answer = "";
    socket.setEncoding("utf8").on("data", (c: string) => (answer += c));
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.on("error", () => undefined);
    await new Promise<void>((resolve) => socket.once("connect", resolve));
    socket.write('PUT /fleet/v1/units/stalled.service HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"desiredState":"inactive",');
    await delay(200);
    const started = Date.now();
    await own.close();
    expect(Date.now() - started).toBeLessThan(2_000);
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
    expect(answer).toContain("Connection: close\r\n");
    expect(JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4))).toEqual({
      error: { code: 503, message: "fleet API is shutting down: send the request again once fleetd is back, or to another fleetd" },
    });
    expect(errors).toEqual([]);
    expect(await registry.getUnit("stalled.service")).toBeUndefined();
  });

  it("answers HEAD as GET without the body, and OPTIONS with a 405 naming the methods", async () => {
    for (const path of ["/fleet/v1/units", "/fleet/v1/machines", "/fleet/v1/state", "/fleet/v1/units/gz.service", "/fleet/v1/discovery"]) {
      const get = await socketCall(socketPath, "GET", path);
      const head = await socketCall(socketPath, "HEAD", path);
      expect({ path, status: head.status, type: head.headers["content-type"], length: head.headers["content-length"], body: head.body }).toEqual({
        path,
        status: 200,
        type: "application/json",
        length: String(Buffer.byteLength(get.body)),
        body: "",
      });
    }
    const missing = await socketCall(socketPath, "HEAD", "/fleet/v1/units/nope.service");
    expect([missing.status, missing.body]).toEqual([404, ""]);
    const options = await socketCall(socketPath, "OPTIONS", "/fleet/v1/machines");
    expect(options.status).toBe(405);
    expect(options.headers.allow).toBe("GET, PATCH");
    expect(JSON.parse(options.body)).toEqual({ error: { code: 405, message: "method OPTIONS not allowed on /machines: use GET or PATCH" } });
    // A resource without GET answers HEAD as it answers GET: 405 with its Allow.
    const scale = await socketCall(socketPath, "HEAD", "/fleet/v1/scale/web@.service");
    expect([scale.status, scale.headers.allow, scale.headers["content-type"]]).toEqual([405, "POST", "application/json"]);
    const scaleGet = await socketCall(socketPath, "GET", "/fleet/v1/scale/web@.service");
    expect(JSON.parse(scaleGet.body)).toEqual({ error: { code: 405, message: "method GET not allowed on /scale/web@.service: use POST" } });
  });
});
