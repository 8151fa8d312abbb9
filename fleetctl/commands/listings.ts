/** list-machines, list-units, list-unit-files: fleet's columns through Go's tabwriter, or JSON. */
import { Option, type Command } from "commander";
import type { ApiMachine, ApiUnit, ApiUnitState } from "../../lib/api/types";
import { formatCpus, formatMemory, parseRequirements, parseResources, unitHash } from "../../lib/unit";
import { apiFailure } from "../api-errors";
import { CliError } from "../cli-error";
import type { CommandContext } from "../context";
import { machineFullLegend, machineIdLegend } from "../legend";
import { revisionLookup } from "../operations/revisions";
import { formatTable } from "../tabwriter";
import { isUnscheduled, reasonSummary } from "../unscheduled-reason";
import { isGlobalUnit, listAllUnits } from "../unit-lookup";
import type { Action } from "./action";

interface ListOpts {
  full?: boolean;
  legend?: boolean;
  fields?: string;
  output?: string;
}

type Column<T> = (item: T, full: boolean) => string;

/** What the units scheduled on each machine need (milli-CPUs, bytes): for the `allocated` field. */
type Allocation = Map<string, { cpus: number; memory: number }>;

function machineFields(allocation: Allocation): Record<string, Column<ApiMachine>> {
  return {
    ...MACHINE_FIELDS,
    allocated: (m) => {
      const a = allocation.get(m.id) ?? { cpus: 0, memory: 0 };
      const cap = m.capacity;
      return `${formatCpus(a.cpus)}${cap ? ` of ${formatCpus(cap.cpus)}` : ""}, ${formatMemory(a.memory)}${cap ? ` of ${formatMemory(cap.memory)}` : ""}`;
    },
  };
}

const MACHINE_FIELDS: Record<string, Column<ApiMachine>> = {
  machine: (m, full) => machineIdLegend(m.id, full),
  // corefleet additions (not in the default columns): capacity and what scheduled units take of it.
  cpus: (m) => (m.capacity ? formatCpus(m.capacity.cpus) : "-"),
  memory: (m) => (m.capacity ? formatMemory(m.capacity.memory) : "-"),
  allocated: () => "-",
  ip: (m) => m.primaryIP || "-",
  metadata: (m) => {
    const keys = Object.keys(m.metadata ?? {}).sort();
    return keys.length === 0 ? "-" : keys.map((k) => `${k}=${m.metadata![k]!}`).join(",");
  },
};

/** Extension: `revision` of a unit body in its template's deployment history ("-" when none). */
type RevisionOf = (name: string, hash: string) => string;
const noRevisions: RevisionOf = () => "-";

function unitStateFields(machines: Map<string, ApiMachine>, revisionOf: RevisionOf = noRevisions): Record<string, Column<ApiUnitState>> {
  return {
    unit: (s) => s.name,
    load: (s) => s.systemdLoadState,
    active: (s) => s.systemdActiveState,
    sub: (s) => s.systemdSubState,
    machine: (s, full) => (s.machineID ? machineFullLegend(s.machineID, machines.get(s.machineID), full) : "-"),
    hash: (s, full) => (full ? s.hash : s.hash.slice(0, 7)),
    // Extension: the revision the machine runs (its state's hash in the template's history).
    revision: (s) => revisionOf(s.name, s.hash),
  };
}

function unitFileFields(machines: Map<string, ApiMachine>, revisionOf: RevisionOf = noRevisions): Record<string, Column<ApiUnit>> {
  const global = (u: ApiUnit): boolean => parseRequirements(u.name, u.options).requirements.global;
  const target: Column<ApiUnit> = (u, full) =>
    global(u) ? "global" : u.machineID ? machineFullLegend(u.machineID, machines.get(u.machineID), full) : "-";
  return {
    unit: (u) => u.name,
    hash: (u, full) => (full ? unitHash(u.options) : unitHash(u.options).slice(0, 7)),
    dstate: (u) => u.desiredState || "-",
    // Extension: a batch unit whose body ran to success shows "completed" (fleet had no such state).
    state: (u) => (global(u) || !u.currentState ? "-" : u.completed ? "completed" : u.currentState),
    target,
    tmachine: target,
    global: (u) => String(global(u)),
    desc: (u) => u.options.find((o) => o.section === "Unit" && o.name === "Description")?.value || "-",
    // Extension: why the engine could not place the unit ("-" when it is placed or not wanted).
    reason: (u) => (isUnscheduled(u, global(u)) ? reasonSummary(u) : "-"),
    // Extension: the revision of the unit's body (desired) in its template's deployment history.
    revision: (u) => revisionOf(u.name, unitHash(u.options)),
  };
}

/** Checks `--fields` like fleet ("Must define output format", "Invalid key in output format: \"x\""). */
function parseFields(spec: string, valid: Record<string, unknown>): string[] {
  if (spec.trim() === "") throw new CliError("Must define output format");
  const fields = spec.split(",");
  for (const f of fields) if (!(f in valid)) throw new CliError(`Invalid key in output format: ${JSON.stringify(f)}`);
  return fields;
}

