/**
 * fleetctl's command tree, built by a factory that takes its streams, environment and (optionally) an
 * API client, so tests run the whole CLI in-process. `runFleetctl()` is the one place that turns
 * errors into messages and exit codes; `main.ts` only wires it to `process`.
 */
import { resolve as resolvePath } from "node:path";
import { Command, CommanderError, Option } from "commander";
import type { ApiMachine } from "../lib/api/types";
import { apiFailure } from "./api-errors";
import { CliError, ExitCode } from "./cli-error";
import { createApiClient, type TunnelFactory } from "./client-factory";
import { registerDeploy } from "./commands/deploy";
import { registerHistory } from "./commands/history";
import { registerInspect } from "./commands/inspect";
import { registerLifecycle } from "./commands/lifecycle";
import { registerListings } from "./commands/listings";
import { registerRebalance } from "./commands/rebalance";
import { registerScale } from "./commands/scale";
import { registerWhy } from "./commands/why";
import type { Action } from "./commands/action";
import type { CliIO, CommandContext, FleetApi } from "./context";
import { envName, GLOBAL_FLAG_HELP, resolveGlobals, type GlobalOptions } from "./global-options";

/** Extra commands registered by other modules (the SSH commands). */
export type CommandRegistrar = (program: Command, bind: <O>(a: Action<O>) => (...args: unknown[]) => Promise<void>) => void;

export interface ProgramDeps extends CliIO {
  /** Use this API client instead of building one from --endpoint (tests). */
  client?: FleetApi;
  /** fleetctl's version. */
  version: string;
  /** Opens API streams through --tunnel. */
  tunnel?: TunnelFactory;
  /** More commands (ssh, status, journal, fd-forward). */
  registrars?: readonly CommandRegistrar[];
  /** Aborted on Ctrl-C. */
  signal?: AbortSignal;
}

/** Holds the exit status set by the action that ran. */
interface RunState {
  exitCode: number;
  cleanups: (() => void)[];
}

function line(stream: NodeJS.WritableStream, text: string): void {
  stream.write(`${text}\n`);
}

