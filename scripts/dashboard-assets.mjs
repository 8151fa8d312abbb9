// Builds the dashboard's browser files (fleetd/dashboard/web/) into strings: the page, one script and
// one stylesheet. scripts/bundle.mjs inlines them into dist/fleetd.cjs; fleetd run from source (tests,
// `tsx fleetd/main.ts`) builds them on first use with the same function. Local sources only: nothing
// is fetched, so the page works offline inside the cluster network.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";

const webDir = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../fleetd/dashboard/web");

async function bundleOne(entry, options) {
  const result = await build({
    entryPoints: [path.join(webDir, entry)],
    bundle: true,
    write: false,
    minify: true,
    legalComments: "none",
    logLevel: "warning",
    ...options,
  });
  return result.outputFiles[0].text;
}

/** @returns {Promise<{ html: string; js: string; css: string; etag: string }>} */
export async function buildDashboardAssets() {
  const [html, js, css] = await Promise.all([
    readFile(path.join(webDir, "index.html"), "utf8"),
    bundleOne("main.ts", { format: "iife", target: ["chrome100", "firefox100", "safari15"], platform: "browser" }),
    bundleOne("style.css", { loader: { ".css": "css" } }),
  ]);
  const etag = `"${createHash("sha1").update(html).update(js).update(css).digest("hex").slice(0, 16)}"`;
  return { html, js, css, etag };
}
