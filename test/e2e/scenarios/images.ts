/**
 * Build, ship, run on real hosts: the cluster registry (units/registry.service), the web image built
 * on this host from units/web/ and pushed through an SSH forward, a new version deployed to every
 * web instance, and a unit whose image does not exist failing with podman's pull error in
 * `fleetctl status`. `registryScenario` runs before the web scenario (web@1..3 run the pushed image),
 * `newImageScenario` after it.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { buildImageDir, pushToCluster } from "../../../qemu/cluster-images";
import { REGISTRY_ADDRESS } from "../../../qemu/cluster-registry";
import { repoRoot, type E2eCluster } from "../helpers/e2e-cluster";
import { listUnits } from "../helpers/fleet-units";
import { waitFor } from "../helpers/wait-for";
import { WEB_UNITS, waitWebActive } from "./web";

let work = "";
const workDir = async (): Promise<string> => (work ||= await mkdtemp(path.join(os.tmpdir(), "corefleet-e2e-images-")));
/**
 * Each scenario removes the folder when its describe block ends, and forgets it, so the next one makes
 * a fresh folder. (Removing it after the first scenario only, while `work` still named it, let the
 * second recreate it through cp and leave it behind in /tmp on every run.)
 */
const removeWorkDir = async (): Promise<void> => {
  if (work) await rm(work, { recursive: true, force: true });
  work = "";
};

/** The digest of the web:1 image this run built and pushed. */
let web1Digest = "";

export function registryScenario(cluster: () => E2eCluster): void {
  afterAll(removeWorkDir);

  it("runs registry.service on the registry=true machine and takes the web image built here, pushed through the SSH forward, under its build digest", async () => {
    const c = cluster();
    await c.fleetctl(["start", "--no-block", "units/registry.service"], { timeoutMs: 5 * 60_000 });
    const archive = path.join(await workDir(), "web-1.oci.tar");
    const built = await buildImageDir(path.join(repoRoot, "units/web"), archive);
    expect(built).toMatch(/^sha256:[0-9a-f]{64}$/);
    const row = await waitFor("registry.service active", async () => {
      const r = (await listUnits(c)).find((u) => u.unit === "registry.service");
      return { done: r?.active === "active", value: r, seen: JSON.stringify(r) };
    }, { timeoutMs: 4 * 60_000, intervalMs: 5_000 });
    expect(c.byId(row?.machineId ?? "")?.hostname).toBe("core-1");
    const pushed = await pushToCluster(c.root, c.spec, c.machine(1), archive, "web:1", { waitMs: 2 * 60_000 });
    expect(pushed.digest).toBe(built);
    web1Digest = built;
    // Every machine resolves registry.cluster (provisioning's hosts entry) and reaches it over HTTP.
    const answer = await c.ssh(3, `exec 3<>/dev/tcp/${REGISTRY_ADDRESS.replace(":", "/")}; printf 'GET /v2/web/tags/list HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3`);
    expect(answer.stdout).toContain('"tags":["1"]');
  });
}

async function answersEverywhere(c: E2eCluster, text: string): Promise<void> {
  const rows = (await listUnits(c)).filter((u) => WEB_UNITS.includes(u.unit));
  expect(rows).toHaveLength(3);
  for (const row of rows) {
    const m = c.byId(row.machineId);
    await waitFor(`${row.unit} at http://${m?.ip ?? "?"}/ answering "${text}"`, async () => {
      const res = await c.httpGet(m?.ip ?? "");
      return { done: res.exitCode === 0 && res.stdout.includes(text), value: res, seen: res.stdout.trim().slice(0, 200) || res.stderr.trim() };
    }, { timeoutMs: 4 * 60_000, intervalMs: 5_000 });
  }
}

