/**
 * Fault injection for tests: a TCP proxy on 127.0.0.1 in front of a real server (e.g. one fleetd's
 * etcd). `block()` stalls every connection, new ones included, without closing anything (like packets
 * dropped by a firewall: no RST, no FIN); `unblock()` lets traffic flow again.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { run } from "../../lib/process/run";

export interface TcpProxy {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  block(): void;
  unblock(): void;
  /** Closes every open connection (both sides) at once; the server keeps accepting new ones. */
  reset(): void;
  /**
   * Drops every packet to and from the proxy's port in the kernel (iptables on lo), as the e2e suite
   * does with tc inside a VM: established connections stall, new SYNs go unanswered and TCP backs off.
   * Needs root and iptables; `undrop()` removes the rules.
   */
  drop(): Promise<void>;
  undrop(): Promise<void>;
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
    }
    client.pipe(upstream);
    upstream.pipe(client);
    // After pipe(), which resumes its source: a connection opened while blocked stalls too.
    if (blocked) for (const s of [client, upstream]) s.pause();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  if (!addr || typeof addr !== "object") throw new Error("Cannot start the TCP proxy: no address");
  const port = addr.port;
  const rules = (op: "-I" | "-D"): string[][] => [
    ["-w", "5", op, "INPUT", "-i", "lo", "-p", "tcp", "--dport", String(port), "-j", "DROP"],
    ["-w", "5", op, "INPUT", "-i", "lo", "-p", "tcp", "--sport", String(port), "-j", "DROP"],
  ];
  let dropping = false;
  const undrop = async (): Promise<void> => {
    if (!dropping) return;
    dropping = false;
    for (const r of rules("-D")) await run("iptables", r);
  };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    drop: async () => {
      dropping = true;
      for (const r of rules("-I")) await run("iptables", r);
    },
    undrop,
    block: () => {
      blocked = true;
      for (const s of sockets) s.pause();
    },
    unblock: () => {
      blocked = false;
      for (const s of sockets) s.resume();
    },
    reset: () => {
      for (const s of sockets) s.destroy();
    },
    close: async () => {
      await undrop();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
