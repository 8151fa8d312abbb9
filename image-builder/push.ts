/**
 * `image-builder push`: copies an oci-archive to a registry with skopeo (Debian's, no daemon), either
 * directly or through an SSH port forward when the registry exists only inside the cluster. The
 * manifest is copied as it is (no conversion, layers already compressed), so the digest in the
 * registry is the archive's own: the digest printed by `container` is the one units run.
 */
import { readFile, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { resolveImageDigest } from "../lib/image/image-reference";
import { run, ProcessError } from "../lib/process/run";
import { openSshForward, type SshForward } from "./ssh-forward";

/** `HOST:PORT[/NAME[:TAG]]`, parsed. */
export interface PushDestination {
  host: string;
  port: number;
  /** Repository name; undefined = the image's own name. */
  name?: string;
  tag?: string;
}

const REPO = /^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function parseDestination(text: string): PushDestination {
  const m = /^([A-Za-z0-9.-]+):(\d{1,5})(?:\/([^:@]+)(?::([^:@/]+))?)?$/.exec(text);
  const bad = (why: string): never => {
    throw new Error(`Invalid --to "${text}": ${why}; expected HOST:PORT[/NAME[:TAG]], e.g. registry.cluster:5000/web:2`);
  };
  if (!m) return bad("it is not HOST:PORT[/NAME[:TAG]]");
  const port = Number(m[2]);
  if (port < 1 || port > 65535) bad(`port ${port} is not 1..65535`);
  const d: PushDestination = { host: m[1]!, port };
  if (m[3] !== undefined) {
    if (!REPO.test(m[3])) bad(`"${m[3]}" is not a repository name (lowercase letters, digits, . _ - and /)`);
    d.name = m[3];
  }
  if (m[4] !== undefined) {
    if (!TAG.test(m[4])) bad(`"${m[4]}" is not a tag`);
    d.tag = m[4];
  }
  return d;
}

/** The image name and manifest digest recorded in an oci-archive's index.json. */
export async function readArchiveIndex(archive: string, signal?: AbortSignal): Promise<{ name: string; digest: string }> {
  const sig = signal ? { signal } : {};
  const notArchive = (why: string, cause?: unknown): Error =>
    new Error(`Cannot read "${archive}" as an oci-archive (${why}); build one with "image-builder container"`, cause === undefined ? {} : { cause });
  // `tar -C dir .` writes "./index.json", which skopeo reads as well: accept either spelling.
  let entries: string[];
  try {
    entries = (await run("tar", ["-tf", archive], sig)).stdout.split("\n");
  } catch (err) {
    throw notArchive(`no index.json: ${err instanceof ProcessError ? (err.result.stderr.trim().split("\n")[0] ?? "") : (err as Error).message}`, err);
  }
  const entry = entries.find((e) => e.replace(/^(\.\/)+/, "") === "index.json");
  if (entry === undefined) throw notArchive("no index.json in it");
  const r = await run("tar", ["-xOf", archive, entry], sig);
  let index: { manifests?: { digest?: string; annotations?: Record<string, string> }[] };
  try {
    index = JSON.parse(r.stdout) as typeof index;
  } catch (err) {
    throw notArchive(`its index.json is not valid JSON: ${(err as Error).message}`, err);
  }
  if (typeof index !== "object" || index === null) throw notArchive("its index.json is not a JSON object");
  const m = index.manifests?.[0];
  if (!m?.digest || index.manifests?.length !== 1) throw new Error(`Cannot push "${archive}": its index.json must list exactly one image`);
  const ref = m.annotations?.["org.opencontainers.image.ref.name"] ?? "";
  // localhost/web:latest -> web
  const name = ref.replace(/^localhost\//, "").replace(/:[^/]*$/, "");
  return { name, digest: m.digest };
}

export interface PushOptions {
  archive: string;
  to: PushDestination;
  /** SSH forward: `[USER@]HOST[:PORT]` and its credentials. */
  tunnel?: { via: string; user?: string; identityFile?: string; knownHostsFile?: string };
  /** Plain HTTP to a registry that is neither on loopback nor behind the tunnel. */
  insecure?: boolean;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface PushResult {
  /** `HOST:PORT/NAME:TAG` as the cluster names it. */
  reference: string;
  /** `HOST:PORT/NAME@sha256:...`: what a unit should run. */
  pinned: string;
  digest: string;
  durationMs: number;
}

const isLoopback = (h: string): boolean => h === "localhost" || h === "::1" || /^127\./.test(h);

/** Pushes; the registry's digest is checked against the archive's. */
export async function pushImage(o: PushOptions): Promise<PushResult> {
  const started = Date.now();
  const index = await readArchiveIndex(o.archive, o.signal);
  const name = o.to.name ?? index.name;
  if (!name || !REPO.test(name)) throw new Error(`Cannot push "${o.archive}": it records no usable image name (${JSON.stringify(index.name)}); give one in --to, e.g. ${o.to.host}:${o.to.port}/web:1`);
  const tag = o.to.tag ?? "latest";
  const reference = `${o.to.host}:${o.to.port}/${name}:${tag}`;
  let forward: SshForward | undefined;
  const tmp = await mkdtemp(path.join(os.tmpdir(), "corefleet-push-"));
  try {
    let endpoint = `${o.to.host}:${o.to.port}`;
    if (o.tunnel) {
      forward = await openSshForward({ ...o.tunnel, target: { host: o.to.host, port: o.to.port }, ...(o.signal ? { signal: o.signal } : {}) });
      endpoint = `127.0.0.1:${forward.port}`;
      o.log?.(`push: ${o.to.host}:${o.to.port} reached through ${o.tunnel.via} (local port ${forward.port})`);
    }
    // SSH encrypts the forwarded hop; loopback never leaves the machine.
    const plain = o.tunnel !== undefined || isLoopback(o.to.host) || o.insecure === true;
    const digestFile = path.join(tmp, "digest");
    const args = ["copy", "--retry-times", "2", `--dest-tls-verify=${plain ? "false" : "true"}`, "--digestfile", digestFile,
      `oci-archive:${path.resolve(o.archive)}`, `docker://${endpoint}/${name}:${tag}`];
    try {
      // skopeo's fatal line ends up in the error message: it is not streamed as well.
      const progress = (c: string): void => {
        const lines = c.trimEnd().split("\n").filter((l) => l !== "" && !isSkopeoFatal(l));
        if (lines.length > 0) o.log?.(lines.join("\n"));
      };
      await run("skopeo", args, { ...(o.signal ? { signal: o.signal } : {}), onStderr: progress, onStdout: progress, timeoutMs: 15 * 60_000 });
    } catch (err) {
      if (!(err instanceof ProcessError)) throw err;
      throw new Error(`Cannot push ${o.archive} to ${reference}: ${skopeoFailure(err, o.signal?.aborted === true)}`,
        { cause: new Error(`command: skopeo ${args.join(" ")}`) });
    }
    const digest = (await readFile(digestFile, "utf8")).trim();
    if (digest !== index.digest) {
      throw new Error(`Pushed ${reference} but skopeo wrote manifest ${digest}, not the archive's ${index.digest}: units pinned to the archive's digest would not find it`);
    }
    // skopeo's --digestfile is computed here, not by the registry: read the tag back, the way units
    // will resolve it (same endpoint, so through the tunnel when there is one).
    const stored = await storedDigest(`${endpoint}/${name}:${tag}`, plain, o.signal).catch((err: unknown) => {
      throw new Error(`Pushed ${o.archive} to ${reference} with skopeo, but reading its manifest back failed, so the image may not be stored: ${(err as Error).message}; ` +
        `check that ${o.to.host}:${o.to.port} is the image registry (it must answer the OCI distribution API under /v2/)`);
    });
    if (stored !== index.digest) {
      throw new Error(`Pushed ${o.archive} to ${reference}, but the registry serves manifest ${stored} under that tag, not the archive's ${index.digest}: ` +
        "units pinned to the archive's digest would not find it; is another push to the same tag running, or does the registry convert manifests?");
    }
    return { reference, pinned: `${o.to.host}:${o.to.port}/${name}@${digest}`, digest, durationMs: Date.now() - started };
  } finally {
    await forward?.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The manifest digest the registry serves for `reference` (`HOST:PORT/NAME:TAG`), over TLS unless `plain`. */
async function storedDigest(reference: string, plain: boolean, signal?: AbortSignal): Promise<string> {
  const connect = plain ? undefined : (host: string, port: number): Promise<Duplex> => new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, servername: host });
    socket.once("secureConnect", () => resolve(socket));
    socket.once("error", reject);
  });
  const pinned = await resolveImageDigest(reference, { timeoutMs: 60_000, ...(connect ? { connect } : {}), ...(signal ? { signal } : {}) });
  return pinned.slice(pinned.lastIndexOf("@") + 1);
}

/** skopeo's last words before it exits non-zero (logrus: `time="..." level=fatal msg="..."`, or `Error: ...`). */
function isSkopeoFatal(line: string): boolean {
  return /\blevel=fatal\b/.test(line) || /^Error: /.test(line);
}

/** Errors that mean nothing answered at the registry's address (as opposed to an answer refusing the push). */
const CONNECTION_FAILURE = /connection refused|no such host|no route to host|network is unreachable|i\/o timeout|connection reset by peer|dial tcp/i;

/** Why skopeo failed, once, never empty; with the registry hint only when it could not connect. */
export function skopeoFailure(err: ProcessError, interrupted: boolean): string {
  const r = err.result;
  const lines = r.stderr.trim().split("\n").map((l) => l.trim()).filter(Boolean);
  const last = [...lines].reverse().find(isSkopeoFatal) ?? lines.at(-1);
  if (interrupted) return `interrupted (skopeo ${r.signal ? `stopped by ${r.signal}` : `exited with code ${r.exitCode}`}); the tag may be missing or old: push again`;
  if (r.timedOut) return `skopeo did not finish within ${(r.durationMs / 60_000).toFixed(0)} min and was stopped; is the registry reachable and the archive readable?`;
  if (last === undefined) return `skopeo ${r.signal ? `was killed by ${r.signal}` : `exited with code ${r.exitCode}`} without saying why`;
  const m = /\bmsg="((?:[^"\\]|\\.)*)"/.exec(last);
  const why = m?.[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : last.replace(/^Error: /, "");
  return CONNECTION_FAILURE.test(why) ? `${why}; is the registry running (fleetctl status registry.service)?` : why;
}
