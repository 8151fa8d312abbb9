/**
 * The child processes of `npm run bench:scheduler`: fleetd's side (engine + API, `engine-process.ts`),
 * the operator's client (`submit-process.ts`) and the launch observer (`observer-process.ts`), each in
 * a process of its own so that its CPU and RSS are its own. Each answers on stdout, one JSON line per
 * request.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { EngineStats } from "../fleetd/engine/engine";
import type { TxnBatcherStats } from "../fleetd/registry/txn-batcher";

const ENGINE_PROCESS = new URL("./engine-process.ts", import.meta.url).pathname;
const SUBMIT_PROCESS = new URL("./submit-process.ts", import.meta.url).pathname;
const OBSERVER_PROCESS = new URL("./observer-process.ts", import.meta.url).pathname;

/**
 * A child process that answers on stdout one line per request. Lines that come while nobody waits
 * are kept in order; waiting for a line fails once the process has exited.
 */
class LineChild {
  private readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private readonly waiting: ((line: string) => void)[] = [];
  readonly exited: Promise<number | null>;
  constructor(
    private readonly what: string,
    args: readonly string[],
  ) {
    this.child = spawn(process.execPath, [...args], { stdio: ["pipe", "pipe", "inherit"] });
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      const waiter = this.waiting.shift();
      if (waiter) waiter(line);
      else this.lines.push(line);
    });
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }
  get pid(): number | undefined {
    return this.child.pid;
  }
  /** Writes `text` to its stdin (ending it when `end`), then resolves with its next line. */
  ask(text: string | undefined, o: { end?: boolean } = {}): Promise<string> {
    const line = this.next();
    if (o.end) this.child.stdin!.end(text);
    else if (text !== undefined) this.child.stdin!.write(text);
    return line;
  }
  next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve, reject) => {
      this.waiting.push(resolve);
      void this.exited.then((code) => reject(new Error(`the bench's ${this.what} process exited (code ${code}) before answering`)));
    });
  }
  endInput(): void {
    this.child.stdin!.end();
  }
  kill(): void {
    this.child.kill("SIGKILL");
  }
  /** Ends its input and waits for it to exit (killed after 10 s). */
  async stop(): Promise<void> {
    this.endInput();
    const timer = setTimeout(() => this.kill(), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** What the three wrappers share: the child, its pid, its first line (loaded), and stopping it. */
abstract class BenchChild {
  protected readonly child: LineChild;
  constructor(what: string, args: readonly string[]) {
    this.child = new LineChild(what, args);
  }
  get pid(): number | undefined {
    return this.child.pid;
  }
  /** Resolves once the process says it is loaded (its first line). */
  async ready(): Promise<void> {
    await this.child.next();
  }
  stop(): Promise<void> {
    return this.child.stop();
  }
}

/** The operator's client (`bench/submit-process.ts`) in its own process: loaded, then told to submit. */
export class SubmitProcess extends BenchChild {
  constructor(o: { socketPath: string; mode: string; units: number; concurrency: number; text: string }) {
    super("submit", ["--import", "tsx", SUBMIT_PROCESS, o.socketPath, o.mode, String(o.units), String(o.concurrency), JSON.stringify(o.text)]);
  }
  /** Submits `n` warm-up units `<prefix>0..n-1.service` the same way, before the clock starts. */
  async warm(n: number, prefix: string): Promise<void> {
    await this.child.ask(`warm ${n} ${prefix}\n`);
  }
  /** Destroys the warm-up units `<prefix>0..n-1.service` through the API. */
  async unwarm(n: number, prefix: string): Promise<void> {
    await this.child.ask(`unwarm ${n} ${prefix}\n`);
  }
  /** Submits every unit; resolves with each unit's send time on this process's performance clock, and the client's CPU. */
  async submit(): Promise<{ submittedAt: number[]; cpuSeconds: number }> {
    const { submittedAt, cpuSeconds } = JSON.parse(await this.child.ask("go\n", { end: true })) as { submittedAt: number[]; cpuSeconds: number };
    await this.child.exited;
    return { submittedAt: submittedAt.map((t) => t - performance.timeOrigin), cpuSeconds };
  }
  kill(): void {
    this.child.kill();
  }
}

/** The engine+API process: started, asked for stats, stopped. */
export class EngineProcess extends BenchChild {
  constructor(o: { endpoint: string; socketPath: string; prefix: string; graceMs: number }) {
    super("engine", [...(process.env.BENCH_ENGINE_NODE_ARGS ?? "").split(" ").filter(Boolean), "--import", "tsx", ENGINE_PROCESS, o.endpoint, o.prefix, o.socketPath, String(o.graceMs)]);
  }
  async stats(): Promise<{ engine: EngineStats; batcher: TxnBatcherStats; rssBytes: number }> {
    return JSON.parse(await this.child.ask("stats\n")) as { engine: EngineStats; batcher: TxnBatcherStats; rssBytes: number };
  }
  /** Starts a CPU profile of the engine+API process. */
  async startProfile(): Promise<void> {
    await this.child.ask("profile start\n");
  }
  /** Stops it and writes it to `file`. */
  async stopProfile(file: string): Promise<void> {
    await this.child.ask(`profile stop ${file}\n`);
  }
}

/** The launch observer (`bench/observer-process.ts`): says when N units are seen launched in etcd. */
export class ObserverProcess extends BenchChild {
  constructor(o: { endpoint: string; prefix: string; fromRevision: number; warmPrefix: string }) {
    super("observer", ["--import", "tsx", OBSERVER_PROCESS, o.endpoint, o.prefix, String(o.fromRevision), o.warmPrefix]);
  }
  /**
   * Resolves once `n` units (or `n` warm-up units) are seen launched, with the time the last was seen
   * on this process's performance clock.
   */
  async reached(kind: "launched" | "warm", n: number): Promise<number> {
    const { at } = JSON.parse(await this.child.ask(`${kind} ${n}\n`)) as { at: number };
    return at - performance.timeOrigin;
  }
}
