/**
 * `image-builder container`: an OCI image archive from Debian packages, without a container daemon.
 * mmdebstrap's extract variant unpacks the packages (and their dependencies) into one tarball, which
 * becomes the single layer; the OCI layout (blobs, manifest, config, index) is written here and
 * tarred as an oci-archive that `podman load` accepts.
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { createReadStream } from "node:fs";
import os from "node:os";
import path from "node:path";
import { run } from "../lib/process/run";
import type { AptSources } from "./apt-sources";
import type { ContainerSpec } from "./profile";
import { explainMmdebstrapFailure } from "./rootfs";
import { ProcessError } from "../lib/process/run";

export interface ContainerBuildOptions {
  sources: AptSources;
  suite: string;
  debCache: string;
  epoch: number;
  /** The oci-archive to write. */
  out: string;
  signal?: AbortSignal;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** The OCI image config for a spec and its layer's diff ID (exported for tests). */
export function imageConfig(spec: ContainerSpec, diffId: string, epoch: number): object {
  return {
    created: new Date(epoch * 1000).toISOString(),
    architecture: "amd64",
    os: "linux",
    config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ...(spec.env ?? [])], Cmd: spec.cmd, WorkingDir: "/" },
    rootfs: { type: "layers", diff_ids: [`sha256:${diffId}`] },
    history: [{ created: new Date(epoch * 1000).toISOString(), created_by: `image-builder container --packages ${spec.packages.join(",")}` }],
  };
}

/** Builds the archive; returns its image reference and size. */
export async function buildContainerImage(spec: ContainerSpec, o: ContainerBuildOptions): Promise<{ ref: string; bytes: number }> {
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
    const diffId = await sha256File(layerTar);
    await run("gzip", ["-n", "-6", layerTar], sig);
    const layerGz = `${layerTar}.gz`;
    const layerDigest = await sha256File(layerGz);
    const layout = path.join(dir, "layout");
    const blobs = path.join(layout, "blobs/sha256");
    await mkdir(blobs, { recursive: true });
    await run("mv", [layerGz, path.join(blobs, layerDigest)], sig);
    const blob = async (obj: object): Promise<{ digest: string; size: number }> => {
      const text = JSON.stringify(obj);
      const digest = createHash("sha256").update(text).digest("hex");
      await writeFile(path.join(blobs, digest), text);
      return { digest: `sha256:${digest}`, size: Buffer.byteLength(text) };
    };
    const config = await blob(imageConfig(spec, diffId, o.epoch));
    const manifest = await blob({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: `sha256:${layerDigest}`, size: (await stat(path.join(blobs, layerDigest))).size }],
    });
    const ref = `localhost/${spec.name}:latest`;
    await writeFile(path.join(layout, "index.json"), JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest, annotations: { "org.opencontainers.image.ref.name": ref } }],
    }));
    await writeFile(path.join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await mkdir(path.dirname(path.resolve(o.out)), { recursive: true });
    const tmpOut = `${o.out}.tmp`;
    await run("tar", ["--sort=name", `--mtime=@${o.epoch}`, "--owner=0", "--group=0", "--numeric-owner", "-cf", tmpOut, "-C", layout, "oci-layout", "index.json", "blobs"], sig);
    await run("mv", [tmpOut, o.out], sig);
    return { ref, bytes: (await stat(o.out)).size };
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
