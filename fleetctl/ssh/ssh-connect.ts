/**
 * Opens SSH connections the way fleetctl needs them: as `--ssh-username` (default core), keys from the
 * ssh-agent (`SSH_AUTH_SOCK`) or `--identity-file`, host keys checked against known_hosts, a set-up
 * timeout (`--ssh-timeout`, not counting the time a prompt waits for the operator), optionally over an
 * existing stream (a channel of the `--tunnel` host).
 */
import { readFile } from "node:fs/promises";
import type { Duplex } from "node:stream";
import type { Client, ConnectConfig } from "ssh2";
import { CliError } from "../cli-error";
import type { CliIO } from "../context";
import type { GlobalOptions } from "../global-options";
import { checkHostKey, HostKeyError } from "./host-key-checker";

export interface SshTarget {
  host: string;
  port: number;
}

export interface ConnectOptions {
  /** Carry the connection over this stream instead of dialing (tunnel). */
  sock?: Duplex;
  /** Forward the local agent (`ssh -A`). */
  forwardAgent?: boolean;
  signal?: AbortSignal;
}

/**
 * Parses `host[:port]` (port 22 when missing; IPv6 in brackets). `what` names where the text came
 * from in errors (e.g. `--tunnel`), which said only "Invalid address".
 */
export function parseHostPort(text: string, defaultPort = 22, what = "address"): SshTarget {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  if (!m) throw new CliError(`Invalid ${what} "${text}": expected HOST[:PORT]`);
  const port = m[2] ? Number(m[2]) : defaultPort;
  if (!(port > 0 && port < 65536)) throw new CliError(`Invalid port in ${what} "${text}": use 1-65535`);
  return { host: m[1]!, port };
}

/** Prompts on one stdin must not interleave: concurrent connections ask one after another. */
const promptChains = new WeakMap<object, Promise<unknown>>();

async function authConfig(globals: GlobalOptions, io: CliIO): Promise<Partial<ConnectConfig>> {
  if (globals.identityFile) {
    try {
      return { privateKey: await readFile(globals.identityFile) };
    } catch (err) {
      throw new CliError(`Cannot read --identity-file "${globals.identityFile}": ${(err as Error).message}`, 1, { cause: err });
    }
  }
  const agent = io.env.SSH_AUTH_SOCK;
  if (!agent) {
    throw new CliError(
      "SSH_AUTH_SOCK environment variable is not set. Verify ssh-agent is running (eval $(ssh-agent); ssh-add), or pass --identity-file PATH.",
    );
  }
  return { agent };
}

/** Connects and authenticates; rejects with a CliError that says what failed and why. */
export async function connectSsh(globals: GlobalOptions, io: CliIO, target: SshTarget, options: ConnectOptions = {}): Promise<Client> {
  const auth = await authConfig(globals, io);
  if (options.forwardAgent) {
    // Forwarding needs a local agent to forward, also when the key itself comes from --identity-file.
    if (!io.env.SSH_AUTH_SOCK) throw new CliError("Cannot forward the SSH agent (-A): SSH_AUTH_SOCK is not set; start ssh-agent and add your key");
    auth.agent = io.env.SSH_AUTH_SOCK;
  }
  // ssh2 is loaded on first use: it costs ~0.1 s of start-up (algorithm probes at import) that
  // commands without SSH (list-units...) should not pay.
  const { Client: SshClient } = await import("ssh2");
  const client = new SshClient();
  const where = `${globals.sshUsername}@${target.host}:${target.port}`;
  return new Promise<Client>((resolve, reject) => {
    let settled = false;
    let hostKeyError: HostKeyError | undefined;
    let timer: NodeJS.Timeout | undefined;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      client.end();
      reject(err);
    };
    const armTimer = (): void => {
      timer = setTimeout(
        () => fail(new CliError(`Unable to connect to ${where}: timed out while initiating SSH connection (after ${globals.sshTimeout} s; see --ssh-timeout)`)),
        globals.sshTimeout * 1000,
      );
    };
    const onAbort = (): void => fail(new CliError(`SSH connection to ${where} aborted`));
    options.signal?.addEventListener("abort", onAbort, { once: true });
    client.on("ready", () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      resolve(client);
    });
    client.on("error", (err) => {
      if (hostKeyError) fail(new CliError(hostKeyError.message, 1, { cause: hostKeyError }));
      else fail(new CliError(`Unable to connect to ${where}: ${err.message}`, 1, { cause: err }));
    });
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: globals.sshUsername,
      // Our own timer bounds the set-up; ssh2's would also count the operator's time at the prompt.
      readyTimeout: 2_147_483_647,
      ...auth,
      ...(options.sock ? { sock: options.sock } : {}),
      ...(options.forwardAgent ? { agentForward: true } : {}),
      hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
        clearTimeout(timer);
        const check = (promptChains.get(io.stdin) ?? Promise.resolve()).then(() =>
          checkHostKey(
            { knownHostsFile: globals.knownHostsFile, strict: globals.strictHostKeyChecking, stdin: io.stdin, stderr: io.stderr },
            target.host,
            target.port,
            key,
          ),
        );
        // The chain only orders the prompts on one terminal: this check's failure is reported to
        // its own caller (who awaits `check`), and must not fail the next host's prompt.
        promptChains.set(
          io.stdin,
          check.catch(() => undefined),
        );
        check.then(
          () => {
            armTimer();
            verify(true);
          },
          (err: unknown) => {
            hostKeyError = err instanceof HostKeyError ? err : new HostKeyError((err as Error).message);
            verify(false);
          },
        );
      },
    };
    armTimer();
    client.connect(config);
  });
}

/** Quotes one argument for a POSIX shell on the remote side. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
