/**
 * image-builder push and pull against a real registry: Debian's docker-registry (OCI distribution
 * 2.8) started by the test on a loopback port, skopeo as the client, an archive written by our own
 * OCI writer (a files layer: no root, no mmdebstrap). Through the tunnel: OpenSSH's client forwarding
 * to the registry via the loopback SSH server of the fleetctl tests.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { freePort } from "../helpers/etcd";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { delay } from "../../lib/async/delay";
import { run } from "../../lib/process/run";
import { filesLayer, writeOciArchive } from "../../image-builder/oci-archive";
import type { ContainerSpec } from "../../image-builder/profile";
import { pushImage, readArchiveIndex } from "../../image-builder/push";
import { resolveImageDigest } from "../../lib/image/image-reference";
import { PassThrough } from "node:stream";
import type { CommandContext } from "../../fleetctl/context";
import { resolveGlobals } from "../../fleetctl/global-options";
import { pinImageSets } from "../../fleetctl/image-pinning";
import { ed25519KeyPair, startSshServer, type TestSshServer } from "./fleetctl-ssh-server";

const EPOCH = 1735689600;
let dir = "";
let registry: ChildProcess | undefined;
let registryPort = 0;
let registryLog = "";


/** An archive of one files layer holding `www/index.html` with `content`. */
async function archive(name: string, content: string, out: string): Promise<string> {
  const src = path.join(dir, `src-${name}`);
  await mkdir(path.join(src, "www"), { recursive: true });
  await writeFile(path.join(src, "www/index.html"), content);
  const spec: ContainerSpec = { name: "app", packages: ["busybox-static"], cmd: ["/bin/busybox", "httpd", "-f"], files: [{ from: path.join(src, "www"), to: "/srv/www" }], ports: [80] };
  const tar = path.join(dir, `${name}.tar`);
  await filesLayer(spec.files ?? [], EPOCH, tar);
  return (await writeOciArchive({ layers: [tar], spec, epoch: EPOCH, ref: "localhost/app:latest", out })).digest;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "corefleet-push-test-"));
  registryPort = await freePort();
  const config = path.join(dir, "registry.yml");
  await writeFile(config, `version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/registry\nhttp:\n  addr: 127.0.0.1:${registryPort}\n`);
  registry = spawn("docker-registry", ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
  registry.stdout?.on("data", (d: Buffer) => (registryLog += d.toString()));
  registry.stderr?.on("data", (d: Buffer) => (registryLog += d.toString()));
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://127.0.0.1:${registryPort}/v2/`).then((r) => r.ok, () => false);
    if (ok) break;
    if (i > 100 || registry.exitCode !== null) throw new Error(`docker-registry did not answer on 127.0.0.1:${registryPort}:\n${registryLog}`);
    await delay(100);
  }
});
afterAll(async () => {
  registry?.kill("SIGTERM");
  await rm(dir, { recursive: true, force: true });
});

