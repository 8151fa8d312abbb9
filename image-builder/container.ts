/**
 * `image-builder container`: an OCI image archive from Debian packages (and, for an image directory,
 * files copied in), without a container daemon. mmdebstrap's extract variant unpacks the packages
 * (and their dependencies) into one tarball, the base layer; an image directory's files become a
 * second layer (oci-archive.ts), so a change to them leaves the base layer's digest as it was.
 */
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { run, ProcessError } from "../lib/process/run";
import type { AptSources } from "./apt-sources";
import { checkImageName } from "./image-file";
import { filesLayer, writeOciArchive } from "./oci-archive";
import type { ContainerSpec } from "./profile";
import { explainMmdebstrapFailure } from "./rootfs";

export { imageConfig } from "./oci-archive";

export interface ContainerBuildOptions {
  sources: AptSources;
  suite: string;
  debCache: string;
  epoch: number;
  /** The oci-archive to write. */
  out: string;
  signal?: AbortSignal;
}

/** Refuses, before any work, an archive path that is an existing directory (the archive is a file). */
export async function checkArchiveOut(name: string, out: string): Promise<void> {
  const st = await stat(out).catch(() => undefined);
  if (st?.isDirectory()) {
    throw new Error(`Cannot build container image "${name}": --out "${out}" is a directory, but it names the archive file to write; give a file, e.g. --out ${path.join(out, `${name}.oci.tar`)}`);
  }
}

/** Builds the archive; returns its image reference, manifest digest and size. */
export async function buildContainerImage(spec: ContainerSpec, o: ContainerBuildOptions): Promise<{ ref: string; digest: string; bytes: number }> {
  checkImageName(spec.name, "the image's name");
  await checkArchiveOut(spec.name, o.out);
  const sig = o.signal ? { signal: o.signal } : {};
  const dir = await mkdtemp(path.join(os.tmpdir(), `corefleet-container-${spec.name}-`));
  try {
    const layerTar = path.join(dir, "layer.tar");
    await mkdir(o.debCache, { recursive: true });
    try {
      await run("mmdebstrap", ["--mode=root", "--variant=extract", `--include=${spec.packages.join(",")}`,
        `--components=${o.sources.components.join(",") || "main"}`,
        "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/", `--setup-hook=sync-in ${o.debCache} /var/cache/apt/archives/`,
        `--customize-hook=sync-out /var/cache/apt/archives ${o.debCache}`,
        // The image holds the packages' files only: no apt/dpkg state, no caches.
        "--customize-hook=rm -rf \"$1\"/var/cache/apt \"$1\"/var/lib/apt \"$1\"/var/lib/dpkg \"$1\"/var/log \"$1\"/usr/share/doc \"$1\"/usr/share/man \"$1\"/etc/apt",
        "--customize-hook=mkdir -p \"$1\"/tmp \"$1\"/etc && chmod 1777 \"$1\"/tmp && touch \"$1\"/etc/hosts \"$1\"/etc/resolv.conf",
        o.suite, layerTar, ...o.sources.files],
      { ...sig, captureStdout: false, env: { ...process.env, SOURCE_DATE_EPOCH: String(o.epoch) } });
    } catch (err) {
      if (!(err instanceof ProcessError)) throw err;
      throw new Error(`Cannot build container image "${spec.name}": ${explainMmdebstrapFailure(err.result.stderr) ?? "mmdebstrap failed (see the cause)"}`, { cause: err });
    }
    const layers = [layerTar];
    if (spec.files?.length) {
      const files = path.join(dir, "files.tar");
      await filesLayer(spec.files, o.epoch, files, o.signal);
      layers.push(files);
    }
    const ref = `localhost/${spec.name}:latest`;
    const r = await writeOciArchive({ layers, spec, epoch: o.epoch, ref, out: o.out, ...sig });
    return { ref, ...r };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Loads an oci-archive into the podman storage of an image tree (not the build host's). */
export async function preloadIntoRootfs(archive: string, root: string, signal?: AbortSignal): Promise<void> {
  const runroot = await mkdtemp(path.join(os.tmpdir(), "corefleet-podman-run-"));
  const graph = path.join(root, "var/lib/containers/storage");
  try {
    await mkdir(graph, { recursive: true });
    await run("podman", ["--root", graph, "--runroot", runroot, "--storage-driver", "overlay", "load", "-q", "-i", archive], signal ? { signal } : {});
    // libpod's database records the build host's paths; the guest's podman creates its own.
    await rm(path.join(graph, "libpod"), { recursive: true, force: true });
  } finally {
    await rm(runroot, { recursive: true, force: true });
  }
}
