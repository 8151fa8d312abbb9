/**
 * Where the API listens: a unix socket (default `/var/run/fleet.sock`), sockets handed over by systemd
 * (`fleet.socket`, `LISTEN_FDS`/`LISTEN_PID`, fds from 3), and an optional TCP port that requires a
 * bearer token (`api_token`) unless configured open (`api_tcp_open = true`).
 */
import { chmod, lstat, unlink } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { DEFAULT_API_SOCKET } from "../../lib/api/types";

/** One listener of the API. */
export type ApiListenerSpec =
  /** A unix socket created by fleetd; a stale socket file is replaced. `mode` defaults to 0o660. */
  | { kind: "unix"; path: string; mode?: number }
  /** An already-listening socket inherited from systemd. */
  | { kind: "fd"; fd: number }
  /** TCP; requests need `Authorization: Bearer <token>` unless `token` is undefined (explicitly open). */
  | { kind: "tcp"; host: string; port: number; token?: string };

/** A listener accepting connections. */
export interface BoundListener {
  spec: ApiListenerSpec;
  /** `unix:///path`, `fd://3` or `http://host:port` (with the real port when 0 was asked for). */
  address: string;
  /** Removes what the listener left behind (the socket file). */
  cleanup(): Promise<void>;
}

/** First fd passed by systemd socket activation. */
export const SD_LISTEN_FDS_START = 3;

/** The fds systemd passed to this process (none when `LISTEN_PID` names another process). */
export function socketActivationFds(env: NodeJS.ProcessEnv, pid: number): number[] {
  const listenPid = env.LISTEN_PID;
  const count = Number(env.LISTEN_FDS ?? "0");
  if (listenPid === undefined || Number(listenPid) !== pid || !Number.isInteger(count) || count <= 0) return [];
  return Array.from({ length: count }, (_, i) => SD_LISTEN_FDS_START + i);
}

/** API settings of fleetd's configuration (fleet.conf names in comments). */
export interface ApiListenConfig {
  /** Unix socket path when not socket-activated. Default `/var/run/fleet.sock`. */
  socketPath?: string;
  /** `api_tcp_listen`: `host:port` of an extra TCP listener; default none. */
  tcpListen?: string;
  /** `api_token`: bearer token the TCP listener requires. */
  token?: string;
  /** `api_tcp_open`: serve TCP without credentials (only for trusted networks). Default false. */
  tcpOpen?: boolean;
}

/**
 * The listeners fleetd should open: systemd's sockets when activated (fleet opened none itself),
 * else the unix socket; plus TCP when configured. Throws for a TCP listener without credentials.
 */
export function apiListenersFromConfig(config: ApiListenConfig, env: NodeJS.ProcessEnv, pid: number): ApiListenerSpec[] {
  const fds = socketActivationFds(env, pid);
  const specs: ApiListenerSpec[] = fds.length > 0
    ? fds.map((fd) => ({ kind: "fd", fd }))
    : [{ kind: "unix", path: config.socketPath ?? DEFAULT_API_SOCKET }];
  if (config.tcpListen) {
    const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(config.tcpListen);
    const port = Number(match?.[3]);
    if (!match || port > 65535) {
      throw new Error(`Invalid api_tcp_listen "${config.tcpListen}": expected HOST:PORT such as 127.0.0.1:49153`);
    }
    const host = match[1] ?? match[2] ?? "";
    if (!config.token && !config.tcpOpen) {
      throw new Error(
        `Refusing to listen on api_tcp_listen "${config.tcpListen}" without credentials: set api_token (clients send "Authorization: Bearer <token>") or set api_tcp_open = true to serve it without authentication`,
      );
    }
    specs.push({ kind: "tcp", host: host || "0.0.0.0", port, ...(config.token && !config.tcpOpen ? { token: config.token } : {}) });
  }
  return specs;
}

async function removeStaleSocket(path: string): Promise<void> {
  try {
    const st = await lstat(path);
    if (!st.isSocket()) throw new Error(`Cannot listen on "${path}": a file that is not a socket is in the way; remove it`);
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

function listenOnce(server: Server, arg: object): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once("error", onError);
    server.listen(arg, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/** Starts `server` on the listener. */
export async function bindListener(server: Server, spec: ApiListenerSpec): Promise<BoundListener> {
  try {
    switch (spec.kind) {
      case "unix": {
        await removeStaleSocket(spec.path);
        await listenOnce(server, { path: spec.path });
        await chmod(spec.path, spec.mode ?? 0o660);
        return {
          spec,
          address: `unix://${spec.path}`,
          cleanup: async () => {
            await unlink(spec.path).catch((err: NodeJS.ErrnoException) => {
              if (err.code !== "ENOENT") throw err;
            });
          },
        };
      }
      case "fd":
        await listenOnce(server, { fd: spec.fd });
        return { spec, address: `fd://${spec.fd}`, cleanup: async () => undefined };
      case "tcp": {
        await listenOnce(server, { host: spec.host, port: spec.port });
        const addr = server.address() as AddressInfo;
        const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
        return { spec, address: `http://${host}:${addr.port}`, cleanup: async () => undefined };
      }
    }
  } catch (err) {
    const where = spec.kind === "unix" ? spec.path : spec.kind === "fd" ? `fd ${spec.fd}` : `${spec.host}:${spec.port}`;
    throw new Error(`Cannot start the fleet API on ${where}: ${(err as Error).message}`, { cause: err });
  }
}
