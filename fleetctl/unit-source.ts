/**
 * Where a unit's body comes from when fleetctl has to create it (fleet's `getUnitFile`): a local file
 * named by the argument, else for an instance its template, first from the cluster, then from a local
 * file beside the argument.
 */
import { readFile, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { ApiUnit, UnitOption } from "../lib/api/types";
import { buildUnit, firstLineBeforeSection, isInstance, mangleUnitName, templateOf, UNIT_NAME_MAX, type Unit } from "../lib/unit";
import { CliError } from "./cli-error";
import type { CommandContext } from "./context";

/** fleet's `maybeAppendDefaultUnitType`: an argument without an extension names a `.service` file. */
export function withDefaultUnitType(arg: string): string {
  const base = arg.slice(arg.lastIndexOf("/") + 1);
  return base.includes(".") ? arg : `${arg}.service`;
}

/** Linux's NAME_MAX and PATH_MAX - 1: the longest file name and the longest path, in bytes. */
const FILE_NAME_MAX = 255;
const PATH_MAX = 4095;

/** `text` cut in the middle to at most 64 characters, so an error about a long name stays readable. */
function shortened(text: string): string {
  return text.length <= 64 ? text : `${text.slice(0, 31)}…${text.slice(-32)}`;
}

/** Refuses an argument whose unit name is longer than systemd (and fleetd) accept. */
function checkUnitNameLength(arg: string): void {
  const name = mangleUnitName(arg);
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > UNIT_NAME_MAX) throw new CliError(`Invalid unit name "${shortened(name)}": it is ${bytes} bytes long; unit names are limited to ${UNIT_NAME_MAX} bytes`);
}

/** Whether a local file exists; `file` is the path as the operator gave it (for the error). */
async function exists(path: string, file: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return false;
    if (code === "ENAMETOOLONG") {
      throw new CliError(
        `Cannot look for unit file "${shortened(file)}": its path is too long for the file system (at most ${FILE_NAME_MAX} bytes per file or directory name and ${PATH_MAX} bytes in all); use a shorter path`,
        1,
        { cause: err },
      );
    }
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
  let unit: Unit;
  try {
    unit = buildUnit(name, text);
  } catch (err) {
    throw new CliError(`failed getting Unit(${file}) from file: ${(err as Error).message}`, 1, { cause: err });
  }
  // fleet's API refuses a unit without options ("options field empty"), after earlier units of the
  // same command were written; refused here, before anything is, with the file named.
  if (unit.options.length === 0) {
    // Name=Value lines without a [Section] header above them are skipped (as fleet's parser skips
    // them), which left "an empty unit file" for a file full of options: say which line and why.
    const stray = firstLineBeforeSection(text);
    if (stray) {
      const shown = stray.text.length > 60 ? `${stray.text.slice(0, 59)}…` : stray.text;
      throw new CliError(
        `failed getting Unit(${file}) from file: line ${stray.line}: "${shown}" comes before any [Section] header; an option must follow a section header such as [Unit] or [Service], so this file has no options (text before the first section is ignored)`,
      );
    }
    throw new CliError(`failed getting Unit(${file}) from file: it has no [Section] and no Key=Value lines (an empty unit file)`);
  }
  return unit;
}

/** The local file an argument names, when it exists. */
export async function localFileOf(ctx: CommandContext, arg: string): Promise<string | undefined> {
  checkUnitNameLength(arg);
  const file = withDefaultUnitType(arg);
  return (await exists(resolve(ctx.io.cwd ?? process.cwd(), file), file)) ? file : undefined;
}

/** The local template file beside an instance argument (`dir/web@1.service` → `dir/web@.service`). */
export async function localTemplateFileOf(ctx: CommandContext, arg: string): Promise<string | undefined> {
  const template = templateOf(mangleUnitName(arg));
  if (!template) return undefined;
  const file = join(dirname(withDefaultUnitType(arg)), template);
  return (await exists(resolve(ctx.io.cwd ?? process.cwd(), file), file)) ? file : undefined;
}

/**
 * The body for creating unit `arg` (fleet's order): local file; else for an instance the template in
 * the registry, else the template file beside the argument. Templates bodies are used as they are:
 * instances share the template's hash, and the template itself is not submitted. With
 * `localTemplateFirst` (replacing an existing instance) the template file beside the argument comes
 * before the registry's: fleet warned that an instance differs from that file and to add --replace,
 * which then compared the registry's unchanged template and replaced nothing.
 */
export async function unitSourceFor(
  ctx: CommandContext,
  arg: string,
  /** Templates already fetched in this run (1,000 instances of one template fetch it once). */
  templates: Map<string, Promise<ApiUnit | undefined>> = new Map(),
  options: { localTemplateFirst?: boolean } = {},
): Promise<{ name: string; options: UnitOption[]; warnings: readonly string[] }> {
  const name = mangleUnitName(arg);
  const file = await localFileOf(ctx, arg);
  if (file) {
    const unit = await readLocalUnit(ctx, file, name);
    return { name, options: [...unit.options], warnings: unit.warnings };
  }
  if (!isInstance(name)) throw new CliError(`unable to find Unit(${name}) in Registry or on filesystem`);
  const localTemplate = options.localTemplateFirst ? await localTemplateFileOf(ctx, arg) : undefined;
  if (localTemplate) {
    const unit = await readLocalUnit(ctx, localTemplate, name);
    return { name, options: [...unit.options], warnings: unit.warnings };
  }
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