function print<T>(ctx: CommandContext, items: readonly T[], columns: Record<string, Column<T>>, fields: readonly string[], opts: ListOpts): void {
  const full = opts.full ?? false;
  const output = opts.output ?? "table";
  if (output === "json") {
    // Full (untruncated) values keyed by field name: stable for scripts.
    const rows = items.map((item) => Object.fromEntries(fields.map((f) => [f, columns[f]!(item, true)])));
    ctx.io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  if (output !== "table") throw new CliError(`Invalid --output "${output}": use table or json`);
  const rows: string[][] = [];
  if (opts.legend !== false) rows.push(fields.map((f) => f.toUpperCase()));
  for (const item of items) rows.push(fields.map((f) => columns[f]!(item, full)));
  ctx.io.stdout.write(formatTable(rows));
}

async function machineMap(ctx: CommandContext): Promise<Map<string, ApiMachine>> {
  try {
    return await ctx.machines();
  } catch (err) {
    throw apiFailure("Error retrieving list of active machines from fleet API", err);
  }
}

export const listMachines: Action<ListOpts> = async (ctx, _args, opts) => {
  const fields = parseFields(opts.fields ?? "machine,ip,metadata", MACHINE_FIELDS);
  const machines = [...(await machineMap(ctx)).values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const allocation: Allocation = fields.includes("allocated") ? await allocationByMachine(ctx) : (new Map() as Allocation);
  print(ctx, machines, machineFields(allocation), fields, opts);
  return 0;
};

/** Needs of non-global units summed on their target machine, and of global units where they report state. */
async function allocationByMachine(ctx: CommandContext): Promise<Allocation> {
  let units: ApiUnit[];
  let states: ApiUnitState[];
  try {
    const api = await ctx.api();
    [units, states] = await Promise.all([api.listUnits(ctx.signal), api.listUnitStates({}, ctx.signal)]);
  } catch (err) {
    throw apiFailure("Error retrieving units for the allocated field from fleet API", err);
  }
  const out: Allocation = new Map();
  const add = (machineId: string, needs: { cpus: number; memory: number }): void => {
    const a = out.get(machineId) ?? { cpus: 0, memory: 0 };
    out.set(machineId, { cpus: a.cpus + needs.cpus, memory: a.memory + needs.memory });
  };
  const globals = new Map<string, { cpus: number; memory: number }>();
  for (const u of units) {
    const needs = parseResources(u.options);
    if (parseRequirements(u.name, u.options).requirements.global) globals.set(u.name, needs);
    else if (u.machineID) add(u.machineID, needs);
  }
  for (const st of states) {
    const needs = globals.get(st.name);
    if (needs !== undefined && st.machineID) add(st.machineID, needs);
  }
  return out;
}

export const listUnits: Action<ListOpts> = async (ctx, _args, opts) => {
  const probe = unitStateFields(new Map());
  const fields = parseFields(opts.fields ?? "unit,machine,active,sub", probe);
  // Both requests at once: the machine list is small and needed for the MACHINE column.
  const machinesWanted = fields.includes("machine") ? machineMap(ctx) : Promise.resolve(new Map<string, ApiMachine>());
  // Not swallowed: it is awaited below; this only keeps a failure from being "unhandled" meanwhile.
  machinesWanted.catch(() => undefined);
  let states: ApiUnitState[];
  try {
    states = await (await ctx.api()).listUnitStates({}, ctx.signal);
  } catch (err) {
    throw apiFailure("Error retrieving list of units from fleet API", err);
  }
  const machines = await machinesWanted;
  states.sort((a, b) => (a.name !== b.name ? (a.name < b.name ? -1 : 1) : a.machineID < b.machineID ? -1 : a.machineID > b.machineID ? 1 : 0));
  // The states do not say which units are global (their revisions are in their own history).
  const globals = async (): Promise<Set<string>> => new Set((await listAllUnits(ctx)).filter(isGlobalUnit).map((u) => u.name));
  const revisionOf = fields.includes("revision") ? await revisionLookup(ctx, states.map((st) => st.name), await globals()) : noRevisions;
  print(ctx, states, unitStateFields(machines, revisionOf), fields, opts);
  return 0;
};

export const listUnitFiles: Action<ListOpts> = async (ctx, _args, opts) => {
  const probe = unitFileFields(new Map());
  const fields = parseFields(opts.fields ?? "unit,hash,dstate,state,target", probe);
  if (fields.includes("tmachine")) ctx.err('WARNING: The "tmachine" field is deprecated. Use "target" instead');
  const units = await listAllUnits(ctx);
  const machines = fields.includes("target") || fields.includes("tmachine") ? await machineMap(ctx) : new Map<string, ApiMachine>();
  units.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const revisionOf = fields.includes("revision") ? await revisionLookup(ctx, units.map((u) => u.name), new Set(units.filter(isGlobalUnit).map((u) => u.name))) : noRevisions;
  print(ctx, units, unitFileFields(machines, revisionOf), fields, opts);
  return 0;
};

/** Registers the three listings. */
export function registerListings(program: Command, bind: <O>(a: Action<O>) => (...args: unknown[]) => Promise<void>): void {
  const common = (c: Command, fields: string): Command =>
    c
      .option("-l, --full", "Do not ellipsize fields on output")
      // fleet's spelling: its -l was registered as a long flag, so scripts for it say --l.
      .addOption(new Option("--l").hideHelp().implies({ full: true }))
      .option("--no-legend", "Do not print a legend (column headers)")
      .option("--fields <fields>", `Columns to print, comma-separated; one or more of: ${fields}`)
      .option("-o, --output <format>", "Output format: table (fleet's columns) or json (untruncated values, for scripts)", "table");
  common(
    program.command("list-machines").description("Enumerate the current hosts in the cluster"),
    "machine, ip, metadata, cpus, memory (capacity), allocated (what units placed there ask of it)",
  ).action(bind(listMachines));
  common(program.command("list-units").description("List the current state of units in the cluster"), "unit, load, active, sub, machine, hash, revision").action(
    bind(listUnits),
  );
  common(
    program.command("list-unit-files").description("List the units that exist in the cluster."),
    "unit, hash, dstate, state, target, global, desc, reason (why a unit is not scheduled), revision (of its template's deploy history; tmachine is deprecated)",
  ).action(bind(listUnitFiles));
}
