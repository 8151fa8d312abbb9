/**
 * The child processes of `npm run bench:scheduler`: fleetd's side (engine + API, `engine-process.ts`)
 * and the operator's client (`submit-process.ts`), each in a process of its own so that its CPU and
 * RSS are its own. Both answer on stdout, one JSON line per request.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { EngineStats } from "../fleetd/engine/engine";
import type { TxnBatcherStats } from "../fleetd/registry/txn-batcher";

const ENGINE_PROCESS = new URL("./engine-process.ts", import.meta.url).pathname;
const SUBMIT_PROCESS = new URL("./submit-process.ts", import.meta.url).pathname;

/** The operator's client (`bench/submit-process.ts`) in its own process: loaded, then told to submit. */
export class SubmitProcess {
  private readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private waiting: ((line: string) => void) | undefined;
  private readonly exited: Promise<number | null>;
  constructor(o: { socketPath: string; mode: string; units: number; concurrency: number; text: string }) {
    this.child = spawn(process.execPath, ["--import", "tsx", SUBMIT_PROCESS, o.socketPath, o.mode, String(o.units), String(o.concurrency), JSON.stringify(o.text)], { stdio: ["pipe", "pipe", "inherit"] });
    createInterface({ input: this.child.stdout! }).on("line", (line) => (this.waiting ? this.waiting(line) : this.lines.push(line)));
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }
  get pid(): number | undefined {
    return this.child.pid;
  }
  private next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve, reject) => {
      this.waiting = (l) => {
        this.waiting = undefined;
        resolve(l);
      };
      void this.exited.then((code) => reject(new Error(`the bench's submit process exited (code ${code}) before answering`)));
    });
  }
  async ready(): Promise<void> {
    await this.next();
  }
  /** Submits every unit; resolves with each unit's send time on this process's performance clock, and the client's CPU. */
  async submit(): Promise<{ submittedAt: number[]; cpuSeconds: number }> {
    const answer = this.next();
    this.child.stdin!.end("go\n");
    const { submittedAt, cpuSeconds } = JSON.parse(await answer) as { submittedAt: number[]; cpuSeconds: number };
    await this.exited;
    return { submittedAt: submittedAt.map((t) => t - performance.timeOrigin), cpuSeconds };
  }
  kill(): void {
    this.child.kill("SIGKILL");
  }
}

/** The engine+API process: started, asked for stats, stopped. */
export class EngineProcess {
  private readonly child: ChildProcess;
  private readonly waiting: ((line: string) => void)[] = [];
  readonly exited: Promise<void>;

  constructor(o: { endpoint: string; socketPath: string; prefix: string; graceMs: number }) {
    this.child = spawn(process.execPath, [...(process.env.BENCH_ENGINE_NODE_ARGS ?? "").split(" ").filter(Boolean), "--import", "tsx", ENGINE_PROCESS, o.endpoint, o.prefix, o.socketPath, String(o.graceMs)], { stdio: ["pipe", "pipe", "inherit"] });
    createInterface({ input: this.child.stdout! }).on("line", (line) => this.waiting.shift()?.(line));
    this.exited = new Promise((resolve) => this.child.once("exit", () => resolve()));
  }
  private next(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.waiting.push(resolve);
      void this.exited.then(() => reject(new Error("the bench's engine process exited")));
    });
  }
  get pid(): number | undefined {
    return this.child.pid;
  }
  async ready(): Promise<void> {
    await this.next();
  }
  async stats(): Promise<{ engine: EngineStats; batcher: TxnBatcherStats; rssBytes: number }> {
    const answer = this.next();
    this.child.stdin!.write("stats\n");
    return JSON.parse(await answer) as { engine: EngineStats; batcher: TxnBatcherStats; rssBytes: number };
  }
  async stop(): Promise<void> {
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}
