/**
 * The SSH forwarder of one cluster, running inside the cluster's network namespace. Its parent (the
 * `up` command, in the host namespace) binds the 127.0.0.1 listeners and hands them over this
 * process's IPC channel; this process accepts on them and connects to the machines inside the
 * namespace. So no veth, route or NAT joins the namespace to the host: only these sockets do.
 *
 * Protocol on the IPC channel: the parent sends `{ host, port }` with a `net.Server` handle, this
 * process answers `{ ready: "host:port" }`. Then the parent disconnects and this process lives on
 * until killed (its pid is in the cluster's folder).
 */
import net from "node:net";

interface Target {
  host: string;
  port: number;
}

function isTarget(m: unknown): m is Target {
  return typeof m === "object" && m !== null && typeof (m as Target).host === "string" && typeof (m as Target).port === "number";
}

const failing = new Set<string>();

function forward(server: net.Server, target: Target): void {
  const key = `${target.host}:${target.port}`;
  // Keep each direction open until its own end (ssh and HTTP clients half-close).
  Object.assign(server, { allowHalfOpen: true });
  server.on("connection", (client) => {
    const upstream = net.connect({ port: target.port, host: target.host, allowHalfOpen: true });
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    client.pipe(upstream);
    upstream.pipe(client);
    // A machine that is down or rebooting refuses or resets: close the client side so ssh retries.
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close);
    upstream.on("connect", () => {
      if (failing.delete(key)) process.stderr.write(`forwarder: ${key} reachable again\n`);
    });
    upstream.on("error", (err) => {
      // Machines refuse while they boot: say so once per outage, not once per attempt.
      if (!failing.has(key)) process.stderr.write(`forwarder: cannot reach ${key}: ${err.message}\n`);
      failing.add(key);
      close();
    });
    client.on("close", close);
    upstream.on("close", close);
  });
}

process.on("message", (message: unknown, handle: unknown) => {
  if (!isTarget(message) || !(handle instanceof net.Server)) {
    process.stderr.write(`forwarder: ignoring a malformed message from the parent: ${JSON.stringify(message)}\n`);
    return;
  }
  forward(handle, message);
  process.send?.({ ready: `${message.host}:${message.port}` });
});
process.on("disconnect", () => process.stderr.write("forwarder: parent detached; forwarding\n"));
