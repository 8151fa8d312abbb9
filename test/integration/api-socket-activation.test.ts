/**
 * systemd socket activation of the API, with systemd's own `systemd-socket-activate` holding the unix
 * socket and starting the server process on the first connection (LISTEN_FDS=1, LISTEN_PID, fd 3).
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiClient } from "../../lib/api/client";
import { delay } from "../../lib/async/delay";
import { run } from "../../lib/process/run";
import { socketActivationFds } from "../../fleetd/api";

const FIXTURE = fileURLToPath(new URL("./api-socket-activation-fixture.ts", import.meta.url));

describe("API under systemd socket activation", () => {
  let dir: string;
  const stop = new AbortController();
  let activator: Promise<unknown>;
  let stderr = "";

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "api-activation-"));
    const sock = join(dir, "fleet.sock");
    activator = run("systemd-socket-activate", ["-l", sock, process.execPath, "--import", "tsx", FIXTURE], {
      signal: stop.signal,
      allowFailure: true,
      onStderr: (c) => (stderr += c),
    }).catch(() => undefined);
    for (let i = 0; i < 100; i++) {
      if (await stat(sock).then(() => true, () => false)) break;
      await delay(50);
    }
  });

  afterAll(async () => {
    stop.abort();
    await activator;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("only uses fds meant for this process", () => {
    expect(socketActivationFds({ LISTEN_PID: "42", LISTEN_FDS: "2" }, 42)).toEqual([3, 4]);
    expect(socketActivationFds({ LISTEN_PID: "41", LISTEN_FDS: "2" }, 42)).toEqual([]);
    expect(socketActivationFds({ LISTEN_FDS: "1" }, 42)).toEqual([]);
  });

  it("serves requests on the inherited socket, started by the first connection", async () => {
    const client = new ApiClient({ endpoint: `unix://${join(dir, "fleet.sock")}`, requestTimeoutMs: 30_000 });
    try {
      expect(await client.listMachines()).toEqual([{ id: "activated", primaryIP: "10.9.9.9" }]);
    } finally {
      client.close();
    }
    expect(stderr).toContain("listening on fd://3");
    expect(stderr).not.toContain("should-not-be-used");
  });
});