/** Builds the program. Parse with `runFleetctl` (or `parseAsync` + the same error handling). */
export function createProgram(deps: ProgramDeps, state: RunState = { exitCode: 0, cleanups: [] }): Command {
  const program = new Command("fleetctl");
  program
    .description("fleetctl is a command-line interface to fleet, the cluster-wide CoreOS init system.")
    .usage("[global options] <command> [command options] [arguments...]")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => deps.stdout.write(s),
      writeErr: (s) => deps.stderr.write(s),
    })
    .showSuggestionAfterError(true)
    .helpCommand(false)
    .allowExcessArguments(true)
    .addHelpText("after", `\nVERSION:\n  ${deps.version}\n\nEvery global option can also be set as FLEETCTL_<OPTION> (e.g. FLEETCTL_ENDPOINT); a flag wins.`);

  program.addOption(new Option("--endpoint <url>", `${GLOBAL_FLAG_HELP.endpoint!} (default "unix:///var/run/fleet.sock")`));
  program.addOption(new Option("--driver <driver>", "Adapter used to execute fleetctl commands: only API is supported").hideHelp());
  program.addOption(new Option("--tunnel <host[:port]>", GLOBAL_FLAG_HELP.tunnel));
  program.addOption(new Option("--ssh-username <user>", `${GLOBAL_FLAG_HELP["ssh-username"]!} (default "core")`));
  program.addOption(new Option("--ssh-timeout <seconds>", `${GLOBAL_FLAG_HELP["ssh-timeout"]!} (default 10.0)`));
  program.addOption(new Option("--known-hosts-file <path>", `${GLOBAL_FLAG_HELP["known-hosts-file"]!} (default "~/.fleetctl/known_hosts")`));
  program.addOption(new Option("--strict-host-key-checking [bool]", `${GLOBAL_FLAG_HELP["strict-host-key-checking"]!}; a value only as --strict-host-key-checking=false, as in fleet (default true)`));
  program.addOption(new Option("--request-timeout <seconds>", GLOBAL_FLAG_HELP["request-timeout"]));
  program.addOption(new Option("--ca-file <path>", GLOBAL_FLAG_HELP["ca-file"]));
  program.addOption(new Option("--cert-file <path>", GLOBAL_FLAG_HELP["cert-file"]));
  program.addOption(new Option("--key-file <path>", GLOBAL_FLAG_HELP["key-file"]));
  program.addOption(new Option("--identity-file <path>", GLOBAL_FLAG_HELP["identity-file"]));
  program.addOption(new Option("--api-token <token>", GLOBAL_FLAG_HELP["api-token"]));
  program.addOption(new Option("--debug", "Print out more debug information to stderr"));
  program.addOption(new Option("-v, --version", "Print the version and exit"));

  let globals: GlobalOptions | undefined;
  let apiPromise: Promise<FleetApi> | undefined;
  let machinesPromise: Promise<Map<string, ApiMachine>> | undefined;
  const signal = deps.signal ?? new AbortController().signal;

  const ctx: CommandContext = {
    io: deps,
    version: deps.version,
    signal,
    globals: () => {
      if (!globals) {
        const raw = program.opts<Record<string, unknown>>();
        const flags: Record<string, unknown> = { ...raw };
        if (raw.strictHostKeyChecking === true) flags.strictHostKeyChecking = "true";
        // FLEETCTL_DRIVER as fleet read it: FLEETCTL_DRIVER=etcd was ignored, and the etcd URL in
        // FLEETCTL_ENDPOINT then answered the API's requests with "404 page not found".
        const driverEnv = deps.env[envName("driver")];
        const driver = typeof raw.driver === "string" ? raw.driver : driverEnv;
        if (driver !== undefined && driver.toUpperCase() !== "API") {
          const from = typeof raw.driver === "string" ? "" : ` (from ${envName("driver")})`;
          throw new CliError(`Unable to initialize client: unrecognized driver "${driver}"${from}: this fleetctl only speaks the fleet API`);
        }
        const g = resolveGlobals(flags, deps.env);
        // Relative paths are relative to the caller's working directory (injected in tests).
        const cwd = deps.cwd ?? process.cwd();
        for (const key of ["caFile", "certFile", "keyFile", "identityFile", "knownHostsFile"] as const) {
          if (g[key]) g[key] = resolvePath(cwd, g[key]);
        }
        globals = g;
      }
      return globals;
    },
    api: () => {
      apiPromise ??= deps.client
        ? Promise.resolve(deps.client)
        : createApiClient(ctx.globals(), deps, deps.tunnel).then(({ client, close }) => {
            state.cleanups.push(close);
            return client;
          });
      return apiPromise;
    },
    machines: () => {
      machinesPromise ??= ctx
        .api()
        .then((api) => api.listMachines(signal))
        .then((list) => new Map(list.map((m) => [m.id, m])));
      return machinesPromise;
    },
    out: (text) => line(deps.stdout, text),
    err: (text) => line(deps.stderr, text),
    debug: (text) => {
      if (ctx.globals().debug) line(deps.stderr, `${new Date().toISOString()} DEBUG ${text}`);
    },
  };

  const bind =
    <O>(action: Action<O>) =>
    async (...all: unknown[]): Promise<void> => {
      const cmd = all[all.length - 1] as Command;
      ctx.globals(); // validate global options before doing anything
      state.exitCode = await action(ctx, [...cmd.args], cmd.opts() as O);
    };

  program.hook("preAction", (_root, sub) => {
    if (program.opts<{ version?: boolean }>().version && sub !== program) throw new ExitCode(-1);
  });

  program.argument("[command]").action(async (cmdName: string | undefined) => {
    if (program.opts<{ version?: boolean }>().version) {
      line(deps.stdout, `fleetctl version ${deps.version}`);
      return;
    }
    if (cmdName !== undefined) {
      // A prefix of several commands (fleet, like cobra, ran an unambiguous one): name them.
      const matches = program.commands.map((c) => c.name()).filter((n) => n.startsWith(cmdName));
      if (matches.length > 1) {
        throw new CliError(`Ambiguous command "${cmdName}" for "fleetctl": it could be ${matches.slice(0, -1).join(", ")} or ${matches[matches.length - 1]!}; type more of its name`);
      }
      throw new CliError(`Unknown command "${cmdName}" for "fleetctl"; run "fleetctl help" for the list of commands`);
    }
    program.outputHelp();
  });

  registerLifecycle(program, bind);
  registerListings(program, bind);
  registerInspect(program, bind);
  registerScale(program, bind);
  registerDeploy(program, bind);
  registerHistory(program, bind);
  registerWhy(program, bind);
  registerRebalance(program, bind);
  for (const r of deps.registrars ?? []) r(program, bind);
  // Commander's own help command printed the whole help to stderr for an unknown command, with no word of why.
  program
    .command("help")
    .argument("[command]")
    .description("Show help for fleetctl or one of its commands")
    .action((name: string | undefined) => {
      if (name === undefined) return void program.outputHelp();
      const sub = program.commands.find((c) => c.name() === name);
      if (!sub) throw new CliError(`Unknown command "${name}" for "fleetctl"; run "fleetctl help" for the list of commands`);
      sub.outputHelp();
    });
  return program;
}

