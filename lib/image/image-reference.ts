/**
 * Container image references (`registry.cluster:5000/web:2`, `.../web@sha256:...`) and resolving a
 * tag to the digest its registry serves now (the OCI distribution API: GET of the manifest, whose
 * `Docker-Content-Digest` header is the manifest's digest; a GET rather than a HEAD because a refusal's
 * reason is in the body, `{"errors":[{"code":"MANIFEST_UNKNOWN",...}]}`, which a HEAD answer lacks).
 * Used at deploy time so every instance of a template runs the same bits, whatever the tag points to later.
 */
import http from "node:http";
import type { Duplex } from "node:stream";

export interface ImageReference {
  /** `HOST[:PORT]`; only references that name their registry are resolvable. */
  registry: string;
  host: string;
  /** Undefined when the reference names none (a public registry on HTTPS: not resolved here). */
  port?: number;
  repository: string;
  tag?: string;
  digest?: string;
}

/** A reference that cannot be resolved, or a registry that did not answer; the message says which and why. */
export class ImageReferenceError extends Error {
  override readonly name = "ImageReferenceError";
}

const REPO = /^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/;

/** Parses `HOST[:PORT]/REPO[:TAG][@sha256:HEX]`; undefined when the text does not name a registry host (e.g. `web:1`, `docker.io`-less names). */
export function parseImageReference(text: string): ImageReference | undefined {
  const m = /^([A-Za-z0-9.-]+(?::\d{1,5})?)\/([^:@]+)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$/.exec(text);
  if (!m?.[1] || !m[2] || !REPO.test(m[2])) return undefined;
  const registry = m[1];
  // The first component names a registry only with a dot, a port or "localhost" (as in Docker's rules).
  if (!/[.:]/.test(registry) && registry !== "localhost") return undefined;
  const [host = "", port] = registry.split(":");
  const ref: ImageReference = { registry, host, repository: m[2] };
  if (port !== undefined) ref.port = Number(port);
  if (m[3] !== undefined) ref.tag = m[3];
  if (m[4] !== undefined) ref.digest = m[4];
  return ref;
}

const ACCEPT = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

export interface ResolveOptions {
  /** Opens the TCP connection to the registry (e.g. an SSH direct-tcpip channel); default a plain TCP connection. */
  connect?: (host: string, port: number) => Promise<Duplex>;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * `HOST:PORT/REPO@sha256:...` for `text`: a reference already pinned to a digest is returned as it
 * is; a tag (default `latest`) is asked of its registry over plain HTTP (the cluster registry, see
 * image-builder/README.md; reached through the operator's tunnel when `connect` is given).
 */
export async function resolveImageDigest(text: string, o: ResolveOptions = {}): Promise<string> {
  const ref = parseImageReference(text);
  if (!ref) throw new ImageReferenceError(`Cannot resolve image "${text}" to a digest: it does not name a registry (HOST:PORT/NAME:TAG, e.g. registry.cluster:5000/web:2)`);
  const pinned = `${ref.registry}/${ref.repository}@`;
  if (ref.digest) return `${pinned}${ref.digest}`;
  const tag = ref.tag ?? "latest";
  const port = ref.port;
  if (port === undefined) throw new ImageReferenceError(`Cannot resolve image "${text}" to a digest: only a registry with an explicit port (the cluster's, registry.cluster:5000) is asked over plain HTTP; pin the digest yourself (NAME@sha256:...)`);
  const what = `image "${text}" (${ref.registry}/v2/${ref.repository}/manifests/${tag})`;
  const socket = o.connect ? await o.connect(ref.host, port) : undefined;
  const digest = await new Promise<string>((resolve, reject) => {
    const req = http.request({
      host: ref.host, port, method: "GET", path: `/v2/${ref.repository}/manifests/${encodeURIComponent(tag)}`,
      headers: { Accept: ACCEPT, Host: ref.registry, Connection: "close" },
      timeout: o.timeoutMs ?? 30_000,
      ...(socket ? { createConnection: () => socket } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    }, (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        readLimited(res, MAX_ERROR_BODY).then((body) => reject(new ImageReferenceError(`Cannot resolve ${what}: ${refusal(ref, status, body)}`)), reject);
        return;
      }
      res.resume();
      const d = res.headers["docker-content-digest"];
      if (typeof d !== "string" || !/^sha256:[0-9a-f]{64}$/.test(d)) reject(new ImageReferenceError(`Cannot resolve ${what}: the registry sent no Docker-Content-Digest header`));
      else resolve(d);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${((o.timeoutMs ?? 30_000) / 1000).toFixed(0)} s`)));
    req.on("error", (err) => reject(err instanceof ImageReferenceError ? err : new ImageReferenceError(`Cannot resolve ${what}: ${err.message}; is the registry running and reachable from here?`, { cause: err })));
    req.end();
  });
  return `${pinned}${digest}`;
}

/** Most of an error answer read for its reason (a registry's error JSON is a few hundred bytes). */
const MAX_ERROR_BODY = 64 * 1024;

/** The first `max` bytes of a response body as text; the rest is discarded. */
function readLimited(res: http.IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on("data", (chunk: Buffer) => {
      if (size < max) chunks.push(chunk.subarray(0, max - size));
      size += chunk.length;
    });
    res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    res.on("error", reject);
  });
}

/** One error of an OCI distribution error body. */
interface RegistryError {
  code: string;
  message: string;
}

/** The errors of an OCI distribution error body (`{"errors":[{"code":..., "message":...}]}`); empty when `body` is not one. */
function registryErrors(body: string): RegistryError[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    if (err instanceof SyntaxError) return []; // not JSON: not a registry's error body
    throw err;
  }
  const errors = typeof parsed === "object" && parsed !== null ? (parsed as { errors?: unknown }).errors : undefined;
  if (!Array.isArray(errors)) return [];
  return errors.flatMap((e: unknown) => {
    if (typeof e !== "object" || e === null) return [];
    const { code, message } = e as { code?: unknown; message?: unknown };
    return typeof code === "string" ? [{ code, message: typeof message === "string" ? message : "" }] : [];
  });
}

/** Why a registry did not serve the manifest, from its status and its error body. */
function refusal(ref: ImageReference, status: number, body: string): string {
  const errors = registryErrors(body);
  const codes = new Set(errors.map((e) => e.code));
  if (codes.has("MANIFEST_UNKNOWN")) return "the registry has no such tag (manifest unknown); push it first (image-builder push)";
  if (codes.has("NAME_UNKNOWN")) return `the registry has no repository "${ref.repository}" (name unknown); push it first (image-builder push)`;
  if (errors.length > 0) return `the registry answered HTTP ${status}: ${errors.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join("; ")}`;
  if (status === 404) return `HTTP 404 from ${ref.registry} without a registry's error: not a registry endpoint? Check that ${ref.registry} is the image registry (it answers under /v2/)`;
  return `the registry answered HTTP ${status}`;
}
