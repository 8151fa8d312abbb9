/**
 * The image-builder CLI run with a PATH holding only node, in a temp folder of its own: none of the
 * tools a build needs (mmdebstrap, podman, skopeo) can be found, so a check that comes too late fails
 * on a missing tool instead of building anything.
 */
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { run, type RunResult } from "../../lib/process/run";

const repoRoot = path.resolve(__dirname, "../..");

export interface NodeOnlyImageBuilder {
  /** The temp folder (HOME of the CLI; tests put their inputs here). */
  dir: string;
  cli(args: readonly string[]): Promise<RunResult>;
  cleanup(): Promise<void>;
}

export async function nodeOnlyImageBuilder(prefix: string): Promise<NodeOnlyImageBuilder> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  const bin = path.join(dir, "bin");
  await mkdir(bin);
  await symlink(process.execPath, path.join(bin, "node"));
  return {
    dir,
    cli: (args) =>
      run(process.execPath, [path.join(repoRoot, "node_modules/tsx/dist/cli.mjs"), path.join(repoRoot, "image-builder/main.ts"), ...args], {
        allowFailure: true,
        env: { PATH: bin, HOME: dir },
        timeoutMs: 60_000,
      }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
