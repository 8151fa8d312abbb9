/**
 * image-builder CLI: `build` (the host image) and `container` (an OCI archive from Debian packages).
 * Run with `npx tsx image-builder/main.ts <command>`. The only place that prints and exits.
 */
import path from "node:path";
import { Command, CommanderError } from "commander";
import { buildImage } from "./build";
import { buildContainerImage } from "./container";
import { readHostAptSources } from "./apt-sources";
import { debCacheDir } from "./cache-dir";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import { mib } from "./progress";

const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

function makeProgram(signal: AbortSignal): Command {
  const program = new Command("image-builder")
    .description("Build the corefleet host image and container images from Debian packages")
    .showHelpAfterError()
    .exitOverride();
  program
    .command("build")
    .description("Build the bootable host image (disk.raw, disk.qcow2, vmlinuz, initramfs.img, cmdline.txt, manifest.json)")
    .option("--profile <file>", "image profile", path.join(repoRoot, "image-builder/profiles/corefleet.json"))
    .option("--out <dir>", "output directory", path.join(repoRoot, "build/image"))
    .option("--force", "rebuild even when the image's inputs are unchanged", false)
    .option("--no-stage-cache", "reinstall the packages instead of using the cached package tree (.debs stay cached)")
    .action(async (opts: { profile: string; out: string; force: boolean; stageCache: boolean }) => {
      await buildImage({ profile: opts.profile, out: opts.out, repoRoot, force: opts.force, noStageCache: !opts.stageCache,
        log: (l) => process.stderr.write(`${l}\n`), signal });
    });
  program
    .command("container")
    .description("Build an OCI image archive (podman load -i) from Debian packages")
    .requiredOption("--name <name>", "image name (loaded as localhost/<name>:latest)")
    .requiredOption("--packages <list>", "comma-separated Debian packages")
    .requiredOption("--cmd <arg...>", "the image's command and arguments")
    .option("--env <KEY=value...>", "environment of the image")
    .option("--out <file>", "archive to write (default build/containers/<name>.oci.tar)")
    .action(async (opts: { name: string; packages: string; cmd: string[]; env?: string[]; out?: string }) => {
      const tmp = await mkdtemp(path.join(os.tmpdir(), "corefleet-container-cli-"));
      try {
        const sources = await readHostAptSources(tmp);
        const out = opts.out ?? path.join(repoRoot, "build/containers", `${opts.name}.oci.tar`);
        const started = Date.now();
        const r = await buildContainerImage({ name: opts.name, packages: opts.packages.split(",").map((p) => p.trim()).filter(Boolean), cmd: opts.cmd, ...(opts.env ? { env: opts.env } : {}) },
          { sources, suite: sources.suite, debCache: debCacheDir(), epoch: Number(process.env["SOURCE_DATE_EPOCH"] ?? 1735689600), out, signal });
        process.stderr.write(`image-builder: ${r.ref} -> ${out} (${mib(r.bytes)}) in ${((Date.now() - started) / 1000).toFixed(1)} s; load it with: podman load -i ${out}\n`);
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    });
  return program;
}

async function main(): Promise<void> {
  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new Error("interrupted"));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await makeProgram(controller.signal).parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`image-builder: ${(err as Error).message}\n`);
    let cause = (err as Error).cause;
    while (cause instanceof Error) {
      process.stderr.write(`  caused by: ${cause.message}\n`);
      cause = cause.cause;
    }
    process.exitCode = 1;
  }
}

void main();
