/** One raw HTTP request over a unix socket, for API tests that need exact bodies and headers. */
import { request, type IncomingHttpHeaders } from "node:http";

export interface SocketAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Sends `method path` with exactly these headers and body (none: no body) and reads the whole answer. */
export function socketCall(socketPath: string, method: string, path: string, opts: { body?: Buffer | string; headers?: Record<string, string> } = {}): Promise<SocketAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: opts.headers ?? {} }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** Sends `body` with its Content-Type and Content-Length. */
export async function socketRequest(socketPath: string, method: string, path: string, body: string, contentType = "application/json"): Promise<{ status: number; body: string }> {
  const { status, body: text } = await socketCall(socketPath, method, path, { body, headers: { "Content-Type": contentType, "Content-Length": String(Buffer.byteLength(body)) } });
  return { status, body: text };
}
