import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../lib/process/run";
import { createClusterNetwork, listNamespaces, removeClusterNetwork } from "./cluster-network";
import { isAlive, startForwarder, stopProcess } from "./ssh-forwarder";

// Real namespaces, bridge and taps (we are root here); a server inside the namespace stands in for a
// machine's sshd so the forwarder path 127.0.0.1 -> namespace is tested end to end.
const ns = `cf-test-${process.pid}`;
const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

function request(port: number, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    let data = "";
    s.on("data", (d) => (data += d.toString()));
    s.on("end", () => resolve(data));
    s.on("error", reject);
    s.end(payload);
  });
}

describe("cluster network and SSH forwarder", () => {
  it("creates the namespace with bridge and taps, forwards loopback ports into it, and removes it all", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "cf-net-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    cleanup.push(() => removeClusterNetwork(ns));
    await createClusterNetwork(ns, ["tap1", "tap2"]);
    expect(await listNamespaces()).toContain(ns);
    const links = await run("ip", ["-n", ns, "-br", "link"]);
    expect(links.stdout).toMatch(/^br0\s/m);
    expect(links.stdout).toMatch(/^tap1\s/m);
    const addr = await run("ip", ["-n", ns, "-br", "addr", "show", "br0"]);
    expect(addr.stdout).toContain("10.77.0.1/24");
    // No route leaves the namespace.
    expect((await run("ip", ["-n", ns, "route"])).stdout).not.toMatch(/default/);

    // An echo server on the bridge address inside the namespace.
    const echo = [
      "const net=require('net');",
      "net.createServer(s=>{let d='';s.on('data',c=>d+=c);s.on('end',()=>s.end('echo:'+d));}).listen(2222,'10.77.0.1',()=>console.log('listening'));",
    ].join("");
    const ctl = new AbortController();
    const server = run("ip", ["netns", "exec", ns, process.execPath, "-e", echo], { allowFailure: true, signal: ctl.signal });
    cleanup.push(async () => {
      ctl.abort();
      await server.catch(() => undefined);
    });
    // Wait for it to listen: connect from inside the namespace.
    for (let i = 0; i < 50; i++) {
      const r = await run("ip", ["netns", "exec", ns, process.execPath, "-e", "require('net').connect(2222,'10.77.0.1').on('connect',()=>process.exit(0)).on('error',()=>process.exit(1))"], { allowFailure: true });
      if (r.exitCode === 0) break;
      await new Promise((r2) => setTimeout(r2, 100));
    }

    const fwd = await startForwarder(ns, [{ host: "10.77.0.1", port: 2222 }, { host: "10.77.0.1", port: 2222 }], { logFile: path.join(dir, "fwd.log") });
    cleanup.push(() => stopProcess(fwd.pid));
    expect(fwd.ports).toHaveLength(2);
    expect(await request(fwd.ports[0]!, "hello")).toBe("echo:hello");
    expect(await request(fwd.ports[1]!, "again")).toBe("echo:again");

    await stopProcess(fwd.pid);
    expect(isAlive(fwd.pid)).toBe(false);
    await expect(request(fwd.ports[0]!, "x")).rejects.toThrow(/ECONNREFUSED/);
    // kill the echo server: it runs in the namespace, deleting the namespace does not stop it
    await run("ip", ["netns", "pids", ns]).then(async (r) => {
      for (const pid of r.stdout.split("\n").filter(Boolean)) await stopProcess(Number(pid));
    });
    await removeClusterNetwork(ns);
    expect(await listNamespaces()).not.toContain(ns);
  });
});
