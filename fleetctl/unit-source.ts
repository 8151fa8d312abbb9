/**
 * Where a unit's body comes from when fleetctl has to create it (fleet's `getUnitFile`): a local file
 * named by the argument, else for an instance its template, first from the cluster, then from a local
 * file beside the argument.
 */
import { readFile, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { ApiUnit, UnitOption } from "../lib/api/types";
import { buildUnit, isInstance, mangleUnitName, templateOf, type Unit } from "../lib/unit";
import { CliError } from "./cli-error";
import type { CommandContext } from "./context";

/** fleet's `maybeAppendDefaultUnitType`: an argument without an extension names a `.service` file. */
export function withDefaultUnitType(arg: string): string {
  const base = arg.slice(arg.lastIndexOf("/") + 1);
  return base.includes(".") ? arg : `${arg}.service`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/** Reads and parses a local unit file as unit `name`. */
export async function readLocalUnit(ctx: CommandContext, file: string, name: string): Promise<Unit> {
  const path = resolve(ctx.io.cwd ?? process.cwd(), file);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new CliError(`failed getting Unit(${file}) from file: ${(err as Error).message}`, 1, { cause: err });
  }
  try {
    return buildUnit(name, text);
  } catch (err) {
    throw new CliError(`failed getting Unit(${file}) from file: ${(err as Error).message}`, 1, { cause: err });
  }
}

/** The local file an argument names, when it exists. */
export async function localFileOf(ctx: CommandContext, arg: string): Promise<string | undefined> {
  const file = withDefaultUnitType(arg);
  return (await exists(resolve(ctx.io.cwd ?? process.cwd(), file))) ? file : undefined;
}

/** The local template file beside an instance argument (`dir/web@1.service` → `dir/web@.service`). */
export async function localTemplateFileOf(ctx: CommandContext, arg: string): Promise<string | undefined> {
  const template = templateOf(mangleUnitName(arg));
  if (!template) return undefined;
  const file = join(dirname(withDefaultUnitType(arg)), template);
  return (await exists(resolve(ctx.io.cwd ?? process.cwd(), file))) ? file : undefined;
}

/**
 * The body for creating unit `arg` (fleet's order): local file; else for an instance the template in
 * the registry, else the template file beside the argument. Templates bodies are used as they are:
 * instances share the template's hash, and the template itself is not submitted.
 */
export async function unitSourceFor(
  ctx: CommandContext,
  arg: string,
  /** Templates already fetched in this run (1,000 instances of one template fetch it once). */
  templates: Map<string, Promise<ApiUnit | undefined>> = new Map(),
): Promise<{ name: string; options: UnitOption[]; warnings: readonly string[] }> {
  const name = mangleUnitName(arg);
  const file = await localFileOf(ctx, arg);
  if (file) {
    const unit = await readLocalUnit(ctx, file, name);
    return { name, options: [...unit.options], warnings: unit.warnings };
  }
  if (!isInstance(name)) throw new CliError(`unable to find Unit(${name}) in Registry or on filesystem`);
  const template = templateOf(name)!;
  const api = await ctx.api();
  if (!templates.has(template)) templates.set(template, api.getUnit(template, ctx.signal));
  const registered = await templates.get(template);
  if (registered) {
    const unit = buildUnit(name, registered.options);
    return { name, options: [...unit.options], warnings: unit.warnings };
  }
  const templateFile = await localTemplateFileOf(ctx, arg);
  if (templateFile) {
    const unit = await readLocalUnit(ctx, templateFile, name);
    return { name, options: [...unit.options], warnings: unit.warnings };
  }
  throw new CliError(`unable to find template Unit(${template}) in Registry or on filesystem`);
}
