/**
 * Starts a cluster's SSH forwarder: binds one listener per machine on 127.0.0.1 (host namespace),
 * starts `forwarder-process.ts` inside the cluster's namespace and hands the listeners over. The
 * forwarder outlives this process; stop it with {@link stopProcess}.
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { openSync, closeSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { delay } from "../lib/async/delay";

export interface ForwardTarget {
  host: string;
  port: number;
}

export interface StartedForwarder {
  pid: number;
  /** Loopback port per target, in the order given. */
  ports: number[];
}

function listen(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", (err) => reject(new Error(`Cannot listen on 127.0.0.1:${port} for the SSH forwarder: ${err.message}`, { cause: err })));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => resolve(server));
  });
}

/**
 * `ports[i]` (0 = any free port) is used for `targets[i]`. Resolves once the forwarder has taken over
 * every listener.
 */
export async function startForwarder(netns: string, targets: readonly ForwardTarget[], options: { ports?: readonly number[]; logFile: string; signal?: AbortSignal }): Promise<StartedForwarder> {
  const servers: net.Server[] = [];
  try {
    for (const [i] of targets.entries()) servers.push(await listen(options.ports?.[i] ?? 0));
    const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
    const entry = path.join(path.dirname(fileURLToPath(import.meta.url)), "forwarder-process.ts");
    const log = openSync(options.logFile, "a");
    const child = spawn("ip", ["netns", "exec", netns, process.execPath, "--import", tsx, entry], {
      stdio: ["ignore", log, log, "ipc"],
      detached: true,
    });
    closeSync(log);
    const exited = new Promise<never>((_, reject) => {
      child.once("exit", (code, sig) => reject(new Error(`The SSH forwarder for namespace "${netns}" exited (${sig ?? `code ${code}`}) before it was ready; see ${options.logFile}`)));
      child.once("error", (err) => reject(new Error(`Cannot start the SSH forwarder: ${err.message}`, { cause: err })));
    });
    const ready = new Promise<void>((resolve) => {
      let n = 0;
      child.on("message", () => {
        if (++n === targets.length) resolve();
      });
    });
    for (const [i, t] of targets.entries()) child.send(t, servers[i]);
    const timeout = delay(30_000, options.signal).then(() => {
      throw new Error(`The SSH forwarder for namespace "${netns}" did not take its listeners within 30 s; see ${options.logFile}`);
    });
    try {
      await Promise.race([ready, exited, timeout]);
    } catch (err) {
      if (child.pid !== undefined) await stopProcess(child.pid);
      throw err;
    }
    child.removeAllListeners("exit");
    child.disconnect();
    child.unref();
    if (child.pid === undefined) throw new Error("The SSH forwarder started without a pid");
    return { pid: child.pid, ports };
  } finally {
    // The forwarder holds its own copies of the listening sockets now.
    for (const s of servers) s.close();
  }
}

/** True while a process with that pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. Idempotent. */
export async function stopProcess(pid: number, graceMs = 5_000): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, "SIGTERM");
  for (let waited = 0; waited < graceMs; waited += 100) {
    if (!isAlive(pid)) return;
    await delay(100);
  }
  if (isAlive(pid)) process.kill(pid, "SIGKILL");
  for (let i = 0; i < 50 && isAlive(pid); i++) await delay(100);
}
