/**
 * fleetd's entry point (bundled to dist/fleetd.cjs). The only place that logs, reads signals and sets
 * the exit code. Usage: `fleetd [--config PATH]`, `fleetd --version`, `fleetd version`.
 */
import { readFile, stat } from "node:fs/promises";
import { parseArgs } from "node:util";
import pkg from "../package.json";
import { buildConfig, ConfigError, type LoadedConfig } from "./config/config";
import { FleetServer, type ServerEvent } from "./server";

const DEFAULT_CONFIG = "/etc/fleet/fleet.conf";

/** Reads `--config` (must exist) or the default file (optional) and the environment. */
export async function loadConfig(path: string | undefined, env: NodeJS.ProcessEnv): Promise<LoadedConfig & { source: string }> {
  const file = path ?? DEFAULT_CONFIG;
  let text: string | undefined;
  try {
    const st = await stat(file);
    if (st.isDirectory()) throw new ConfigError(`Cannot read configuration ${file}: it is a directory; pass a file with --config`);
    text = await readFile(file, "utf8");
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    if ((err as NodeJS.ErrnoException).code !== "ENOENT" || path !== undefined) {
      throw new ConfigError(`Cannot read configuration ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
  return { ...buildConfig(text, env, file), source: text === undefined ? "defaults and environment" : file };
}

function logLine(level: string, source: string, message: string): void {
  process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${source}: ${message}\n`);
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { config: { type: "string" }, version: { type: "boolean" }, help: { type: "boolean", short: "h" } }, allowPositionals: true });
  } catch (err) {
    process.stderr.write(`fleetd: ${(err as Error).message}\nUsage: fleetd [--config PATH] [--version]\n`);
    return 1;
  }
  const { values, positionals } = parsed;
  if (values.version || (positionals.length === 1 && positionals[0] === "version")) {
    process.stdout.write(`fleetd version ${pkg.version}\n`);
    return 0;
  }
  if (values.help) {
    process.stdout.write("Usage: fleetd [--config PATH] [--version]\nConfiguration: /etc/fleet/fleet.conf (or --config) and FLEET_* environment variables.\n");
    return 0;
  }
  if (positionals.length > 0) {
    process.stderr.write("fleetd takes no arguments. Did you mean to invoke fleetctl instead?\n");
    return 1;
  }
  let loaded;
  try {
    loaded = await loadConfig(values.config, process.env);
  } catch (err) {
    process.stderr.write(`fleetd: ${(err as Error).message}\n`);
    return 1;
  }
  let verbosity = loaded.config.verbosity;
  for (const w of loaded.warnings) logLine("warn", "config", w);
  const onEvent = (e: ServerEvent): void => {
    if (e.level === "debug" && verbosity === 0) return;
    logLine(e.level, e.source, e.message);
  };
  let server: FleetServer;
  try {
    server = await FleetServer.start({ config: loaded.config, version: pkg.version, onEvent });
  } catch (err) {
    logLine("error", "server", (err as Error).message);
    return 1;
  }
  logLine("info", "server", `fleetd ${pkg.version} started as machine ${server.machineId} (configuration from ${loaded.source})`);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      logLine("info", "server", `${sig}: stopping units, leaving the cluster`);
      server.stop({ leave: true }).then(
        () => resolve(0),
        (err: unknown) => {
          logLine("error", "server", `Shutdown failed: ${(err as Error).message}`);
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGHUP", () => {
      logLine("info", "server", `Reloading configuration from ${values.config ?? DEFAULT_CONFIG}`);
      loadConfig(values.config, process.env)
        .then(async (next) => {
          verbosity = next.config.verbosity;
          for (const w of next.warnings) logLine("warn", "config", w);
          await server.reload(next.config);
        })
        .catch((err: unknown) => logLine("error", "server", `Reload failed, keeping the running configuration: ${(err as Error).message}`));
    });
    process.on("SIGUSR1", () => {
      process.stdout.write(`${JSON.stringify({ machineId: server.machineId, registered: server.agent.registered, leader: server.engine?.isLeader ?? false, units: server.agent.snapshot() })}\n`);
    });
  });
}

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // Handles of a stopped server may linger (gRPC channels); the exit code is final.
  setTimeout(() => process.exit(code), 500).unref();
});
