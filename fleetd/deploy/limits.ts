/**
 * `--max-unavailable` / `--max-surge`: a count (`1`) or a percentage of the instances (`25%`).
 * Percentages round down for max-unavailable and up for max-surge (as Kubernetes does), so 25 % of
 * 10 instances is 2 unavailable at most, and 25 % surge of 10 is 3 extra.
 */
import { DeployInputError } from "./errors";

export function resolveLimit(flag: "max-unavailable" | "max-surge", spec: string, instances: number): number {
  const text = spec.trim();
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (pct) {
    const p = Number(pct[1]);
    if (p > 100) throw new DeployInputError(`invalid ${flag} "${spec}": a percentage must be from 0% to 100%`);
    const exact = (instances * p) / 100;
    return flag === "max-unavailable" ? Math.floor(exact + 1e-9) : Math.ceil(exact - 1e-9);
  }
  if (!/^\d+$/.test(text)) throw new DeployInputError(`invalid ${flag} "${spec}": use a whole number of instances (1) or a percentage of them (25%)`);
  const n = Number(text);
  if (n > Math.max(instances, 1)) throw new DeployInputError(`invalid ${flag} "${spec}": the template has ${instances} instance(s); use at most ${Math.max(instances, 1)} or a percentage`);
  return n;
}
