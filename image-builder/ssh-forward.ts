/**
 * An SSH local port forward (`ssh -N -L 127.0.0.1:PORT:HOST:HOSTPORT`) for the lifetime of one
 * operation: how the operator's machine reaches a registry that exists only inside the cluster
 * network. HOST is resolved on the SSH host, so `registry.cluster` works there through its
 * /etc/hosts. OpenSSH's client does the host key check (strict, with the given known_hosts file).
 */
import { createServer, connect } from "node:net";
import { delay } from "../lib/async/delay";
import { run, type RunResult } from "../lib/process/run";

export interface SshForwardOptions {
  /** `[USER@]HOST[:PORT]` of the SSH server (e.g. `FLEETCTL_TUNNEL`, `127.0.0.1:40022`). */
  via: string;
  /** Default user when `via` names none. */
  user?: string;
  identityFile?: string;
  knownHostsFile?: string;
  /** What the forward reaches, as seen from the SSH host. */
  target: { host: string; port: number };
  /** How long to wait for the forward to accept connections. Default 30 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface SshForward {
  /** Local port on 127.0.0.1. */
  port: number;
  close(): Promise<void>;
}

/** Splits `[USER@]HOST[:PORT]`; an IPv6 host goes in brackets. */
export function parseSshTarget(text: string): { user?: string; host: string; port: number } {
  const m = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s]+)(?::(\d{1,5}))?$/.exec(text.trim());
  const port = m?.[3] === undefined ? 22 : Number(m[3]);
  if (!m || !m[2] || port < 1 || port > 65535) throw new Error(`Invalid SSH host "${text}": expected [USER@]HOST[:PORT], e.g. core@127.0.0.1:40022`);
  return { ...(m[1] ? { user: m[1] } : {}), host: m[2].replace(/^\[|\]$/g, ""), port };
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Opens the forward; resolves once it accepts connections. */
export async function openSshForward(o: SshForwardOptions): Promise<SshForward> {
  const t = parseSshTarget(o.via);
  const user = t.user ?? o.user ?? "core";
  const port = await freeLoopbackPort();
  const stop = new AbortController();
  const onOuterAbort = (): void => stop.abort(o.signal?.reason);
  o.signal?.addEventListener("abort", onOuterAbort, { once: true });
  const args = ["-N", "-T", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ServerAliveInterval=15",
    ...(o.identityFile ? ["-i", o.identityFile, "-o", "IdentitiesOnly=yes"] : []),
    ...(o.knownHostsFile ? ["-o", `UserKnownHostsFile=${o.knownHostsFile}`] : []),
    "-L", `127.0.0.1:${port}:${o.target.host}:${o.target.port}`, "-p", String(t.port), `${user}@${t.host}`];
  let ended: RunResult | Error | undefined;
  const child = run("ssh", args, { signal: stop.signal, allowFailure: true }).then((r) => (ended = r), (e: unknown) => (ended = e instanceof Error ? e : new Error(String(e))));
  const what = `the SSH forward to ${o.target.host}:${o.target.port} through ${user}@${t.host}:${t.port}`;
  const close = async (): Promise<void> => {
    o.signal?.removeEventListener("abort", onOuterAbort);
    stop.abort(new Error("forward closed"));
    await child;
  };
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  for (;;) {
    if (ended !== undefined) {
      await close();
      const why = ended instanceof Error ? ended.message : (ended.stderr.trim() || `ssh exited with ${ended.exitCode ?? ended.signal}`);
      throw new Error(`Cannot open ${what}: ${why}; check the tunnel host, the identity file and known_hosts (after "eval $(npx tsx qemu/main.ts env)" the FLEETCTL_* settings are used)`);
    }
    if (await accepts(port)) return { port, close };
    if (Date.now() > deadline || o.signal?.aborted) {
      await close();
      throw new Error(`Cannot open ${what}: it did not accept connections within ${((o.timeoutMs ?? 30_000) / 1000).toFixed(0)} s`);
    }
    await delay(200);
  }
}
