/**
 * fleetctl's entry point (bundled to dist/fleetctl.cjs): wires the CLI to the process. The only place
 * that sets `process.exitCode`.
 */
import pkg from "../package.json";
import { runFleetctl } from "./program";
import { remoteRegistrars, sshTunnel } from "./ssh";

/** Runs fleetctl with the process's arguments and streams. */
export async function main(): Promise<void> {
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
