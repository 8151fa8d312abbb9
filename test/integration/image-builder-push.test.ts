/**
 * image-builder push: archive reading (index.json under "./", malformed index.json), the check that the
 * registry stored the archive's manifest (read back from a docker-registry on loopback, and from a
 * tiny node:http server that answers like no registry), and the push error messages.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type Socket } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../lib/process/run";
import { filesLayer, writeOciArchive } from "../../image-builder/oci-archive";
import type { ContainerSpec } from "../../image-builder/profile";
import { pushImage, readArchiveIndex } from "../../image-builder/push";

const EPOCH = 1735689600;
let dir = "";

/** An archive of one files layer; returns its manifest digest. */
async function archive(name: string, content: string, out: string): Promise<string> {
  const src = path.join(dir, `src-${name}`);
  await mkdir(path.join(src, "www"), { recursive: true });
  await writeFile(path.join(src, "www/index.html"), content);
  const spec: ContainerSpec = { name: "app", packages: ["busybox-static"], cmd: ["/bin/busybox", "httpd", "-f"], files: [{ from: path.join(src, "www"), to: "/srv/www" }] };
  const tar = path.join(dir, `${name}.tar`);
  await filesLayer(spec.files ?? [], EPOCH, tar);
  return (await writeOciArchive({ layers: [tar], spec, epoch: EPOCH, ref: "localhost/app:latest", out })).digest;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "corefleet-ib-push-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("image-builder push: reading the archive", () => {
  it("reads an archive whose entries start with ./ (tar -C dir .), as skopeo does", async () => {
    const file = path.join(dir, "plain.oci.tar");
    const digest = await archive("plain", "x\n", file);
    const unpacked = path.join(dir, "unpacked");
    await mkdir(unpacked);
    await run("tar", ["-xf", file, "-C", unpacked]);
    const dotted = path.join(dir, "dotted.oci.tar");
    await run("tar", ["-cf", dotted, "-C", unpacked, "."]);
    expect((await run("tar", ["-tf", dotted])).stdout).toMatch(/^\.\/index\.json$/m);
    expect(await readArchiveIndex(dotted)).toEqual({ name: "app", digest });
  });

  it("names the archive and index.json when index.json is not JSON", async () => {
    const src = path.join(dir, "bad-index");
    await mkdir(src);
    await writeFile(path.join(src, "index.json"), "{{{");
    const bad = path.join(dir, "bad-index.tar");
    await run("tar", ["-cf", bad, "-C", src, "index.json"]);
    await expect(readArchiveIndex(bad)).rejects.toThrow(
      /^Cannot read ".*bad-index\.tar" as an oci-archive \(its index\.json is not valid JSON: .+\); build one with "image-builder container"$/,
    );
  });

  it("says that a tar without index.json has none", async () => {
    const src = path.join(dir, "no-index");
    await mkdir(src);
    await writeFile(path.join(src, "other"), "x");
    const tar = path.join(dir, "no-index.tar");
    await run("tar", ["-cf", tar, "-C", src, "other"]);
    await expect(readArchiveIndex(tar)).rejects.toThrow(/^Cannot read ".*no-index\.tar" as an oci-archive \(no index\.json in it\)/);
  });
});

/** A node:http server on loopback that answers every request `200 {{{` (plus `headers`); returns it and its port. */
async function notARegistry(headers: Record<string, string> = {}): Promise<{ server: Server; port: number; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    req.resume();
    res.writeHead(200, headers);
    res.end("{{{");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const a = server.address();
  return { server, port: typeof a === "object" && a ? a.port : 0, requests };
}