/**
 * fleet (cobra) accepted an unambiguous prefix of a command name (`fleetctl list-m`). Finds the first
 * operand, skipping global options and their values, and expands it when exactly one command matches.
 */
export function expandCommandPrefix(argv: readonly string[], program: Command): string[] {
  const names = program.commands.map((c) => c.name());
  const valued = new Set(program.options.filter((o) => o.required).flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined)));
  const out = [...argv];
  for (let i = 0; i < out.length; i++) {
    const arg = out[i]!;
    if (arg === "--") break;
    if (arg.startsWith("-")) {
      if (!arg.includes("=") && valued.has(arg)) i++;
      continue;
    }
    if (!names.includes(arg)) {
      const matches = names.filter((n) => n.startsWith(arg));
      if (matches.length === 1) out[i] = matches[0]!;
    }
    break;
  }
  return out;
}

/**
 * A boolean global flag given without `=value` means true, as in fleet (Go flags): the next word is
 * never its value. Commander's optional value would take `list-units` in `--strict-host-key-checking
 * list-units` as the flag's value and run no command; it gets `--strict-host-key-checking=true` instead.
 */
export function bareBooleanFlags(argv: readonly string[]): string[] {
  const end = argv.indexOf("--");
  return argv.map((arg, i) => (arg === "--strict-host-key-checking" && (end < 0 || i < end) ? `${arg}=true` : arg));
}

/**
 * fleet's `--h` (Go's flag package takes -h, --h, -help and --help alike) is `--help`, for the
 * program and every command, as `--l`, `--f` and `--A` are fleet's spellings of `-l`, `-f`, `-A`.
 * Words after `--` are left alone (a remote command's own flags).
 */
export function helpAlias(argv: readonly string[]): string[] {
  const end = argv.indexOf("--");
  return argv.map((arg, i) => (arg === "--h" && (end < 0 || i < end) ? "--help" : arg));
}

/**
 * Runs fleetctl with `argv` (without node and script) and returns the exit code. Every error ends here:
 * commander's (already printed), CliError (printed to stderr), API failures (with fleet's hints).
 */
export async function runFleetctl(argv: readonly string[], deps: ProgramDeps): Promise<number> {
  const state: RunState = { exitCode: 0, cleanups: [] };
  const program = createProgram(deps, state);
  // fleet: "fleetctl --version" / "-v" as the first argument short-circuits.
  if (argv[0] === "--version" || argv[0] === "-v") {
    deps.stdout.write(`fleetctl version ${deps.version}\n`);
    return 0;
  }
  try {
    await program.parseAsync(expandCommandPrefix(bareBooleanFlags(helpAlias(argv)), program), { from: "user" });
    return state.exitCode;
  } catch (err) {
    if (err instanceof ExitCode) {
      if (err.exitCode === -1) {
        deps.stdout.write(`fleetctl version ${deps.version}\n`);
        return 0;
      }
      return err.exitCode;
    }
    if (err instanceof CommanderError) return err.exitCode;
    // Ctrl-C while waiting: stop quietly with the shell's status for SIGINT.
    if (deps.signal?.aborted) return 130;
    const failure = err instanceof CliError ? err : apiFailure("Error", err);
    deps.stderr.write(`${failure.message}\n`);
    return failure.exitCode;
  } finally {
    for (const c of state.cleanups) c();
  }
}
