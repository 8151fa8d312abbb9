/**
 * fleetctl over https with --ca-file/--cert-file/--key-file: the real API handler behind a TLS server
 * that requires a client certificate (certificates made by openssl for the test).
 */
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../lib/process/run";
import { createApiServer, registryBackend } from "../../fleetd/api";
import { etcdFixture } from "../helpers/fleet-fixture";
import { FleetctlEnv } from "./fleetctl-harness";

const M1 = "c1b2c3d4e5f60718293a4b5c6d7e8f91";

async function makeCerts(dir: string): Promise<void> {
  const ssl = (args: string[]): Promise<unknown> => run("openssl", args, { cwd: dir, timeoutMs: 30_000 });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await ssl(["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=corefleet test CA", "-days", "1"]);
  await writeFile(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1\n");
  for (const who of ["server", "client"]) {
    await ssl(["req", ...ec, "-keyout", `${who}.key`, "-out", `${who}.csr`, "-subj", `/CN=${who}`]);
    const ext = who === "server" ? ["-extfile", "server.ext"] : [];
    await ssl(["x509", "-req", "-in", `${who}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${who}.crt`, "-days", "1", ...ext]);
  }
}

describe("fleetctl over https with client certificates", () => {
  const etcd = etcdFixture();
  let env: FleetctlEnv;
  let server: Server;
  let endpoint: string;

  beforeAll(async () => {
    env = await FleetctlEnv.start(etcd(), [M1]);
    await makeCerts(env.dir);
    const file = (n: string): Promise<Buffer> => readFile(join(env.dir, n));
    const api = createApiServer({ backend: registryBackend(env.cluster.registry), version: "0.1.0" });
    server = createServer({ key: await file("server.key"), cert: await file("server.crt"), ca: await file("ca.crt"), requestCert: true, rejectUnauthorized: true }, (req, res) =>
      api.handle(req, res),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server?.close();
    await env?.close();
  });

  it("verifies the server with --ca-file and authenticates with --cert-file/--key-file", async () => {
    const r = await env.run(["--endpoint", endpoint, "--ca-file", "ca.crt", "--cert-file", "client.crt", "--key-file", "client.key", "list-machines", "--no-legend", "-l"]);
    expect(r).toEqual({ code: 0, stdout: `${M1}\t10.0.0.49\t-\n`, stderr: "" });
  });

  it("fails with the TLS reason when the CA or the client certificate is missing", async () => {
    const noCa = await env.run(["--endpoint", endpoint, "--cert-file", "client.crt", "--key-file", "client.key", "list-machines"]);
    expect(noCa.code).toBe(1);
    expect(noCa.stderr).toMatch(/^Error retrieving list of active machines from fleet API: .*(self-signed certificate|unable to verify|unable to get local issuer)/);
    const noCert = await env.run(["--endpoint", endpoint, "--ca-file", "ca.crt", "list-machines"]);
    expect(noCert.code).toBe(1);
    expect(noCert.stderr).toContain("Possible issues:");
    const missing = await env.run(["--endpoint", endpoint, "--ca-file", "nope.crt", "list-machines"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`Unable to initialize client: cannot read --ca-file "${join(env.dir, "nope.crt")}": ENOENT: no such file or directory, open '${join(env.dir, "nope.crt")}'\n`);
  });
});
