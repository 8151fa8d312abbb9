/**
 * ssh, status, journal: commands that run something on the machine of a unit (or a machine), over SSH,
 * or locally when that machine is this one. Their exit code is the remote command's.
 */
import { readFile } from "node:fs/promises";
import { Option, type Command } from "commander";
import type { Client } from "ssh2";
import type { ApiUnit } from "../../lib/api/types";
import { run } from "../../lib/process/run";
import { isTemplate, mangleUnitName, parseUnitName } from "../../lib/unit";
import { CliError, ExitCode } from "../cli-error";
import type { Action } from "../commands/action";
import { parseNonNegative, parsePort } from "../commands/action";
import type { CommandContext } from "../context";
import type { CommandRegistrar } from "../program";
import { machineFullLegend } from "../legend";
import { isGlobalUnit, lookupUnits } from "../unit-lookup";
import { describeUnscheduled, isUnscheduled } from "../unscheduled-reason";
import { fdForward } from "./fd-forward";
import { execRemote, INTERRUPTED_EXIT, shellRemote } from "./remote-exec";
import { connectSsh, shellQuote } from "./ssh-connect";
import { connectTunnelHost, forwardThrough } from "./tunnel";

interface RemoteOpts {
  sshPort?: number;
  forwardAgent?: boolean;
  machine?: string;
  unit?: string;
  lines?: number;
  follow?: boolean;
  output?: string;
  sudo?: boolean;
}

async function localMachineId(ctx: CommandContext): Promise<string | undefined> {
  try {
    return (await readFile(ctx.io.machineIdFile ?? "/etc/machine-id", "utf8")).trim() || undefined;
  } catch {
    // No machine ID here (not a fleet host): everything is remote.
    return undefined;
  }
}

/** Connects to `host:port`, through the `--tunnel` host when one is set. */
async function connectTo(ctx: CommandContext, host: string, port: number, forwardAgent: boolean): Promise<{ client: Client; close: () => void }> {
  const globals = ctx.globals();
  if (!globals.tunnel) {
    const client = await connectSsh(globals, ctx.io, { host, port }, { forwardAgent, signal: ctx.signal });
    return { client, close: () => client.end() };
  }
  const jump = await connectTunnelHost(globals, ctx.io);
  try {
    const sock = await forwardThrough(jump, host, port);
    const client = await connectSsh(globals, ctx.io, { host, port }, { sock, forwardAgent, signal: ctx.signal });
    return {
      client,
      close: () => {
        client.end();
        jump.end();
      },
    };
  } catch (err) {
    jump.end();
    throw err;
  }
}

/** Runs `command` on machine `machineID`: locally when it is this machine, else over SSH. */
async function runOnMachine(ctx: CommandContext, machineID: string, command: string, sshPort: number): Promise<number> {
  if (machineID === (await localMachineId(ctx))) {
    const res = await run("sh", ["-c", command], {
      env: ctx.io.env,
      allowFailure: true,
      captureStdout: false,
      signal: ctx.signal,
      onStdout: (c) => ctx.io.stdout.write(c),
      onStderr: (c) => ctx.io.stderr.write(c),
    });
    return ctx.signal.aborted ? INTERRUPTED_EXIT : (res.exitCode ?? 255);
  }
  const machine = (await ctx.machines()).get(machineID);
  if (!machine?.primaryIP) {
    throw new CliError(`Cannot reach machine ${machineID}: it is not registered or published no IP address; check "fleetctl list-machines"`);
  }
  const { client, close } = await connectTo(ctx, machine.primaryIP, sshPort, false);
  try {
    return await execRemote(client, command, ctx.io, { signal: ctx.signal });
  } finally {
    close();
  }
}

/** For a template, which never runs itself: " It is a template; ask about an instance, e.g. …". */
function templateHint(name: string, command: string): string {
  if (!isTemplate(name)) return "";
  const { prefix, suffix } = parseUnitName(name);
  return ` It is a template, which never runs itself; ask about an instance, e.g. "fleetctl ${command} ${prefix}@1${suffix}" ("fleetctl list-units" lists them).`;
}

async function requireUnit(ctx: CommandContext, arg: string, missing: (name: string) => string): Promise<ApiUnit> {
  const name = mangleUnitName(arg);
  const unit = (await lookupUnits(ctx, [name])).get(name);
  if (!unit) throw new CliError(missing(name));
  return unit;
}

/**
 * Machines a global unit is on: those publishing a state for it (their agents load it; a state goes
 * with the unload or with the machine's lease), in machine-ID order.
 */
