/**
 * fleet's `lazyCreateUnits` for submit/load/start/restart: create every named unit that does not exist
 * yet (from a local file or a template), or with `--replace` re-create one whose body changed, then
 * wait until the new units report `inactive` (so a replaced unit's old version is gone first).
 */
import type { ApiUnit, UnitOption, UnitTargetState } from "../lib/api/types";
import { buildUnit, isInstance, mangleUnitName, unitHash, validateUnit } from "../lib/unit";
import { CliError } from "./cli-error";
import type { CommandContext } from "./context";
import { localFileOf, localTemplateFileOf, readLocalUnit, unitSourceFor } from "./unit-source";
import { lookupUnits } from "./unit-lookup";
import { waitForUnitStates } from "./wait-states";

/** Desired states from which `--replace` may replace a unit, per command (fleet's table). */
const REPLACE_ALLOWED: Record<string, readonly UnitTargetState[]> = {
  submit: ["inactive"],
  load: ["inactive", "loaded"],
  start: ["inactive", "loaded", "launched"],
};

export interface LazyCreateOptions {
  command: "submit" | "load" | "start" | "restart";
  replace: boolean;
  /** Block attempts for the wait on `inactive` (-1: no wait). */
  attempts: number;
}

/** Warns when the registry's copy differs from the local file (or local template) of the argument. */
async function warnOnDifferentLocalUnit(ctx: CommandContext, arg: string, existing: ApiUnit): Promise<void> {
  const registryHash = unitHash(existing.options);
  const file = await localFileOf(ctx, arg);
  if (file) {
    // As fleet: the comparison is only a warning; a local file that cannot be read or parsed skips it.
    const local = await readLocalUnit(ctx, file, existing.name).catch(() => undefined);
    if (local && local.hash !== registryHash) {
      ctx.err(`WARNING: Unit ${existing.name} in registry differs from local unit file ${file}. Add --replace to override.`);
    }
    return;
  }
  if (!isInstance(existing.name)) return;
  const templateFile = await localTemplateFileOf(ctx, arg);
  if (!templateFile) return;
  // As above: only a warning, skipped when the local template cannot be read or parsed.
  const template = await readLocalUnit(ctx, templateFile, existing.name).catch(() => undefined);
  if (template && template.hash !== registryHash) {
    ctx.err(`WARNING: Unit ${existing.name} in registry differs from local template unit file ${templateFile}. Add --replace to override.`);
  }
}

/** Creates what is missing (or replaced); returns the names created. Throws CliError on failure. */
export async function lazyCreateUnits(ctx: CommandContext, args: readonly string[], opts: LazyCreateOptions): Promise<string[]> {
  const api = await ctx.api();
  const existingUnits = await lookupUnits(ctx, args.map(mangleUnitName));
  const templates = new Map<string, Promise<ApiUnit | undefined>>();
  const planned: { name: string; options: UnitOption[] }[] = [];
  for (const arg of args) {
    const name = mangleUnitName(arg);
    if (planned.some((p) => p.name === name)) continue;
    const existing = existingUnits.get(name);
    if (existing && !opts.replace) {
      await warnOnDifferentLocalUnit(ctx, arg, existing);
      continue;
    }
    if (existing) {
      const allowed = REPLACE_ALLOWED[opts.command] ?? [];
      if (!allowed.includes(existing.desiredState ?? "inactive")) {
        ctx.err(`Warning: can not replace Unit(${name}) in state '${existing.desiredState ?? ""}', use the appropriate command`);
        continue;
      }
    }
    // Replacing an instance: from the template file beside it (what the "differs from local template"
    // warning compares with), not from the registry's template.
    const source = await unitSourceFor(ctx, arg, templates, { localTemplateFirst: existing !== undefined });
    if (existing && unitHash(source.options) === unitHash(existing.options)) {
      ctx.out(`Found same Unit(${name}) in Registry, nothing to do`);
      continue;
    }
    for (const w of source.warnings) ctx.err(w);
    // Validate every unit before the first write, with the rules the server applies: all or nothing.
    const problem = validateUnit(buildUnit(name, source.options));
    if (problem) throw new CliError(`error creating Unit(${name}): ${problem.reason}`);
    planned.push({ name, options: source.options });
  }
  await api.putUnits(planned.map((p) => ({ name: p.name, options: p.options, desiredState: "inactive" as const })), ctx.signal);
  const created = planned.map((p) => p.name);
  if (created.length > 0 && opts.attempts >= 0) {
    const failure = await waitForUnitStates(ctx, created, "inactive", opts.attempts);
    if (failure) {
      ctx.err(`Error waiting on unit creation: ${failure}`);
      throw new CliError("One or more errors creating units");
    }
  }
  return created;
}
