/**
 * `--tunnel HOST[:PORT]`: every API connection becomes an SSH channel of one connection to the tunnel
 * host. A unix endpoint is reached through `fleetctl fd-forward <socket>` run on that host (so fleetctl
 * must be on its PATH, as with fleet); a TCP endpoint through a direct-tcpip channel, its address as
 * seen from the tunnel host.
 */
import type { Duplex } from "node:stream";
import type { Client } from "ssh2";
import { parseEndpoint, type StreamConnector } from "../../lib/api/client";
import type { TunnelFactory } from "../client-factory";
import type { CliIO } from "../context";
import type { GlobalOptions } from "../global-options";
import { connectSsh, parseHostPort, shellQuote } from "./ssh-connect";

/** Connects to the `--tunnel` host. */
export function connectTunnelHost(globals: GlobalOptions, io: CliIO): Promise<Client> {
  return connectSsh(globals, io, parseHostPort(globals.tunnel, 22, "--tunnel (FLEETCTL_TUNNEL) address"));
}

/** A direct-tcpip channel from the tunnel host to `host:port`. */
export function forwardThrough(client: Client, host: string, port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    client.forwardOut("127.0.0.1", 0, host, port, (err, channel) => {
      if (err) reject(new Error(`the tunnel host could not open a connection to ${host}:${port}: ${err.message}`, { cause: err }));
      else resolve(channel);
    });
  });
}

/** Runs `fleetctl fd-forward <socket>` on the tunnel host and uses its stdio as the connection. */
function fdForward(client: Client, socketPath: string): Promise<Duplex> {
  const command = `fleetctl fd-forward ${shellQuote(socketPath)}`;
  return new Promise((resolve, reject) => {
    client.exec(command, (err, channel) => {
      if (err) {
        reject(new Error(`cannot run "${command}" on the tunnel host: ${err.message}`, { cause: err }));
        return;
      }
      let stderr = "";
      channel.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      channel.on("exit", (code: number | null) => {
        if (code !== 0) {
          // Surfaces as the HTTP request's error, naming the real cause instead of "socket hang up".
          channel.emit("error", new Error(`"${command}" on the tunnel host exited with ${code ?? "a signal"}${stderr ? `: ${stderr.trim()}` : ""} (is fleetctl installed there?)`));
          channel.destroy();
        }
      });
      resolve(channel);
    });
  });
}

export const sshTunnel: TunnelFactory = async (globals, io) => {
  const client = await connectTunnelHost(globals, io);
  const endpoint = parseEndpoint(globals.endpoint);
  const connect: StreamConnector =
    endpoint.kind === "unix" ? () => fdForward(client, endpoint.socketPath!) : () => forwardThrough(client, endpoint.host!, endpoint.port!);
  return { connect, close: () => client.end() };
};