describe("image-builder push against a docker-registry on loopback", () => {
  it("writes the same archive, byte for byte, from the same inputs, and another digest for other content", async () => {
    const a = await archive("a", "v1\n", path.join(dir, "a.oci.tar"));
    const b = await archive("b", "v1\n", path.join(dir, "b.oci.tar"));
    const c = await archive("c", "v2\n", path.join(dir, "c.oci.tar"));
    expect(a).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
    expect(await readFile(path.join(dir, "b.oci.tar"))).toEqual(await readFile(path.join(dir, "a.oci.tar")));
    expect(await readArchiveIndex(path.join(dir, "a.oci.tar"))).toEqual({ name: "app", digest: a });
  });

  it("pushes under the archive's digest, and the pulled image carries the pushed files", async () => {
    const file = path.join(dir, "v1.oci.tar");
    const digest = await archive("v1", "version 1\n", file);
    const r = await pushImage({ archive: file, to: { host: "127.0.0.1", port: registryPort, tag: "1" } });
    expect(r.digest).toBe(digest);
    expect(r.reference).toBe(`127.0.0.1:${registryPort}/app:1`);
    expect(r.pinned).toBe(`127.0.0.1:${registryPort}/app@${digest}`);

    const inspect = await run("skopeo", ["inspect", "--tls-verify=false", `docker://127.0.0.1:${registryPort}/app:1`]);
    expect((JSON.parse(inspect.stdout) as { Digest: string }).Digest).toBe(digest);

    const pulled = path.join(dir, "pulled");
    await run("skopeo", ["copy", "--src-tls-verify=false", `docker://${r.pinned}`, `oci:${pulled}:app`]);
    const index = JSON.parse(await readFile(path.join(pulled, "index.json"), "utf8")) as { manifests: { digest: string }[] };
    expect(index.manifests[0]?.digest).toBe(digest);
    const manifest = JSON.parse(await readFile(path.join(pulled, "blobs/sha256", digest.slice(7)), "utf8")) as { layers: { digest: string }[] };
    const layer = path.join(pulled, "blobs/sha256", manifest.layers[0]?.digest.slice(7) ?? "");
    expect((await run("tar", ["-xzOf", layer, "srv/www/index.html"])).stdout).toBe("version 1\n");
  });

  it("resolves the pushed tag to the digest the registry serves, and names a tag it does not have", async () => {
    const file = path.join(dir, "v1.oci.tar");
    const { digest } = await readArchiveIndex(file);
    await expect(resolveImageDigest(`127.0.0.1:${registryPort}/app:1`)).resolves.toBe(`127.0.0.1:${registryPort}/app@${digest}`);
    await expect(resolveImageDigest(`127.0.0.1:${registryPort}/app:9`)).rejects.toThrow(
      `Cannot resolve image "127.0.0.1:${registryPort}/app:9" (127.0.0.1:${registryPort}/v2/app/manifests/9): the registry has no such tag (manifest unknown); push it first (image-builder push)`,
    );
    const closed = await freePort();
    await expect(resolveImageDigest(`127.0.0.1:${closed}/app:1`)).rejects.toThrow(/ECONNREFUSED.*; is the registry running and reachable from here\?$/);
  });

  it("says which reference is missing when a pull names a tag that was never pushed", async () => {
    const r = await run("skopeo", ["inspect", "--tls-verify=false", `docker://127.0.0.1:${registryPort}/app:nope`], { allowFailure: true });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/manifest unknown/);
  });

  it("explains a push to a port where no registry listens", async () => {
    const file = path.join(dir, "v1.oci.tar");
    const port = await freePort();
    await expect(pushImage({ archive: file, to: { host: "127.0.0.1", port, name: "app", tag: "1" } })).rejects.toThrow(
      new RegExp(`^Cannot push .*v1\\.oci\\.tar to 127\\.0\\.0\\.1:${port}/app:1: .*connection refused.*; is the registry running`),
    );
  });

  it("refuses a file that is not an oci-archive, saying how to make one", async () => {
    const bogus = path.join(dir, "bogus.tar");
    await writeFile(bogus, "not a tar");
    await expect(pushImage({ archive: bogus, to: { host: "127.0.0.1", port: registryPort } })).rejects.toThrow(/^Cannot read ".*bogus\.tar" as an oci-archive .*build one with "image-builder container"$/);
  });

  describe("through an SSH port forward", () => {
    let ssh: TestSshServer;
    let identity = "";
    let knownHosts = "";
    beforeAll(async () => {
      const key = ed25519KeyPair();
      identity = path.join(dir, "id_ed25519");
      await writeFile(identity, key.private);
      await chmod(identity, 0o600);
      const binDir = path.join(dir, "bin");
      await mkdir(binDir, { recursive: true });
      ssh = await startSshServer({ clientPublicKey: key.public, binDir });
      knownHosts = path.join(dir, "known_hosts");
      await writeFile(knownHosts, `[127.0.0.1]:${ssh.port} ${ssh.hostPublicKey}\n`);
    });
    afterAll(async () => ssh.close());

    it("pushes through the forward (the registry address resolved on the SSH host), under the same digest", async () => {
      const file = path.join(dir, "v2.oci.tar");
      const digest = await archive("v2", "version 2\n", file);
      const before = ssh.tcpipChannels;
      const r = await pushImage({ archive: file, to: { host: "127.0.0.1", port: registryPort, name: "app", tag: "2" },
        tunnel: { via: `core@127.0.0.1:${ssh.port}`, identityFile: identity, knownHostsFile: knownHosts } });
      expect(r.digest).toBe(digest);
      expect(ssh.tcpipChannels).toBeGreaterThan(before);
      const inspect = await run("skopeo", ["inspect", "--tls-verify=false", `docker://127.0.0.1:${registryPort}/app:2`]);
      expect((JSON.parse(inspect.stdout) as { Digest: string }).Digest).toBe(digest);
    });

    it("fleetctl pins --set image=TAG to its digest, asking the registry through the --tunnel host", async () => {
      const { digest } = await readArchiveIndex(path.join(dir, "v2.oci.tar"));
      const stderr: string[] = [];
      const io = { stdout: new PassThrough(), stderr: new PassThrough(), stdin: new PassThrough(), env: {} };
      const globals = resolveGlobals({ tunnel: `127.0.0.1:${ssh.port}`, identityFile: identity, knownHostsFile: knownHosts }, {});
      const ctx = { io, globals: () => globals, err: (l: string) => stderr.push(l), signal: new AbortController().signal } as unknown as CommandContext;
      const before = ssh.tcpipChannels;
      const sets = await pinImageSets(ctx, { image: `127.0.0.1:${registryPort}/app:2`, other: "x:1" });
      expect(sets).toEqual({ image: `127.0.0.1:${registryPort}/app@${digest}`, other: "x:1" });
      expect(ssh.tcpipChannels).toBe(before + 1);
      expect(stderr).toEqual([`image 127.0.0.1:${registryPort}/app:2 is 127.0.0.1:${registryPort}/app@${digest}`]);
      await expect(pinImageSets(ctx, { image: `127.0.0.1:${registryPort}/app:404` })).rejects.toThrow("the registry has no such tag (manifest unknown)");
      // Already pinned, or not a registry reference: left alone, no connection made.
      expect(await pinImageSets(ctx, { image: `127.0.0.1:${registryPort}/app@${digest}` })).toEqual({ image: `127.0.0.1:${registryPort}/app@${digest}` });
      expect(ssh.tcpipChannels).toBe(before + 2);
    });

    it("fails with ssh's reason when the host key is not the known one, and leaves no ssh behind", async () => {
      const wrong = path.join(dir, "known_hosts_wrong");
      await writeFile(wrong, `[127.0.0.1]:${ssh.port} ${ed25519KeyPair().public}\n`);
      await expect(pushImage({ archive: path.join(dir, "v2.oci.tar"), to: { host: "127.0.0.1", port: registryPort, name: "app", tag: "3" },
        tunnel: { via: `127.0.0.1:${ssh.port}`, identityFile: identity, knownHostsFile: wrong } })).rejects.toThrow(
        /^Cannot open the SSH forward to 127\.0\.0\.1:\d+ through core@127\.0\.0\.1:\d+: .*Host key verification failed/s,
      );
      const left = await run("pgrep", ["-f", `UserKnownHostsFile=${wrong}`], { allowFailure: true });
      expect(left.stdout.trim()).toBe("");
    });
  });
});