/** The image digest each web container runs, from podman on its machine. */
async function runningDigests(c: E2eCluster): Promise<string[]> {
  const rows = (await listUnits(c)).filter((u) => WEB_UNITS.includes(u.unit));
  const out: string[] = [];
  for (const row of rows) {
    const m = c.byId(row.machineId);
    const n = row.unit.slice("web@".length, -".service".length);
    const r = await c.ssh(m?.index ?? 0, `sudo podman inspect --format '{{.ImageDigest}}' web-${n}`);
    out.push(r.stdout.trim());
  }
  return out;
}

export function newImageScenario(cluster: () => E2eCluster): void {
  afterAll(removeWorkDir);

  it("web@1..3 pulled the pushed image on their machines: the pull is in the journal, every container runs its digest", async () => {
    const c = cluster();
    expect(web1Digest, "the registry scenario pushed web:1").not.toBe("");
    // Every HTTP request of the scenarios before logs two lines: read far enough back for the last start's pull.
    const journal = await c.fleetctl(["journal", "--lines", "5000", "web@2.service"]);
    expect(journal.stdout).toContain(`${REGISTRY_ADDRESS}/web:1`);
    expect(await runningDigests(c)).toEqual([web1Digest, web1Digest, web1Digest]);
  });

  it("deploys a new image version: every instance answers with the new content and runs the same digest", async () => {
    const c = cluster();
    const dir = path.join(await workDir(), "web");
    await cp(path.join(repoRoot, "units/web"), dir, { recursive: true });
    const page = path.join(dir, "www/index.html");
    await writeFile(page, (await readFile(page, "utf8")).replace("web image version 1", "web image version 2"));
    const archive = path.join(await workDir(), "web-2.oci.tar");
    const built = await buildImageDir(dir, archive);
    expect(built).not.toBe(web1Digest);
    const pushed = await pushToCluster(c.root, c.spec, c.machine(1), archive, "web:2");
    expect(pushed.digest).toBe(built);

    // deploy works on the template (the rollout scenario submitted it; submitting again is harmless).
    await c.fleetctl(["submit", "units/web@.service"]);
    const r = await c.fleetctl(["deploy", "web@.service", "--set", `image=${REGISTRY_ADDRESS}/web:2`], { timeoutMs: 12 * 60_000 });
    // The tag was resolved to its digest at deploy time: the instances' unit files name the digest.
    expect(`${r.stdout}${r.stderr}`).toContain(built);
    await waitWebActive(c);
    await answersEverywhere(c, "web image version 2");
    expect(await runningDigests(c)).toEqual([built, built, built]);
    const cat = await c.fleetctl(["cat", "web@1.service"]);
    expect(cat.stdout).toContain(`Environment=image=${REGISTRY_ADDRESS}/web@${built}`);
  });

  it("fails a unit whose image does not exist, with podman's pull error in fleetctl status", async () => {
    const c = cluster();
    const dir = await workDir();
    const unit = path.join(dir, "no-such-image.service");
    await writeFile(unit, [
      "[Unit]", "Description=e2e: a unit whose image was never pushed", "",
      "[Service]", `Environment=image=${REGISTRY_ADDRESS}/no-such-image:1`,
      "ExecStartPre=/usr/bin/podman pull ${image}", "ExecStart=/usr/bin/podman run --rm --pull never ${image}", "",
    ].join("\n"));
    await c.fleetctl(["start", "--no-block", unit], { timeoutMs: 5 * 60_000 });
    await waitFor("no-such-image.service failed", async () => {
      const r = (await listUnits(c)).find((u) => u.unit === "no-such-image.service");
      return { done: r?.active === "failed", value: r, seen: JSON.stringify(r) };
    }, { timeoutMs: 4 * 60_000, intervalMs: 5_000 });
    const status = await c.fleetctl(["status", "no-such-image.service"], { allowFailure: true });
    expect(status.stdout).toMatch(/Active: failed/);
    expect(status.stdout).toContain(`${REGISTRY_ADDRESS}/no-such-image`);
    expect(status.stdout).toMatch(/manifest unknown/);
    await c.fleetctl(["destroy", "no-such-image.service"]);
  });
}
