/**
 * fleetctl's entry point (bundled to dist/fleetctl.cjs): wires the CLI to the process. The only place
 * that sets `process.exitCode`.
 */
import pkg from "../package.json";
import { runFleetctl } from "./program";
import { remoteRegistrars, sshTunnel } from "./ssh";

/**
 * A reader that went away (`fleetctl --help | true`, `history … | head -1`): exit at once and quietly
 * with the status of a process killed by SIGPIPE (128 + 13), as fleet's fleetctl (Go) does. Node
 * ignores SIGPIPE, so the write failed with EPIPE, an unhandled 'error' event and a stack trace.
 */
function exitQuietlyOnBrokenPipe(stream: NodeJS.WriteStream): void {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(141);
    throw err;
  });
}

/** Runs fleetctl with the process's arguments and streams. */
export async function main(): Promise<void> {
  exitQuietlyOnBrokenPipe(process.stdout);
  exitQuietlyOnBrokenPipe(process.stderr);
  const controller = new AbortController();
  // First Ctrl-C: stop waits and remote commands cleanly; a second one exits at once.
  process.once("SIGINT", () => {
    controller.abort(new Error("interrupted"));
    process.once("SIGINT", () => process.exit(130));
  });
  process.exitCode = await runFleetctl(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    version: pkg.version,
    tunnel: sshTunnel,
    registrars: remoteRegistrars,
    signal: controller.signal,
  });
}

void main();
