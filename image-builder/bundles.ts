/**
 * The Node programs the image ships: fleetd and fleetctl from `npm run build` (scripts/bundle.mjs,
 * which we call but do not own) and our provisioner, bundled here with esbuild for Node 18.
 */
import { access, writeFile } from "node:fs/promises";
import path from "node:path";
import { build } from "esbuild";
import { run } from "../lib/process/run";

export interface Bundles {
  /** name in /usr/lib/corefleet → file. */
  files: Record<string, string>;
  /** Warnings to show (e.g. a placeholder bundle was used). */
  warnings: string[];
}

/** A stand-in used while a bundle cannot be built: prints its version, then stays up (so systemd sees a running service). */
function placeholder(name: string): string {
  return `#!/usr/bin/env node
// corefleet placeholder: the real ${name} bundle was not available when this image was built.
console.log("${name} placeholder (corefleet image built without dist/${name}.cjs)");
if (process.argv.includes("--version") || process.argv[2] === "version") process.exit(0);
${name === "fleetd" ? "setInterval(() => undefined, 1 << 30);" : "process.exit(1);"}
`;
}

/** Runs the project's bundler, then collects dist/fleetd.cjs and dist/fleetctl.cjs and builds provision.cjs and launch.cjs (image-builder/launcher.ts). */
export async function prepareBundles(repoRoot: string, workDir: string, signal?: AbortSignal): Promise<Bundles> {
  const warnings: string[] = [];
  const sig = signal ? { signal } : {};
  try {
    await run(process.execPath, [path.join(repoRoot, "scripts/bundle.mjs")], { cwd: repoRoot, timeoutMs: 300_000, ...sig });
  } catch (err) {
    warnings.push(`npm run build failed, using whatever dist/ holds: ${(err as Error).message.split("\n").slice(0, 3).join(" / ")}`);
  }
  const files: Record<string, string> = {};
  for (const name of ["fleetd", "fleetctl"]) {
    const built = path.join(repoRoot, "dist", `${name}.cjs`);
    if (await access(built).then(() => true, () => false)) {
      files[`${name}.cjs`] = built;
    } else {
      const p = path.join(workDir, `${name}.placeholder.cjs`);
      await writeFile(p, placeholder(name), { mode: 0o755 });
      files[`${name}.cjs`] = p;
      warnings.push(`dist/${name}.cjs does not exist: the image gets a placeholder ${name} that only prints its name`);
    }
  }
  for (const [name, entry] of [["provision.cjs", "image-builder/provision/main.ts"], ["launch.cjs", "image-builder/launcher.ts"]] as const) {
    files[name] = await buildNodeBundle(path.join(repoRoot, entry), path.join(workDir, name));
  }
  return { files, warnings };
}

/** Bundles one of our own guest programs into a single CommonJS file for the image's Node 18. */
export async function buildNodeBundle(entry: string, out: string): Promise<string> {
  // Minified: less to read and hash at start-up in an emulated (TCG) guest.
  await build({ entryPoints: [entry], outfile: out, bundle: true, platform: "node", target: "node18", format: "cjs", logLevel: "error", legalComments: "none", minify: true });
  return out;
}