async function machinesOfGlobal(ctx: CommandContext, unit: ApiUnit): Promise<string[]> {
  const states = await (await ctx.api()).listUnitStates({ unitName: unit.name }, ctx.signal);
  return [...new Set(states.filter((s) => s.name === unit.name).map((s) => s.machineID))].sort();
}

/**
 * A global unit's status on every machine that has it, each after a header naming the machine; all
 * machines are shown even when one fails, and the exit code is the first non-zero one.
 */
async function statusOfGlobal(ctx: CommandContext, unit: ApiUnit, sshPort: number, separate: () => void): Promise<number> {
  const machineIDs = await machinesOfGlobal(ctx, unit);
  if (machineIDs.length === 0) {
    throw new CliError(`Global unit ${unit.name} is on no machine: no machine matches its [X-Fleet] section, or it is inactive ("fleetctl list-units" shows where units run)`);
  }
  const machines = await ctx.machines();
  let exit = 0;
  for (const machineID of machineIDs) {
    separate();
    ctx.out(`${unit.name} on ${machineFullLegend(machineID, machines.get(machineID), false)}:`);
    const code = await runOnMachine(ctx, machineID, `systemctl status -l ${shellQuote(unit.name)}`, sshPort);
    if (ctx.signal.aborted) return code;
    if (exit === 0) exit = code;
  }
  return exit;
}

export const status: Action<RemoteOpts> = async (ctx, args, opts) => {
  if (args.length === 0) throw new CliError("One or more units must be provided");
  let first = true;
  const separate = (): void => {
    if (!first) ctx.out("");
    first = false;
  };
  for (const arg of args) {
    const unit = await requireUnit(ctx, arg, (n) => `Unit ${n} does not exist.`);
    if (isGlobalUnit(unit)) {
      const code = await statusOfGlobal(ctx, unit, opts.sshPort ?? 22, separate);
      if (code !== 0) throw new ExitCode(code);
      continue;
    }
    if (isUnscheduled(unit, false)) throw new CliError(describeUnscheduled(unit));
    if ((unit.currentState ?? "inactive") === "inactive" || !unit.machineID) throw new CliError(`Unit ${unit.name} does not appear to be loaded.${templateHint(unit.name, "status")}`);
    separate();
    const code = await runOnMachine(ctx, unit.machineID, `systemctl status -l ${shellQuote(unit.name)}`, opts.sshPort ?? 22);
    if (code !== 0) throw new ExitCode(code);
  }
  return 0;
};

export const journal: Action<RemoteOpts> = async (ctx, args, opts) => {
  if (args.length !== 1) throw new CliError("One unit file must be provided.");
  const unit = await requireUnit(ctx, args[0]!, (n) => `Unit ${n} does not exist.`);
  if (isGlobalUnit(unit)) throw new CliError(`Unable to retrieve journal of global unit ${unit.name}.`);
  // As status: a unit the engine cannot place says why ("does not appear to be running" did not).
  if (isUnscheduled(unit, false)) throw new CliError(describeUnscheduled(unit));
  if ((unit.currentState ?? "inactive") === "inactive" || !unit.machineID) throw new CliError(`Unit ${unit.name} does not appear to be running.${templateHint(unit.name, "journal")}`);
  let command = `journalctl --unit ${shellQuote(unit.name)} --no-pager -n ${opts.lines ?? 10} --output ${shellQuote(opts.output ?? "short")}`;
  if (opts.sudo) command = `sudo ${command}`;
  if (opts.follow) command += " -f";
  const code = await runOnMachine(ctx, unit.machineID, command, opts.sshPort ?? 22);
  return code === 0 ? 0 : Promise.reject(new ExitCode(code));
};

