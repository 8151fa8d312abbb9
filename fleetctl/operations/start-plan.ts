/**
 * `fleetctl start web@.service [--instances N]`: which instances a template argument stands for, and
 * `start --dry-run`: what start would submit, create and start, without changing anything.
 */
import { InvalidArgumentError } from "commander";
import { MAX_INSTANCES } from "../../lib/api/deploy-types";
import type { ApiUnit } from "../../lib/api/types";
import { isTemplate, mangleUnitName, parseUnitName, templateOf, unitHash } from "../../lib/unit";
import { listAllUnits } from "../unit-lookup";
import { CliError } from "../cli-error";
import type { CommandContext } from "../context";
import { localFileOf, localTemplateFileOf, readLocalUnit } from "../unit-source";

/** `--instances N`: a whole number from 1 to {@link MAX_INSTANCES} (it was any integer, -1 included, and did nothing). */
export function parseInstances(value: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_INSTANCES) throw new InvalidArgumentError(`"${value}" is not an instance count; use a whole number from 1 to ${MAX_INSTANCES}`);
  return n;
}

/**
 * The instances `start TEMPLATE` stands for: those of the template in the cluster (surge instances of a
 * rollout excepted), and with `--instances N` also web@1 … web@N; sorted by number.
 */
export function instancesToStart(all: readonly ApiUnit[], template: string, instances: number | undefined): string[] {
  const { prefix, suffix } = parseUnitName(template);
  const wanted = new Set(
    all
      .map((u) => u.name)
      .filter((n) => {
        const p = parseUnitName(n);
        return p.hasAt && p.prefix === prefix && p.suffix === suffix && p.instance !== "" && !p.instance.startsWith("surge-");
      }),
  );
  for (let i = 1; i <= (instances ?? 0); i++) wanted.add(`${prefix}@${i}${suffix}`);
  if (wanted.size === 0) throw new CliError(`Cannot start template ${template}: it has no instances in the cluster; use --instances N to create ${prefix}@1${suffix} … ${prefix}@N${suffix}, or start instances by name`);
  return [...wanted].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
}

/** `--instances` given without a template argument does nothing: refused. */
export function checkInstancesUse(args: readonly string[], instances: number | undefined): void {
  if (instances !== undefined && !args.some((a) => isTemplate(mangleUnitName(a)))) {
    throw new CliError(`--instances applies to a template argument (start --instances 3 web@.service); none of ${args.join(" ")} is one`);
  }
}

/** Whether `--replace` would replace `unit` with the body of the local `file`. */
async function replacedBy(ctx: CommandContext, unit: ApiUnit, file: string): Promise<boolean> {
  return (await readLocalUnit(ctx, file, unit.name)).hash !== unitHash(unit.options);
}

export async function planStart(ctx: CommandContext, args: readonly string[], instances: number | undefined, replace = false): Promise<number> {
  const all = await listAllUnits(ctx);
  checkInstancesUse(args, instances);
  const byName = new Map(all.map((u) => [u.name, u]));
  /** unit name → the local file it would come from (unit and template arguments, templates beside instance arguments). */
  const files = new Map<string, string>();
  const names: string[] = [];
  let changes = 0;
  for (const arg of args) {
    const name = mangleUnitName(arg);
    const file = await localFileOf(ctx, arg);
    if (file) files.set(name, file);
    if (!isTemplate(name)) {
      const template = templateOf(name);
      const beside = file || template === undefined ? undefined : await localTemplateFileOf(ctx, arg);
      if (template !== undefined && beside !== undefined) files.set(template, beside);
      names.push(name);
      continue;
    }
    if (file && !byName.has(name)) {
      ctx.out(`Would submit ${name} from ${file}`);
      changes++;
    } else if (file && replace && (await replacedBy(ctx, byName.get(name)!, file))) {
      ctx.out(`Would replace ${name} with ${file} (its body differs)`);
      changes++;
    }
    names.push(...instancesToStart(all, name, instances));
  }
  for (const name of names) {
    const unit = byName.get(name);
    // With --replace a unit whose local body (its file, or an instance's template file) differs is
    // stopped and started again with it; the plan said "already launched" or "Would start".
    const replacement = unit && replace ? (files.get(name) ?? files.get(templateOf(name) ?? "")) : undefined;
    if (unit && replacement !== undefined && (await replacedBy(ctx, unit, replacement))) {
      ctx.out(`Would replace ${name} with ${replacement} (its body differs: it is stopped and started again with the new one)`);
      changes++;
    } else if (!unit) {
      const file = files.get(name);
      const template = templateOf(name);
      // A template file is named only when the cluster has no template (which start would use first).
      const templateFile = template !== undefined && !byName.has(template) ? files.get(template) : undefined;
      if (!file && (template === undefined || (templateFile === undefined && !byName.has(template)))) {
        throw new CliError(`Cannot create ${name}: no unit file ${name} here${template !== undefined ? ` and no template ${template} in the cluster or here` : " and none in the cluster"}; start would fail`);
      }
      ctx.out(`Would create ${name}${file ? ` from ${file}` : ` from its template${templateFile !== undefined ? ` ${templateFile}` : ""}`} and start it`);
      changes++;
    } else if (unit.desiredState !== "launched") {
      ctx.out(`Would start ${name} (desired state ${unit.desiredState ?? "inactive"} → launched)`);
      changes++;
    } else {
      ctx.out(`${name} is already launched`);
    }
  }
  ctx.out(`Dry run: ${changes} unit(s) would change, nothing changed`);
  return 0;
}

