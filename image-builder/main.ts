/**
 * image-builder CLI: `build` (the host image), `container` (an OCI archive from an image directory or
 * Debian packages) and `push` (to a registry, through an SSH forward if need be).
 * Run with `npx tsx image-builder/main.ts <command>`. The only place that prints and exits.
 */
import path from "node:path";
import { Command, CommanderError } from "commander";
import { buildImage } from "./build";
import { buildContainerImage, checkArchiveOut } from "./container";
import { IMAGE_FILE, checkImageName, loadImageDir } from "./image-file";
import type { ContainerSpec } from "./profile";
import { pushImage, parseDestination, type PushOptions } from "./push";
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
    .description("Build an OCI image archive (podman load -i, or image-builder push) from an image directory (DIR/image.json) or from Debian packages")
    .argument("[dir]", "image directory holding image.json (packages, files, cmd, ports, env); see image-builder/README.md")
    .option("--name <name>", "image name (loaded as localhost/<name>:latest); default: image.json's name or the directory's")
    .option("--packages <list>", "comma-separated Debian packages (without DIR)")
    .option("--cmd <arg...>", "the image's command and arguments (without DIR)")
    .option("--env <KEY=value...>", "environment of the image (without DIR)")
    .option("--out <file>", "archive to write (default build/containers/<name>.oci.tar)")
    .action(async (dir: string | undefined, opts: { name?: string; packages?: string; cmd?: string[]; env?: string[]; out?: string }) => {
      let spec: ContainerSpec;
      // --name wins over image.json's name and the directory's: checked first, before anything is read or built.
      if (opts.name !== undefined) checkImageName(opts.name, "--name");
      if (dir !== undefined) {
        if (opts.packages !== undefined || opts.cmd !== undefined || opts.env !== undefined) {
          throw new Error(`Cannot combine the image directory "${dir}" with --packages/--cmd/--env: put them in ${path.join(dir, IMAGE_FILE)}`);
        }
        spec = await loadImageDir(dir, opts.name);
      } else {
        if (opts.name === undefined || opts.packages === undefined || opts.cmd === undefined) {
          throw new Error("Cannot build a container image: give an image directory (image-builder container units/web) or --name, --packages and --cmd");
        }
        spec = { name: opts.name, packages: opts.packages.split(",").map((p) => p.trim()).filter(Boolean), cmd: opts.cmd, ...(opts.env ? { env: opts.env } : {}) };
      }
      const out = opts.out ?? path.join(repoRoot, "build/containers", `${spec.name}.oci.tar`);
      await checkArchiveOut(spec.name, out);
      const tmp = await mkdtemp(path.join(os.tmpdir(), "corefleet-container-cli-"));
      try {
        const sources = await readHostAptSources(tmp);
        const started = Date.now();
        const r = await buildContainerImage(spec, { sources, suite: sources.suite, debCache: debCacheDir(), epoch: Number(process.env["SOURCE_DATE_EPOCH"] ?? 1735689600), out, signal });
        process.stderr.write(`image-builder: ${r.ref} -> ${out} (${mib(r.bytes)}) in ${((Date.now() - started) / 1000).toFixed(1)} s; load it with: podman load -i ${out}, or push it with: image-builder push ${out} --to HOST:PORT/${spec.name}:TAG\n`);
        process.stdout.write(`${r.digest}\n`);
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    });
  program
    .command("push")
    .description("Push an image archive to a registry with skopeo, directly or through an SSH port forward (--tunnel); prints the digest reference units should run")
    .argument("<image>", "an oci-archive, or the name of one in build/containers (web = build/containers/web.oci.tar)")
    .requiredOption("--to <HOST:PORT[/NAME[:TAG]]>", "registry and reference, as the cluster names it, e.g. registry.cluster:5000/web:2 (default NAME: the image's, TAG: latest)")
    .option("--tunnel [USER@HOST:PORT]", "reach the registry through an SSH port forward from this host (default $FLEETCTL_TUNNEL); HOST:PORT of --to is resolved there")
    .option("--identity-file <file>", "SSH key for --tunnel (default $FLEETCTL_IDENTITY_FILE)")
    .option("--known-hosts-file <file>", "known_hosts for --tunnel (default $FLEETCTL_KNOWN_HOSTS_FILE, else OpenSSH's)")
    .option("--insecure", "plain HTTP to a registry that is neither on loopback nor behind --tunnel", false)
    .action(async (image: string, opts: { to: string; tunnel?: string | true; identityFile?: string; knownHostsFile?: string; insecure: boolean }) => {
      const archive = /[/.]/.test(image) ? image : path.join(repoRoot, "build/containers", `${image}.oci.tar`);
      const env = process.env;
      let tunnel: PushOptions["tunnel"];
      if (opts.tunnel !== undefined) {
        const via = opts.tunnel === true ? env["FLEETCTL_TUNNEL"] : opts.tunnel;
        if (!via) throw new Error("Cannot use --tunnel: give USER@HOST:PORT or set FLEETCTL_TUNNEL (eval \"$(npx tsx qemu/main.ts env)\" does)");
        const identityFile = opts.identityFile ?? env["FLEETCTL_IDENTITY_FILE"];
        const knownHostsFile = opts.knownHostsFile ?? env["FLEETCTL_KNOWN_HOSTS_FILE"];
        const user = env["FLEETCTL_SSH_USERNAME"];
        tunnel = { via, ...(identityFile ? { identityFile } : {}), ...(knownHostsFile ? { knownHostsFile } : {}), ...(user ? { user } : {}) };
      }
      const r = await pushImage({ archive, to: parseDestination(opts.to), ...(tunnel ? { tunnel } : {}), insecure: opts.insecure, signal,
        log: (l) => process.stderr.write(`${l}\n`) });
      process.stderr.write(`image-builder: pushed ${r.reference} (${r.digest}) in ${(r.durationMs / 1000).toFixed(1)} s\n`);
      process.stdout.write(`${r.pinned}\n`);
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
