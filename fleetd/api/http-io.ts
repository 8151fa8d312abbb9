/** Small helpers for JSON responses and request bodies, shared by the API's resources. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { API_UNAVAILABLE_MESSAGE, type ApiErrorBody } from "../../lib/api/types";
import { BackendConflictError, BackendInvalidError, BackendNotFoundError, BackendUnavailableError } from "./backend";

/** An error that becomes an HTTP error response with fleet's JSON body. */
export class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.headers = options?.headers ?? {};
  }
  readonly headers: Record<string, string>;
}

/** Largest request body accepted (unit files are small; this only stops abuse). */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

/** Sends `value` as JSON with the given status. */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

/** Sends an empty response with a JSON content type (fleet does so for 201/204). */
export function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end();
}

/** Sends `{"error":{"code","message"}}`. */
export function sendError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  const body: ApiErrorBody = { error: { code: status, message } };
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  sendJson(res, status, body);
}

/** Reads the whole body (bounded) and parses it as JSON; a bad body is a 400 like fleet's. */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  // A compressed body was parsed as JSON as it was: 400 with its binary bytes quoted as "JSON".
  const encoding = req.headers["content-encoding"];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== "identity" && encoding.trim() !== "") {
    throw new HttpError(415, `Content-Encoding ${JSON.stringify(encoding)} is not supported: send the body uncompressed, without a Content-Encoding header`);
  }
  // Events rather than `for await`: the async iterator cost more than the rest of a small PUT's read.
  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.off("data", onData);
        req.resume();
        reject(new HttpError(413, `request body too large: over ${MAX_BODY_BYTES} bytes (${MAX_BODY_BYTES / 1024 / 1024} MiB), the most fleetd reads in one request; send less per request (fewer units per POST /units, fewer operations per PATCH /machines)`));
        return;
      }
      chunks.push(chunk);
    };
    // A client gone before the end of its body: no "end" will come. Removed at "end": every request
    // closes after its answer, and building the error there anyway cost 1 % of the API's CPU.
    const onClose = (): void => reject(new HttpError(400, "the client closed the connection before the end of its request body"));
    req.on("data", onData);
    req.once("end", () => {
      req.off("close", onClose);
      resolve(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8"));
    });
    // Node reports a client gone mid-body as an "aborted" error (ECONNRESET) before "close": the
    // same 400 (nobody reads it), not a 500 logged as fleetd's error.
    req.once("error", (err: NodeJS.ErrnoException) => (err.code === "ECONNRESET" || err.message === "aborted" ? onClose() : reject(err)));
    req.once("close", onClose);
  });
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError(400, `unable to decode body: ${(err as Error).message}`, { cause: err });
  }
}

/** fleet requires exactly one `Content-Type` header whose media type is application/json. */
export function requireJsonContentType(req: IncomingMessage): void {
  const values: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]?.toLowerCase() === "content-type") values.push(req.rawHeaders[i + 1] ?? "");
  }
  if (values.length !== 1) {
    throw new HttpError(415, "expected a single Content-Type header");
  }
  const media = (values[0] ?? "").split(";")[0]!.trim().toLowerCase();
  if (media !== "application/json") throw new HttpError(415, `Content-Type must be application/json, not "${values[0]}"`);
}

/** The status, message and headers that answer a failed request (fleet's codes; see the README's table). */
export function errorResponse(err: unknown): [number, string, Record<string, string>] {
  if (err instanceof HttpError) return [err.status, err.message, err.headers];
  if (err instanceof BackendNotFoundError) return [404, err.message, {}];
  if (err instanceof BackendInvalidError) return [400, err.message, {}];
  if (err instanceof BackendConflictError) return [409, err.message, {}];
  if (err instanceof BackendUnavailableError) return [503, API_UNAVAILABLE_MESSAGE, {}];
  if (err instanceof URIError) return [400, `malformed URL: ${err.message}`, {}];
  return [500, `internal error: ${err instanceof Error ? err.message : String(err)}`, {}];
}

/**
 * An extension request's JSON object body (`/scale`, `/deployments`, `/rebalance`). A field it does
 * not know is refused, not ignored: `"dryrun": true` (or `"dryRun": "true"`) was taken as no dry run,
 * and the change was made.
 */
export async function readJsonRequest(req: IncomingMessage, known: readonly string[]): Promise<Record<string, unknown>> {
  requireJsonContentType(req);
  const body = await readJsonBody(req);
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, "the request body must be a JSON object");
  refuseUnknownFields(Object.keys(body).filter((f) => !known.includes(f)), `this request takes ${known.join(", ")}`);
  const dryRun = (body as Record<string, unknown>).dryRun;
  if (dryRun !== undefined && typeof dryRun !== "boolean") throw new HttpError(400, `field dryRun must be true or false, not ${JSON.stringify(dryRun)}`);
  return body as Record<string, unknown>;
}

/** A 400 naming the body's fields the request does not take (`unknown`, none: nothing), then `takes`. */
export function refuseUnknownFields(unknown: readonly string[], takes: string): void {
  if (unknown.length > 0) throw new HttpError(400, `unknown field${unknown.length > 1 ? "s" : ""} ${unknown.map((f) => JSON.stringify(f)).join(", ")}; ${takes}`);
}
