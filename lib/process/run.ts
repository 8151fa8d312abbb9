/**
 * One wrapper for every subprocess that image-builder, qemu and the tests start: arguments as arrays
 * (never a shell string), a result that doubles as the error, timeouts that name the signal they send,
 * AbortSignal support, and a kill of the whole process group.
 */
import { spawn, type StdioOptions } from "node:child_process";

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, then stdin is closed. */
  input?: string | Buffer;
  /** Milliseconds before the process group gets SIGTERM (then SIGKILL after 5 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Resolve with the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  /** Called with each chunk of stdout/stderr as it arrives (progress output). */
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
  /** Keep stdout in memory (default true). Set false for commands with huge output. */
  captureStdout?: boolean;
  /** Inherit the parent's stdio instead of capturing (interactive commands). */
  inherit?: boolean;
}

export interface RunResult {
  command: string;
  args: readonly string[];
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

const STDERR_TAIL_LINES = 20;

/** A failed subprocess: says which command, how it ended and the tail of what it printed. */
export class ProcessError extends Error {
  override readonly name = "ProcessError";
  constructor(readonly result: RunResult, options?: { cause?: unknown }) {
    super(describeFailure(result), options);
  }
}

function describeFailure(r: RunResult): string {
  const how = r.timedOut
    ? `timed out after ${r.durationMs} ms and was sent SIGTERM`
    : r.signal
      ? `was killed by ${r.signal}`
      : `exited with code ${r.exitCode}`;
  const tail = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-STDERR_TAIL_LINES).join("\n");
  return `Command "${[r.command, ...r.args].join(" ")}" ${how}${tail ? `:\n${tail}` : ""}`;
}

/** Runs a command to completion. Throws `ProcessError` unless it exits 0 (or `allowFailure`). */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  return new Promise<RunResult>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(options.signal.reason instanceof Error ? options.signal.reason : new Error("aborted"));
      return;
    }
    const stdio: StdioOptions = options.inherit ? "inherit" : ["pipe", "pipe", "pipe"];
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio,
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const capture = options.captureStdout ?? true;

    const killGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
      }
    };
    const terminate = (): void => {
      killGroup("SIGTERM");
      killTimer ??= setTimeout(() => killGroup("SIGKILL"), 5_000);
    };
    const timeout =
      options.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            terminate();
          }, options.timeoutMs)
        : undefined;
    const onAbort = (): void => terminate();
    options.signal?.addEventListener("abort", onAbort, { once: true });

    child.stdout?.setEncoding("utf8").on("data", (c: string) => {
      if (capture) stdout += c;
      options.onStdout?.(c);
    });
    child.stderr?.setEncoding("utf8").on("data", (c: string) => {
      stderr += c;
      if (stderr.length > 1_000_000) stderr = stderr.slice(-500_000);
      options.onStderr?.(c);
    });
    if (child.stdin) {
      child.stdin.on("error", () => undefined);
      child.stdin.end(options.input ?? "");
    }
    child.on("error", (err) => {
      clearTimeout(timeout);
      clearTimeout(killTimer);
      options.signal?.removeEventListener("abort", onAbort);
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? `"${command}" is not installed or not on PATH` : err.message;
      reject(new Error(`Cannot run "${command}": ${why}`, { cause: err }));
    });
    child.on("close", (exitCode, signal) => {
      clearTimeout(timeout);
      clearTimeout(killTimer);
      options.signal?.removeEventListener("abort", onAbort);
      const result: RunResult = {
        command,
        args,
        exitCode,
        signal,
        stdout,
        stderr,
        durationMs: Date.now() - started,
        timedOut,
      };
      if (options.signal?.aborted) {
        reject(new ProcessError(result, { cause: options.signal.reason }));
      } else if (exitCode === 0 || options.allowFailure) {
        resolve(result);
      } else {
        reject(new ProcessError(result));
      }
    });
  });
}