/** fleet's ssh target lookup: machine-ID prefix and/or unit name. */
async function resolveSshTarget(ctx: CommandContext, opts: RemoteOpts, args: string[]): Promise<{ address: string; rest: string[] }> {
  if (opts.machine && opts.unit) throw new CliError("Both machine and unit flags provided, please specify only one.");
  const machines = await ctx.machines();
  // fleet's terse errors come first (scripts may match them), then which name and what to do.
  const byMachine = (prefix: string): { ip?: string; error?: string } => {
    const found = [...machines.values()].filter((m) => m.id.startsWith(prefix));
    if (found.length === 0) return { error: `machine does not exist: no machine ID starts with "${prefix}" ("fleetctl list-machines" lists them)` };
    if (found.length > 1) return { error: `found more than one machine: ${found.length} machine IDs start with "${prefix}"; give more of the ID ("fleetctl list-machines --full")` };
    return { ip: found[0]!.primaryIP ?? "" };
  };
  const byUnit = async (arg: string): Promise<{ ip?: string; error?: string; exists: boolean }> => {
    const name = mangleUnitName(arg);
    const unit = await (await ctx.api()).getUnit(name, ctx.signal);
    if (!unit) return { error: `unit does not exist: no unit ${name} in the cluster ("fleetctl list-unit-files" lists them)`, exists: false };
    if (isGlobalUnit(unit)) {
      return { error: `global units unsupported: ${name} runs on every machine that matches it; pick one with "fleetctl ssh --machine ID" ("fleetctl list-units" shows where it runs)`, exists: true };
    }
    if (!unit.machineID) return { error: `unit ${name} is not scheduled on any machine; "fleetctl status ${name}" says why`, exists: true };
    return { ip: machines.get(unit.machineID)?.primaryIP ?? "", exists: true };
  };
  let found: { ip?: string; error?: string };
  let rest = args;
  if (opts.machine) found = byMachine(opts.machine);
  else if (opts.unit) found = await byUnit(opts.unit);
  else {
    const [target, ...more] = args;
    if (target === undefined) throw new CliError("Provide one machine or unit.");
    rest = more;
    const m = byMachine(target);
    const u = await byUnit(target);
    if (m.ip !== undefined && u.ip !== undefined) {
      throw new CliError(`ambiguous argument, both machine and unit found for \`${target}\`.\nPlease use flag \`-m\` or \`-u\` to refine the search`);
    }
    // A unit that exists but has no one machine (global, unscheduled) says so: "could not find
    // matching unit or machine" sent the operator looking for a typo.
    found = m.ip !== undefined ? m : u.ip !== undefined || u.exists ? u : { error: "could not find matching unit or machine" };
  }
  if (found.error !== undefined) throw new CliError(found.error);
  if (!found.ip) throw new CliError("Requested machine could not be found (it published no IP address).");
  return { address: found.ip, rest };
}

export const ssh: Action<RemoteOpts> = async (ctx, args, opts) => {
  const { address, rest } = await resolveSshTarget(ctx, opts, args);
  const commandArgs = rest[0] === "--" ? rest.slice(1) : rest;
  const { client, close } = await connectTo(ctx, address, opts.sshPort ?? 22, opts.forwardAgent ?? false);
  try {
    const code =
      commandArgs.length > 0
        ? await execRemote(client, commandArgs.join(" "), ctx.io, { forwardAgent: opts.forwardAgent ?? false, signal: ctx.signal })
        : await shellRemote(client, ctx.io, { forwardAgent: opts.forwardAgent ?? false, signal: ctx.signal });
    if (code !== 0) throw new ExitCode(code);
    return 0;
  } finally {
    close();
  }
};

/** Registers ssh, status, journal and fd-forward. */
export const registerRemote: CommandRegistrar = (program: Command, bind) => {
  program
    .command("ssh")
    .argument("[machine-or-unit]")
    .argument("[command...]")
    .description("Open interactive shell on a machine in the cluster, or run a command there")
    .option("-A, --forward-agent", "Forward local ssh-agent to target machine")
    // fleet's spellings (its -A and -f were registered as long flags, so scripts for it say --A, --f).
    .addOption(new Option("--A").hideHelp().implies({ forwardAgent: true }))
    .option("--ssh-port <port>", "Use this SSH port to connect to the machine", parsePort, 22)
    .option("-m, --machine <id>", "Open SSH connection to a specific machine (ID prefix)")
    .option("-u, --unit <name>", "Open SSH connection to the machine running a specific unit")
    .allowUnknownOption()
    .action(bind(ssh));
  program
    .command("status")
    .argument("[units...]")
    .description("Output the status of one or more units in the cluster (systemctl status -l on their machine)")
    .option("--ssh-port <port>", "Use this SSH port to connect to the machine", parsePort, 22)
    .action(bind(status));
  program
    .command("journal")
    .argument("[unit]")
    .description("Print the journal of a unit in the cluster to stdout")
    .option("--lines <n>", "Number of recent log lines to return", parseNonNegative, 10)
    .option("--ssh-port <port>", "Use this SSH port to connect to the machine", parsePort, 22)
    .option("-f, --follow", "Continuously print new entries as they are appended to the journal")
    .addOption(new Option("--f").hideHelp().implies({ follow: true }))
    .option("--output <mode>", "Output mode, passed to journalctl --output", "short")
    .option("--sudo", "Execute journal command with sudo")
    .action(bind(journal));
  program
    .command("fd-forward")
    .argument("<socket>")
    .description("Proxy stdin and stdout to a unix domain socket (used by --tunnel)")
    .action(bind(fdForward));
};
