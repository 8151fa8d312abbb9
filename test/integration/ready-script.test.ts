/**
 * The image's readiness reporter (image-builder/overlay/usr/lib/corefleet/ready), run by bash on this
 * host against a real etcd member and a real etcd v3 gRPC proxy: `qemu up` and bench:image wait for
 * its two console lines, on member hosts and on proxy hosts (the 4th machine of a cluster onwards).
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ETCD_ANSWERS_MARKER, fleetdRegisteredMarker } from "../../image-builder/ready-markers";
import { delay } from "../../lib/async/delay";
import { run } from "../../lib/process/run";
import { createEtcdClient } from "../../fleetd/registry/etcd-store";
import { freePort } from "../helpers/etcd";
import { waitFor } from "../helpers/fleet-cluster";
import { etcdFixture } from "../helpers/fleet-fixture";

const script = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../image-builder/overlay/usr/lib/corefleet/ready");
const MACHINE_ID = "0123456789abcdef0123456789abcdef";

interface Reporter {
  lines: string[];
  exited: Promise<number | null>;
  stop(): void;
}

function startReporter(env: Record<string, string>): Reporter {
  const child = spawn("bash", [script], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  let buf = "";
  child.stdout.on("data", (c: Buffer) => {
    buf += c.toString();
    const parts = buf.split("\n");
    buf = parts.pop() ?? "";
    lines.push(...parts);
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { lines, exited, stop: () => child.kill("SIGKILL") };
}

describe("the image's readiness reporter (bash, real etcd and gRPC proxy)", () => {
  const etcd = etcdFixture();
  let dir: string;
  let proxyPort: number;
  const proxy = new AbortController();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "corefleet-ready-"));
    await writeFile(path.join(dir, "machine-id"), `${MACHINE_ID}\n`);
    proxyPort = await freePort();
    void run("etcd", ["grpc-proxy", "start", `--endpoints=127.0.0.1:${etcd().clientPort}`, `--listen-addr=127.0.0.1:${proxyPort}`], {
      signal: proxy.signal, allowFailure: true, captureStdout: false,
    }).catch(() => undefined);
  });

  afterAll(async () => {
    proxy.abort();
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ["a member", "member"],
    ["a gRPC proxy (no JSON gateway: asks the members)", "proxy"],
  ] as const)("on %s: says etcd answers, then that fleetd registered once the machine key exists, and exits 0", async (_what, mode) => {
    const prefix = `/ready-${mode}/`;
    const fleetConf = path.join(dir, `fleet-${mode}.conf`);
    const etcdEnv = path.join(dir, `etcd-${mode}.env`);
    await writeFile(fleetConf, `etcd_key_prefix="${prefix}"\n`);
    await writeFile(etcdEnv, mode === "proxy"
      ? `# test\nCOREFLEET_ETCD_MODE=proxy\nCOREFLEET_ETCD_ENDPOINTS=http://127.0.0.1:${etcd().clientPort}\n`
      : `# test\nETCD_NAME=test\n`);
    const local = `127.0.0.1:${mode === "proxy" ? proxyPort : etcd().clientPort}`;
    const reporter = startReporter({
      COREFLEET_READY_FLEET_CONF: fleetConf,
      COREFLEET_READY_ETCD_ENV: etcdEnv,
      COREFLEET_READY_MACHINE_ID: path.join(dir, "machine-id"),
      COREFLEET_READY_LOCAL_ETCD: local,
    });
    const client = createEtcdClient({ endpoints: [etcd().endpoint] });
    try {
      await waitFor("the etcd line", () => reporter.lines.length > 0);
      // The lines `qemu up` and bench:image wait for (with this test's port instead of 2379).
      const etcdLine = ETCD_ANSWERS_MARKER.replace("127.0.0.1:2379", local);
      expect(reporter.lines).toEqual([etcdLine]);
      // Not registered yet: it keeps asking (every 0.5 s) and says nothing more.
      await delay(1_500);
      expect(reporter.lines).toHaveLength(1);
      await client.put(`${prefix}machines/${MACHINE_ID}`).value("{}");
      expect(await reporter.exited).toBe(0);
      expect(reporter.lines).toEqual([etcdLine, fleetdRegisteredMarker(MACHINE_ID)]);
    } finally {
      reporter.stop();
      client.close();
    }
  });
});