describe("image-builder push: the registry must serve the archive's manifest", () => {
  it("fails when the endpoint accepts everything but is no registry (200 {{{ to every request)", async () => {
    const file = path.join(dir, "sink.oci.tar");
    await archive("sink", "sink\n", file);
    const fake = await notARegistry();
    try {
      await expect(pushImage({ archive: file, to: { host: "127.0.0.1", port: fake.port, name: "web", tag: "1" } })).rejects.toThrow(
        new RegExp(`^Pushed .*sink\\.oci\\.tar to 127\\.0\\.0\\.1:${fake.port}/web:1 with skopeo, but reading its manifest back failed, so the image may not be stored: ` +
          ".*the registry sent no Docker-Content-Digest header; check that .* is the image registry"),
      );
      expect(fake.requests).toContain("GET /v2/web/manifests/1");
    } finally {
      fake.server.close();
    }
  }, 60_000);

  it("fails when the registry serves another manifest under the tag than the archive's", async () => {
    const file = path.join(dir, "sink.oci.tar");
    const { digest } = await readArchiveIndex(file);
    const other = `sha256:${"a".repeat(64)}`;
    const fake = await notARegistry({ "Docker-Content-Digest": other });
    try {
      await expect(pushImage({ archive: file, to: { host: "127.0.0.1", port: fake.port, name: "web", tag: "1" } })).rejects.toThrow(
        `but the registry serves manifest ${other} under that tag, not the archive's ${digest}: units pinned to the archive's digest would not find it`,
      );
    } finally {
      fake.server.close();
    }
  }, 60_000);
});

/** A loopback port where nothing listens. */
async function closedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const a = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return typeof a === "object" && a ? a.port : 0;
}

describe("image-builder push: why a push failed", () => {
  it("gives skopeo's reason once (not streamed too) and the registry hint when nothing listens", async () => {
    const file = path.join(dir, "sink.oci.tar");
    const port = await closedPort();
    const log: string[] = [];
    const err = await pushImage({ archive: file, to: { host: "127.0.0.1", port, name: "web", tag: "1" }, log: (l) => log.push(l) }).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(new RegExp(`^Cannot push .*sink\\.oci\\.tar to 127\\.0\\.0\\.1:${port}/web:1: .*connect: connection refused; is the registry running \\(fleetctl status registry\\.service\\)\\?$`));
    expect(err?.message.match(/connection refused/g)).toHaveLength(1);
    expect(err?.message).not.toMatch(/level=fatal|time=/);
    expect(log.join("\n")).not.toMatch(/level=fatal/);
    expect((err?.cause as Error | undefined)?.message ?? "").not.toMatch(/connection refused/);
  }, 60_000);

  it("gives no registry hint for an archive skopeo cannot read", async () => {
    const file = path.join(dir, "sink.oci.tar");
    const { digest } = await readArchiveIndex(file);
    const unpacked = path.join(dir, "corrupt");
    await mkdir(unpacked);
    await run("tar", ["-xf", file, "-C", unpacked]);
    await writeFile(path.join(unpacked, "blobs/sha256", digest.slice(7)), "{{{");
    const corrupt = path.join(dir, "corrupt.oci.tar");
    await run("tar", ["-cf", corrupt, "-C", unpacked, "oci-layout", "index.json", "blobs"]);
    const port = await closedPort();
    const err = await pushImage({ archive: corrupt, to: { host: "127.0.0.1", port, name: "web", tag: "1" } }).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/^Cannot push .*corrupt\.oci\.tar to 127\.0\.0\.1:\d+\/web:1: \S/);
    expect(err?.message).not.toMatch(/is the registry running/);
  }, 60_000);

  it("says that an interrupted push was interrupted, with no empty reason and no registry hint", async () => {
    const file = path.join(dir, "sink.oci.tar");
    const sockets: Socket[] = [];
    const silent = createTcpServer((s) => sockets.push(s)); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const a = silent.address();
    const port = typeof a === "object" && a ? a.port : 0;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error("interrupted")), 1500);
    try {
      const err = await pushImage({ archive: file, to: { host: "127.0.0.1", port, name: "web", tag: "1" }, signal: abort.signal }).then(() => undefined, (e: Error) => e);
      expect(err?.message).toMatch(new RegExp(`^Cannot push .*sink\\.oci\\.tar to 127\\.0\\.0\\.1:${port}/web:1: interrupted \\(skopeo .+\\); the tag may be missing or old: push again$`));
      expect(err?.message).not.toMatch(/: ;|is the registry running/);
    } finally {
      clearTimeout(timer);
      for (const s of sockets) s.destroy();
      silent.close();
    }
  }, 60_000);
});
