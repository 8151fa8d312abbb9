/**
 * API requests through `--tunnel` to a TCP endpoint (direct-tcpip) when fleetd closes the kept-alive
 * connection (issue 3: a blocking start hung for minutes). The SSH server behaves like sshd: fleetd's
 * close reaches fleetctl as a channel EOF only, the channel stays half-open. Real etcd, real fleetd API
 * server (its 30 s keepAliveTimeout), real ApiClient and CLI.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "ssh2";
import { ApiClient } from "../../lib/api/client";
import { delay } from "../../lib/async/delay";
import { createApiServer, registryBackend } from "../../fleetd/api";
import { forwardThrough } from "../../fleetctl/ssh/tunnel";
import { etcdFixture } from "../helpers/fleet-fixture";
import { FleetctlEnv } from "./fleetctl-harness";
import { ed25519KeyPair, startSshServer, type TestSshServer } from "./fleetctl-ssh-server";

const M1 = "a1b2c3d4e5f60718293a4b5c6d7e8f91";

describe("fleetctl --tunnel keep-alive", () => {
  const etcd = etcdFixture();
  let env: FleetctlEnv;
  let server: TestSshServer;
  let ssh: Client;
  let identity: string;

  beforeAll(async () => {
    env = await FleetctlEnv.start(etcd(), [M1]);
    const key = ed25519KeyPair();
    identity = join(env.dir, "id_ed25519");
    await writeFile(identity, key.private, { mode: 0o600 });
    const binDir = join(env.dir, "bin");
    await mkdir(binDir);
    server = await startSshServer({ clientPublicKey: key.public, binDir });
    ssh = new Client();
    await new Promise<void>((resolve, reject) => {
      ssh.once("ready", resolve).once("error", reject);
      ssh.connect({ host: "127.0.0.1", port: server.port, username: "core", privateKey: key.private });
    });
    await writeFile(join(env.dir, "hello.service"), "[Service]\nExecStart=/bin/sleep infinity\n");
    expect((await env.run(["start", "hello.service"])).code).toBe(0);
  });

  afterAll(async () => {
    ssh?.end();
    await server?.close();
    await env?.close();
  });

  const tunnelClient = (address: string, extra: { requestTimeoutMs?: number } = {}): ApiClient => {
    const url = new URL(address);
    return new ApiClient({ endpoint: address, token: "tok", connect: () => forwardThrough(ssh, url.hostname, Number(url.port)), ...extra });
  };

  it("drops a connection fleetd closed (EOF only) and answers the next request on a fresh channel", async () => {
    const api = createApiServer({ backend: registryBackend(env.cluster.registry), version: "0.1.0" });
    const first = await api.listen({ kind: "tcp", host: "127.0.0.1", port: 0, token: "tok" });
    const client = tunnelClient(first.address, { requestTimeoutMs: 10_000 });
    try {
      expect((await client.listUnits()).map((u) => u.name)).toEqual(["hello.service"]);
      const before = server.tcpipChannels;
      // Closes the idle kept-alive connection as its keepAliveTimeout does; a new server on the same
      // port takes the next connection.
      await api.close();
      const again = createApiServer({ backend: registryBackend(env.cluster.registry), version: "0.1.0" });
      const port = Number(new URL(first.address).port);
      await again.listen({ kind: "tcp", host: "127.0.0.1", port, token: "tok" });
      try {
        await delay(200);
        expect((await client.getUnit("hello.service"))?.name).toBe("hello.service");
        // A PUT too: it must not be written into the dead channel.
        await client.setUnitTargetState("hello.service", "launched");
        expect(server.tcpipChannels).toBe(before + 1);
      } finally {
        await again.close();
      }
    } finally {
      client.close();
    }
  });

  it("keeps answering after more than fleetd's keepAliveTimeout (30 s) of idleness", { timeout: 90_000 }, async () => {
    const tcp = await env.api.listen({ kind: "tcp", host: "127.0.0.1", port: 0, token: "tok" });
    const client = tunnelClient(tcp.address);
    try {
      expect((await client.listUnits()).map((u) => u.name)).toEqual(["hello.service"]);
      await delay(31_000);
      expect((await client.getUnit("hello.service"))?.name).toBe("hello.service");
    } finally {
      client.close();
    }
  });

  it("fails a request the tunnel never answers with a clear error (--request-timeout)", async () => {
    const held: Socket[] = [];
    const silent = createServer((s) => held.push(s));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      const r = await env.run(
        ["--identity-file", identity, "--known-hosts-file", join(env.dir, "known_hosts"), "--strict-host-key-checking=false",
          "--tunnel", `127.0.0.1:${server.port}`, "--endpoint", endpoint, "--request-timeout", "0.5", "list-units"],
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`?pageSize=65535 via ${endpoint} failed: no answer through the tunnel within 500 ms (raise or set --request-timeout, in seconds; 0 = no limit)`);
      // The library default applies when no --request-timeout is given (not waited for here: 60 s).
      expect(tunnelClient(endpoint)["timeoutMs"]).toBe(60_000);
      expect(new ApiClient({ endpoint })["timeoutMs"]).toBe(0);
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});
