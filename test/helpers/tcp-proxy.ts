/**
 * Fault injection for tests: a TCP proxy on 127.0.0.1 in front of a real server (e.g. one fleetd's
 * etcd). `block()` stalls every connection, new ones included, without closing anything (like packets
 * dropped by a firewall: no RST, no FIN); `unblock()` lets traffic flow again.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

export interface TcpProxy {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  block(): void;
  unblock(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let blocked = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
      if (blocked) s.pause();
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  if (!addr || typeof addr !== "object") throw new Error("Cannot start the TCP proxy: no address");
  return {
    endpoint: `http://127.0.0.1:${addr.port}`,
    block: () => {
      blocked = true;
      for (const s of sockets) s.pause();
    },
    unblock: () => {
      blocked = false;
      for (const s of sockets) s.resume();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
