/**
 * Writes an OCI image as an oci-archive (`podman load -i`, `skopeo copy oci-archive:...`) from
 * uncompressed layer tarballs, with no container daemon and no root. Deterministic: gzip without
 * names or times, JSON written in a fixed key order, the archive tarred with sorted names, a fixed
 * time and owner, so the same layers and config give the same manifest digest.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { run } from "../lib/process/run";
import type { ContainerSpec } from "./profile";

export const MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json";

export async function sha256File(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** The OCI image config for a spec and its layers' diff IDs (hex, base layer first). */
export function imageConfig(spec: ContainerSpec, diffIds: readonly string[], epoch: number): object {
  const created = new Date(epoch * 1000).toISOString();
  const config: Record<string, unknown> = {
    Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ...(spec.env ?? [])],
    Cmd: spec.cmd,
    WorkingDir: spec.workdir ?? "/",
  };
  if (spec.ports?.length) config["ExposedPorts"] = Object.fromEntries(spec.ports.map((p) => [`${p}/tcp`, {}]));
  const history = [{ created, created_by: `image-builder container --packages ${spec.packages.join(",")}` }];
  if (spec.files?.length) history.push({ created, created_by: `image-builder container: files ${spec.files.map((f) => f.to).join(" ")}` });
  return {
    created,
    architecture: "amd64",
    os: "linux",
    config,
    rootfs: { type: "layers", diff_ids: diffIds.map((d) => `sha256:${d}`) },
    history: history.slice(0, diffIds.length),
  };
}

export interface OciArchiveInput {
  /** Uncompressed layer tarballs, base first; they are consumed (moved) by the call. */
  layers: string[];
  spec: ContainerSpec;
  epoch: number;
  /** Reference recorded in index.json (`org.opencontainers.image.ref.name`). */
  ref: string;
  out: string;
  signal?: AbortSignal;
}

/** Writes the archive atomically (`out` appears complete or not at all); returns the manifest digest and size. */
export async function writeOciArchive(o: OciArchiveInput): Promise<{ digest: string; bytes: number }> {
  const sig = o.signal ? { signal: o.signal } : {};
  const layout = await mkdtemp(path.join(os.tmpdir(), "corefleet-oci-"));
  try {
    const blobs = path.join(layout, "blobs/sha256");
    await mkdir(blobs, { recursive: true });
    const diffIds: string[] = [];
    const layers: { mediaType: string; digest: string; size: number }[] = [];
    for (const tar of o.layers) {
      diffIds.push(await sha256File(tar));
      await run("gzip", ["-n", "-6", "-f", tar], sig);
      const digest = await sha256File(`${tar}.gz`);
      await run("mv", [`${tar}.gz`, path.join(blobs, digest)], sig);
      layers.push({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: `sha256:${digest}`, size: (await stat(path.join(blobs, digest))).size });
    }
    const blob = async (obj: object): Promise<{ digest: string; size: number }> => {
      const text = JSON.stringify(obj);
      const digest = createHash("sha256").update(text).digest("hex");
      await writeFile(path.join(blobs, digest), text);
      return { digest: `sha256:${digest}`, size: Buffer.byteLength(text) };
    };
    const config = await blob(imageConfig(o.spec, diffIds, o.epoch));
    const manifest = await blob({
      schemaVersion: 2,
      mediaType: MANIFEST_MEDIA_TYPE,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers,
    });
    await writeFile(path.join(layout, "index.json"), JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: MANIFEST_MEDIA_TYPE, ...manifest, annotations: { "org.opencontainers.image.ref.name": o.ref } }],
    }));
    await writeFile(path.join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await mkdir(path.dirname(path.resolve(o.out)), { recursive: true });
    const tmpOut = `${o.out}.tmp-${process.pid}`;
    try {
      await run("tar", ["--sort=name", `--mtime=@${o.epoch}`, "--owner=0", "--group=0", "--numeric-owner", "-cf", tmpOut, "-C", layout, "oci-layout", "index.json", "blobs"], sig);
      await rename(tmpOut, o.out);
    } finally {
      await rm(tmpOut, { force: true });
    }
    return { digest: manifest.digest, bytes: (await stat(o.out)).size };
  } finally {
    await rm(layout, { recursive: true, force: true });
  }
}

/**
 * A layer of files of the build host: each `from` (file or folder) copied to `to`, with the parent
 * folders, every entry owned by root, time stamps set to `epoch`, group/other write removed and
 * names sorted, so the tarball depends only on the files' contents and execute bits.
 */
export async function filesLayer(files: readonly { from: string; to: string }[], epoch: number, tarOut: string, signal?: AbortSignal): Promise<void> {
  const sig = signal ? { signal } : {};
  const stage = await mkdtemp(path.join(os.tmpdir(), "corefleet-files-"));
  try {
    for (const f of files) {
      const dest = path.join(stage, f.to);
      await mkdir(path.dirname(dest), { recursive: true });
      const isDir = (await stat(f.from)).isDirectory();
      if (isDir) {
        await mkdir(dest, { recursive: true });
        await run("cp", ["-R", "--no-preserve=all", "--preserve=mode", `${f.from}/.`, dest], sig);
      } else {
        await run("cp", ["--no-preserve=all", "--preserve=mode", f.from, dest], sig);
      }
    }
    await run("tar", ["--format=gnu", "--sort=name", `--mtime=@${epoch}`, "--owner=0", "--group=0", "--numeric-owner", "--mode=u+rw,go-w,a+rX",
      "-cf", tarOut, "-C", stage, ...(await readdir(stage)).sort()], sig);
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

