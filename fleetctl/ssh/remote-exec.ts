/** Runs a command (or an interactive shell) over an SSH connection; resolves with its exit code. */
import type { Client, ClientChannel, ExecOptions } from "ssh2";
import { CliError } from "../cli-error";
import type { CliIO } from "../context";

/** Exit status reported when the remote side gave none (killed by a signal, connection lost). */
export const REMOTE_FAILURE_EXIT = 255;

/** ssh2 honours `agentForward` per session at run time; its type definitions lack the field. */
function sessionOptions(forwardAgent: boolean | undefined): ExecOptions {
  return (forwardAgent ? { agentForward: true } : {}) as ExecOptions;
}

/** Exit status after Ctrl-C (128 + SIGINT), as shells report it. */
export const INTERRUPTED_EXIT = 130;

function pump(channel: ClientChannel, io: CliIO, signal?: AbortSignal): Promise<number> {
  return new Promise((resolve) => {
    let code: number | undefined;
    // Ctrl-C ends the remote command too (journal -f runs until then).
    const onAbort = (): void => {
      code = INTERRUPTED_EXIT;
      channel.signal("INT");
      channel.close();
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    channel.on("close", () => signal?.removeEventListener("abort", onAbort));
    channel.on("data", (d: Buffer) => io.stdout.write(d));
    channel.stderr.on("data", (d: Buffer) => io.stderr.write(d));
    channel.on("exit", (c: number | null) => {
      code = c ?? REMOTE_FAILURE_EXIT;
    });
    channel.on("close", () => resolve(code ?? REMOTE_FAILURE_EXIT));
  });
}

/** Runs `command`; stdout/stderr stream to the CLI's. */
export function execRemote(client: Client, command: string, io: CliIO, opts: { forwardAgent?: boolean; signal?: AbortSignal } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    client.exec(command, sessionOptions(opts.forwardAgent), (err, channel) => {
      if (err) {
        reject(new CliError(`Cannot run "${command}" over SSH: ${err.message}`, 1, { cause: err }));
        return;
      }
      channel.stdin.end();
      pump(channel, io, opts.signal).then(resolve, reject);
    });
  });
}

/** An interactive shell; with a PTY (xterm-256color) when stdin is a terminal, as fleet. */
export function shellRemote(client: Client, io: CliIO, opts: { forwardAgent?: boolean; signal?: AbortSignal } = {}): Promise<number> {
  const tty = io.stdin.isTTY === true;
  const out = io.stdout as NodeJS.WriteStream;
  const window = tty ? { term: "xterm-256color", rows: out.rows || 24, cols: out.columns || 80, width: 0, height: 0 } : false;
  return new Promise((resolve, reject) => {
    client.shell(window, sessionOptions(opts.forwardAgent), (err, channel) => {
      if (err) {
        reject(new CliError(`Cannot open a shell over SSH: ${err.message}`, 1, { cause: err }));
        return;
      }
      const stdin = io.stdin as NodeJS.ReadStream;
      if (tty && typeof stdin.setRawMode === "function") stdin.setRawMode(true);
      io.stdin.pipe(channel);
      pump(channel, io, opts.signal)
        .then((code) => {
          io.stdin.unpipe(channel);
          if (tty && typeof stdin.setRawMode === "function") stdin.setRawMode(false);
          io.stdin.pause();
          resolve(code);
        })
        .catch(reject);
    });
  });
}
