/**
 * Resolving an image tag (lib/image/image-reference.ts) against HTTP servers on loopback that are not
 * the cluster registry (image-push.test.ts covers a real docker-registry): a web server that is no
 * registry at all, and registry answers the docker-registry of Debian does not give on its own.
 */
import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { resolveImageDigest } from "../../lib/image/image-reference";

describe("resolving an image tag: what a 404 means", () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
  });

  const serve = async (handler: RequestListener): Promise<string> => {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  /** Answers as an OCI distribution registry refuses: a status and its errors JSON. */
  const registryRefusing = (status: number, errors: { code: string; message: string }[]): RequestListener => (_req, res) => {
    res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Docker-Distribution-Api-Version": "registry/2.0" });
    res.end(JSON.stringify({ errors }));
  };

  it("says 'no such tag' only when the registry says MANIFEST_UNKNOWN", async () => {
    const host = await serve(registryRefusing(404, [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }]));
    await expect(resolveImageDigest(`${host}/web:9`)).rejects.toThrow(
      `Cannot resolve image "${host}/web:9" (${host}/v2/web/manifests/9): the registry has no such tag (manifest unknown); push it first (image-builder push)`,
    );
  });

  it("reports a 404 without a registry's error body as a 404, asking whether this is a registry at all", async () => {
    const host = await serve((_req, res) => {
      res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" });
      res.end("404 page not found\n");
    });
    await expect(resolveImageDigest(`${host}/web:2`)).rejects.toThrow(
      `Cannot resolve image "${host}/web:2" (${host}/v2/web/manifests/2): HTTP 404 from ${host} without a registry's error: not a registry endpoint? Check that ${host} is the image registry (it answers under /v2/)`,
    );
  });

  it("names a missing repository, and quotes other registry errors with their status", async () => {
    const noRepo = await serve(registryRefusing(404, [{ code: "NAME_UNKNOWN", message: "repository name not known to registry" }]));
    await expect(resolveImageDigest(`${noRepo}/team/web:2`)).rejects.toThrow(
      `Cannot resolve image "${noRepo}/team/web:2" (${noRepo}/v2/team/web/manifests/2): the registry has no repository "team/web" (name unknown); push it first (image-builder push)`,
    );
    const denied = await serve(registryRefusing(401, [{ code: "UNAUTHORIZED", message: "authentication required" }]));
    await expect(resolveImageDigest(`${denied}/web:2`)).rejects.toThrow(`(${denied}/v2/web/manifests/2): the registry answered HTTP 401: UNAUTHORIZED: authentication required`);
  });

  it("still resolves a tag to the digest the registry serves", async () => {
    const digest = `sha256:${"c".repeat(64)}`;
    const host = await serve((req, res) => {
      res.writeHead(200, { "Content-Type": "application/vnd.oci.image.manifest.v1+json", "Docker-Content-Digest": digest });
      res.end(req.method === "HEAD" ? undefined : "{}");
    });
    await expect(resolveImageDigest(`${host}/web:2`)).resolves.toBe(`${host}/web@${digest}`);
  });
});
