/**
 * Test harness: a real etcd (Debian's etcd-server) on 127.0.0.1 with random free ports and a temporary
 * data directory. Supports the faults the integration tests need: graceful stop, hard kill, restart on
 * the same ports and data (so clients reconnect to the same endpoint), and pause/resume (SIGSTOP/SIGCONT:
 * connections stay open but nothing answers, like a partition).
 *
 * Usage:
 * ```ts
 * const etcd = await startEtcd();
 * try { ... etcd.endpoint ... } finally { await etcd.cleanup(); }
 * ```
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { delay } from "../../lib/async/delay";
import { run, type RunResult } from "../../lib/process/run";

export interface EtcdOptions {
  /** Maximum operations per transaction (etcd's `--max-txn-ops`, default 128). */
  maxTxnOps?: number;
  /** How long to wait for etcd to answer /health after (re)start. Default 20 s. */
  startTimeoutMs?: number;
  /**
   * Parent directory of the data directory (default: the OS temp dir). Benches pass `/dev/shm` to
   * measure fleetd rather than this disk's fsync latency; they report raw etcd puts/s for comparison.
   */
  dataDirParent?: string;
  /** Extra command-line flags. */
  extraArgs?: readonly string[];
  signal?: AbortSignal;
}

export interface EtcdInstance {
  /** `http://127.0.0.1:<client port>` */
  readonly endpoint: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  /** PID of the running etcd, or undefined while stopped. */
  readonly pid: number | undefined;
  /** Graceful stop (SIGTERM), waits for exit. Idempotent. */
  stop(): Promise<void>;
  /** Hard kill (SIGKILL), waits for exit. Idempotent. */
  kill(): Promise<void>;
  /** Starts again on the same ports and data directory and waits until healthy. */
  start(): Promise<void>;
  /** stop() + start(). */
  restart(): Promise<void>;
  /** SIGSTOP: etcd stops answering but keeps its sockets (a partition, not a crash). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** The tail of etcd's log, for failure messages. */
  logTail(lines?: number): string;
  /** Stops etcd and removes the data directory. */
  cleanup(): Promise<void>;
}

/** etcd's Prometheus metrics at this moment: the text, and a reader of one unlabelled gauge (NaN if absent). */
export async function etcdMetrics(endpoint: string): Promise<{ text: string; gauge(name: string): number }> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  return { text, gauge: (name) => Number(new RegExp(`^${name} (\\S+)`, "m").exec(text)?.[1] ?? NaN) };
}

/** A TCP port that was free a moment ago on 127.0.0.1 (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => {
        if (addr && typeof addr === "object") resolve(addr.port);
        else reject(new Error("Cannot pick a free port: the OS returned no address"));
      });
    });
  });
}

/** Finds the PID of the etcd whose command line names our data directory (run() does not expose PIDs). */
async function findPid(dataDir: string): Promise<number | undefined> {
  const needle = `--data-dir=${dataDir}`;
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.split("\0").includes(needle)) return Number(entry);
    } catch (err) {
      // Processes come and go while we scan; a vanished one is simply not ours.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT" && (err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
    }
  }
  return undefined;
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1_000) });
    const body = (await res.json()) as { health?: string };
    return res.ok && body.health === "true";
  } catch {
    return false;
  }
}

/** Starts a fresh etcd on loopback and waits until it reports healthy. */
export async function startEtcd(options: EtcdOptions = {}): Promise<EtcdInstance> {
  const dataDir = await mkdtemp(join(options.dataDirParent ?? tmpdir(), "corefleet-etcd-"));
  const clientPort = await freePort();
  let peerPort = await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const args = [
    "--name=test",
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${endpoint}`,
    `--advertise-client-urls=${endpoint}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=test=${peerUrl}`,
    `--max-txn-ops=${options.maxTxnOps ?? 128}`,
    // Tests create and drop thousands of revisions; keep the log quiet and the backend small.
    "--log-level=warn",
    "--logger=zap",
    "--snapshot-count=100000",
    ...(options.extraArgs ?? []),
  ];
  const startTimeout = options.startTimeoutMs ?? 20_000;
  let log = "";
  let controller: AbortController | undefined;
  let exited: Promise<RunResult> | undefined;
  let pid: number | undefined;

  const launch = async (): Promise<void> => {
    controller = new AbortController();
    const done = run("etcd", args, {
      signal: controller.signal,
      allowFailure: true,
      captureStdout: false,
      onStderr: (c) => {
        log += c;
        if (log.length > 200_000) log = log.slice(-100_000);
      },
    }).catch((err: unknown) => ({ error: err }) as unknown as RunResult);
    exited = done;
    let ended = false;
    void done.then(() => {
      ended = true;
    });
    const deadline = Date.now() + startTimeout;
    while (!(await healthy(endpoint))) {
      if (ended) throw new Error(`Cannot start etcd on ${endpoint}: it exited during start-up:\n${tail(log, 20)}`);
      if (Date.now() > deadline) {
        controller.abort();
        throw new Error(`Cannot start etcd on ${endpoint}: not healthy after ${startTimeout} ms:\n${tail(log, 20)}`);
      }
      await delay(50, options.signal);
    }
    pid = await findPid(dataDir);
  };

  const halt = async (sig: NodeJS.Signals): Promise<void> => {
    if (!exited) return;
    if (pid !== undefined) {
      if (sig === "SIGKILL") process.kill(pid, "SIGCONT");
      try {
        process.kill(pid, sig);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
      }
    } else {
      controller?.abort();
    }
    await exited;
    exited = undefined;
    pid = undefined;
  };

  await launch();
  const instance: EtcdInstance = {
    endpoint,
    clientPort,
    peerPort,
    dataDir,
    get pid() {
      return pid;
    },
    stop: () => halt("SIGTERM"),
    kill: () => halt("SIGKILL"),
    start: async () => {
      if (!exited) await launch();
    },
    restart: async () => {
      await halt("SIGTERM");
      await launch();
    },
    pause: () => {
      if (pid !== undefined) process.kill(pid, "SIGSTOP");
    },
    resume: () => {
      if (pid !== undefined) process.kill(pid, "SIGCONT");
    },
    logTail: (lines = 30) => tail(log, lines),
    cleanup: async () => {
      await halt("SIGKILL");
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return instance;
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}
