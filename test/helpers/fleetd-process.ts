/**
 * Test helper: a real fleetd process (`node --import tsx fleetd/main.ts --config FILE`) with the
 * in-memory unit manager, its own API socket and lease file in `dir`, its stderr log captured, and
 * signals sent to it (SIGHUP after rewriting its configuration file).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface FleetdProcess {
  readonly id: string;
  readonly configFile: string;
  /** Everything it logged so far. */
  log(): string;
  /** Rewrites its configuration file (merged over the first one) and sends SIGHUP. */
  reload(changes: Record<string, string>): Promise<void>;
  /** SIGTERM (leave the cluster) and wait for it to exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, if still running (cleanup). */
  kill(): void;
}

function configText(lines: Record<string, string>): string {
  return `${Object.entries(lines).map(([k, v]) => `${k}=${v}`).join("\n")}\n`;
}

export async function startFleetdProcess(dir: string, id: string, lines: Record<string, string>): Promise<FleetdProcess> {
  const configFile = join(dir, `${id}.conf`);
  let current = {
    machine_id: id,
    unit_manager: "memory",
    api_socket: join(dir, `${id}.sock`),
    lease_file: join(dir, `${id}.lease`),
    public_ip: `10.9.0.${id.length}`,
    ...lines,
  };
  await writeFile(configFile, configText(current));
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "fleetd/main.ts", "--config", configFile], {
    cwd: process.cwd(),
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("FLEET_"))),
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr?.setEncoding("utf8").on("data", (c: string) => (log += c));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    id,
    configFile,
    log: () => log,
    reload: async (changes) => {
      current = { ...current, ...changes };
      await writeFile(configFile, configText(current));
      child.kill("SIGHUP");
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}
