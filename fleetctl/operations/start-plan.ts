/** `fleetctl start --dry-run`: what start would create and start, without changing anything. */
import { isTemplate, mangleUnitName, parseUnitName } from "../../lib/unit";
import { apiFailure } from "../api-errors";
import { CliError } from "../cli-error";
import type { CommandContext } from "../context";
import { localFileOf } from "../unit-source";

export async function planStart(ctx: CommandContext, args: readonly string[], instances: number | undefined): Promise<number> {
  let all;
  try {
    all = await (await ctx.api()).listUnits(ctx.signal);
  } catch (err) {
    throw apiFailure("Error retrieving list of units from fleet API", err);
  }
  const byName = new Map(all.map((u) => [u.name, u]));
  const names: string[] = [];
  for (const arg of args) {
    const name = mangleUnitName(arg);
    if (!isTemplate(name)) {
      names.push(name);
      continue;
    }
    const { prefix, suffix } = parseUnitName(name);
    const wanted = new Set(all.map((u) => u.name).filter((n) => { const p = parseUnitName(n); return p.prefix === prefix && p.suffix === suffix && p.instance !== "" && !p.instance.startsWith("surge-"); }));
    for (let i = 1; i <= (instances ?? 0); i++) wanted.add(`${prefix}@${i}${suffix}`);
    if (wanted.size === 0) throw new CliError(`Cannot start template ${name}: it has no instances in the cluster; use --instances N to create ${prefix}@1${suffix} … ${prefix}@N${suffix}, or start instances by name`);
    names.push(...[...wanted].sort((a, b) => a.localeCompare(b, "en", { numeric: true })));
  }
  let changes = 0;
  for (const [i, name] of names.entries()) {
    const unit = byName.get(name);
    if (!unit) {
      const file = i < args.length && !isTemplate(mangleUnitName(args[i]!)) ? await localFileOf(ctx, args[i]!) : undefined;
      ctx.out(`Would create ${name}${file ? ` from ${file}` : " from its template"} and start it`);
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
