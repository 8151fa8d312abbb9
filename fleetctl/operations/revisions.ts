/**
 * Revision numbers of units for listings (`--fields …,revision`): the hash of an instance (or template)
 * looked up in its template's history, a global unit's in its own (`GET /deployments/<name>`, one
 * request per template or global unit listed). One without history, a plain unit, or a server without
 * the extension (fleet's own), shows "-".
 */
import type { DeploymentSummary } from "../../lib/api/deploy-types";
import { ApiError } from "../../lib/api/client";
import { isTemplate, parseUnitName } from "../../lib/unit";
import type { CommandContext } from "../context";

/** Whose history a unit's revision is in: its template's (itself for a template), a global unit's own, else none. */
function historyOf(name: string, globals: ReadonlySet<string>): string | undefined {
  const p = parseUnitName(name);
  if (!p.hasAt) return globals.has(name) ? name : undefined;
  return isTemplate(name) ? name : `${p.prefix}@${p.suffix}`;
}

/** Returns `revisionOf(unitName, hash)` → "3" or "-"; `globals`: the global units among `names`. */
export async function revisionLookup(ctx: CommandContext, names: readonly string[], globals: ReadonlySet<string>): Promise<(name: string, hash: string) => string> {
  const api = await ctx.api();
  const templateOfUnit = (name: string): string | undefined => historyOf(name, globals);
  const templates = [...new Set(names.map(templateOfUnit).filter((t): t is string => t !== undefined))];
  const records = new Map<string, DeploymentSummary>();
  await Promise.all(
    templates.map(async (t) => {
      try {
        records.set(t, await api.getDeploymentSummary(t, ctx.signal));
      } catch (err) {
        // 404: a template not in the cluster (orphan instances) or a server without deployments.
        if (!(err instanceof ApiError && (err.status === 404 || err.status === 400))) throw err;
      }
    }),
  );
  return (name, hash) => {
    const t = templateOfUnit(name);
    const revs = t ? records.get(t)?.revisions : undefined;
    const match = revs ? [...revs].reverse().find((r) => r.hash === hash) : undefined;
    return match ? String(match.revision) : "-";
  };
}
