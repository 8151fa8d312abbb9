import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { HttpError, MAX_BODY_BYTES, readJsonBody } from "./http-io";

describe("readJsonBody on a real HTTP server (loopback)", () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  const serve = async (): Promise<{ port: number; outcome: Promise<unknown> }> => {
    let settle!: (v: unknown) => void;
    const outcome = new Promise((r) => (settle = r));
    server = createServer((req, res) => {
      readJsonBody(req).then(
        (v) => (settle({ ok: v }), res.end("ok")),
        (err: unknown) => (settle({ err }), res.writeHead(err instanceof HttpError ? err.status : 500).end()),
      );
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    return { port: (server.address() as AddressInfo).port, outcome };
  };

  const send = (port: number, chunks: (string | Buffer)[], end = true): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = request({ port, host: "127.0.0.1", method: "PUT", path: "/" }, (res) => (res.resume(), resolve(res.statusCode ?? 0)));
      req.on("error", reject);
      for (const c of chunks) req.write(c);
      if (end) req.end();
      else setTimeout(() => req.destroy(), 50);
    });

  it("parses a body that arrives in several chunks", async () => {
    const { port, outcome } = await serve();
    expect(await send(port, ['{"name":', '"a.service",', '"options":[]}'])).toBe(200);
    expect(await outcome).toEqual({ ok: { name: "a.service", options: [] } });
  });

  it("answers 400 with the parser's message for a body that is not JSON", async () => {
    const { port, outcome } = await serve();
    expect(await send(port, ["{nope"])).toBe(400);
    expect(((await outcome) as { err: Error }).err.message).toMatch(/^unable to decode body: /);
  });

  it("refuses a body over the limit with 413, without reading it all", async () => {
    const { port, outcome } = await serve();
    const big = Buffer.alloc(1024 * 1024, "a");
    const status = await send(port, Array.from({ length: MAX_BODY_BYTES / big.length + 1 }, () => big)).catch(() => 413);
    expect(status).toBe(413);
    const { err } = (await outcome) as { err: HttpError };
    expect([err.status, err.message]).toEqual([
      413,
      "request body too large: over 8388608 bytes (8 MiB), the most fleetd reads in one request; send less per request (fewer units per POST /units, fewer operations per PATCH /machines)",
    ]);
  });

  it("settles when the client goes away mid-body (nothing left waiting)", async () => {
    const { port, outcome } = await serve();
    await send(port, ['{"name":'], false).catch(() => undefined);
    expect(((await outcome) as { err: Error }).err.message).toMatch(/closed the connection|aborted/);
  });
});
