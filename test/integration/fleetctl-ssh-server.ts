/**
 * An SSH server for fleetctl's SSH tests (ssh2's server on loopback): public-key auth for one key,
 * `exec` requests run by `sh -c` with a PATH whose first directory holds the test's commands (stand-ins
 * for systemctl/journalctl of a fleet host, and a real `fleetctl` for fd-forward), and direct-tcpip
 * channels to loopback ports (for tunnels to TCP endpoints).
 */
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { createConnection } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Server, utils, type Connection, type ServerChannel } from "ssh2";

export interface TestSshServer {
  port: number;
  /** Host key in OpenSSH public format (`ssh-ed25519 AAAA...`). */
  hostPublicKey: string;
  /** Commands received by exec requests, in order ("(shell)" for shells). */
  commands: string[];
  /** PTY requests as "term colsxrows". */
  ptys: string[];
  /** direct-tcpip channels opened so far. */
  readonly tcpipChannels: number;
  close(): Promise<void>;
}

/**
 * An ed25519 key pair that ssh2 itself can parse. ssh2 1.17's generator strips a public key's
 * leading zero byte (mscdex/ssh2#1513), so about 1 pair in 256 is unusable ("Malformed OpenSSH
 * public key"); such a pair is thrown away and another one made.
 */
export function ed25519KeyPair(): { private: string; public: string } {
  for (;;) {
    const pair = utils.generateKeyPairSync("ed25519");
    if (!(utils.parseKey(pair.public) instanceof Error) && !(utils.parseKey(pair.private) instanceof Error)) return pair;
  }
}

/** A client key pair: its private half written to `dir/id_ed25519` (mode 0600, as ssh wants it) for `--identity-file`. */
export async function writeClientKey(dir: string): Promise<{ identity: string; publicKey: string }> {
  const key = ed25519KeyPair();
  const identity = join(dir, "id_ed25519");
  await writeFile(identity, key.private, { mode: 0o600 });
  return { identity, publicKey: key.public };
}

/** Starts the server; `clientPublicKey` is the only key accepted (OpenSSH public format). */
export async function startSshServer(opts: {
  clientPublicKey: string;
  binDir: string;
  hostKey?: string;
  /** Loopback address to listen on (default 127.0.0.1), so several servers stand for several machines. */
  host?: string;
  /** Port to listen on (default any free one). */
  port?: number;
}): Promise<TestSshServer> {
  const host = opts.hostKey ? { private: opts.hostKey, public: "" } : ed25519KeyPair();
  const hostParsed = utils.parseKey(host.private);
  if (hostParsed instanceof Error) throw hostParsed;
  const allowed = utils.parseKey(opts.clientPublicKey);
  if (allowed instanceof Error) throw allowed;
  const commands: string[] = [];
  const ptys: string[] = [];
  const connections = new Set<Connection>();
  let tcpipChannels = 0;
  const server = new Server({ hostKeys: [host.private] }, (client) => {
    connections.add(client);
    client.on("close", () => connections.delete(client));
    client.on("error", () => connections.delete(client));
    client.on("authentication", (ctx) => {
      if (ctx.method !== "publickey" || ctx.key.algo !== allowed.type || !ctx.key.data.equals(allowed.getPublicSSH())) {
        ctx.reject(["publickey"]);
        return;
      }
      if (ctx.signature && ctx.blob && allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) {
        ctx.reject(["publickey"]);
        return;
      }
      ctx.accept();
    });
    client.on("ready", () => {
      client.on("session", (accept) => {
        const session = accept();
        const serve = (channel: ServerChannel, args: string[]): void => {
          const child = spawn("sh", args, {
            env: { ...process.env, PATH: `${opts.binDir}:${process.env.PATH ?? ""}` },
            stdio: ["pipe", "pipe", "pipe"],
            detached: true,
          });
          channel.pipe(child.stdin);
          child.stdout.pipe(channel, { end: false });
          child.stderr.pipe(channel.stderr, { end: false });
          child.on("close", (code) => {
            channel.exit(code ?? 255);
            channel.end();
          });
          // The client went away (Ctrl-C): end the command, as sshd does by closing its session.
          channel.on("close", () => {
            if (child.exitCode !== null || child.pid === undefined) return;
            try {
              process.kill(-child.pid, "SIGTERM");
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
            }
          });
        };
        session.on("exec", (acceptExec, _reject, info) => {
          commands.push(info.command);
          serve(acceptExec(), ["-c", info.command]);
        });
        session.on("auth-agent", (acceptAgent) => {
          commands.push("(auth-agent)");
          acceptAgent?.();
        });
        session.on("pty", (acceptPty, _reject, info) => {
          ptys.push(`${info.term} ${info.cols}x${info.rows}`);
          acceptPty();
        });
        // A shell: sh reading commands from the channel (no real terminal behind a requested PTY).
        session.on("shell", (acceptShell) => {
          commands.push("(shell)");
          serve(acceptShell(), ["-s"]);
        });
      });
      client.on("tcpip", (accept, reject, info) => {
        if (info.destIP !== "127.0.0.1") {
          reject();
          return;
        }
        // Like sshd: the endpoint's EOF becomes a channel EOF only (the channel stays half-open), and
        // the channel closes once both directions ended or writing to the endpoint failed.
        const sock = createConnection({ host: info.destIP, port: info.destPort, allowHalfOpen: true });
        let accepted = false;
        sock.once("connect", () => {
          accepted = true;
          const channel = accept();
          tcpipChannels++;
          let ended = 0;
          const closeWhenDone = (): void => {
            if (++ended === 2) channel.close();
          };
          sock.on("data", (d: Buffer) => channel.write(d));
          sock.on("end", () => {
            channel.eof();
            closeWhenDone();
          });
          sock.on("error", () => channel.close());
          channel.on("data", (d: Buffer) => sock.write(d));
          channel.on("end", () => {
            sock.end();
            closeWhenDone();
          });
          channel.on("close", () => sock.destroy());
        });
        sock.once("error", () => {
          if (!accepted) reject();
        });
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    hostPublicKey: `${hostParsed.type} ${hostParsed.getPublicSSH().toString("base64")}`,
    commands,
    ptys,
    get tcpipChannels() {
      return tcpipChannels;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of connections) c.end();
        server.close(() => resolve());
      }),
  };
}
