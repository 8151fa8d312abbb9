/**
 * The dashboard's browser files. Run from source, fleetd builds them from `web/` on first use (esbuild,
 * a dev dependency, local files only); `scripts/bundle.mjs` replaces this module in dist/fleetd.cjs
 * with one that returns the files built at bundle time, so the image needs nothing beside fleetd.
 */
import type { DashboardAssetFiles } from "../../scripts/dashboard-assets.mjs";

export type { DashboardAssetFiles };

let built: Promise<DashboardAssetFiles> | undefined;

/** The page, its script and stylesheet (built once per process). */
export function loadDashboardAssets(): Promise<DashboardAssetFiles> {
  built ??= import("../../scripts/dashboard-assets.mjs").then((m) => m.buildDashboardAssets());
  built.catch(() => {
    built = undefined; // a failed build is retried by the next request
  });
  return built;
}
