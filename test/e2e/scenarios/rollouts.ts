/**
 * Operations on the web template (needs web@1..3 running, from the web scenario): a rolling deploy
 * while every instance keeps answering HTTP (at most max-unavailable down at any sampled moment), and
 * scale 3 → 5 → 2 → 3 (web@4/5 cannot be placed: Conflicts=web@*.service on 3 machines).
 *
 * History: on 2026-12-03 the deploy request once got a 500 (etcd "context deadline exceeded") after the
 * rollout had been recorded, while 3 TCG guests sharing 2 cores pulled and restarted containers. Since
 * then fleetd answers 503 for etcd's deadline and fleetctl follows a rollout whose answer was lost
 * (looked up by its request ID), so the scenario runs in the suite.
 */
import { expect, it } from "vitest";
import type { E2eCluster } from "../helpers/e2e-cluster";
import { listUnits } from "../helpers/fleet-units";
import { waitFor } from "../helpers/wait-for";
import { WEB_UNITS, waitWebActive } from "./web";

export function rolloutScenario(cluster: () => E2eCluster): void {
  it("deploy rolls web@1..3 to a new body while they keep answering HTTP, at most 1 down at once", async () => {
    const c = cluster();
    const rows = await waitWebActive(c);
    const ips = rows.map((r) => c.byId(r.machineId)!.ip);
    // As in fleet, starting web@N from units/web@.service creates only the instances: deploy and scale
    // work on the template, which is submitted first (without it both exit 1 and say so).
    await c.fleetctl(["submit", "units/web@.service"]);
    const plan = await c.fleetctl(["deploy", "--dry-run", "--set", "WEB_REVISION=2", "units/web@.service"]);
    expect(plan.stdout).toContain("3 instance(s) to update: web@1.service web@2.service web@3.service; max unavailable 1, max surge 0");
    const sampler = c.sampleHttp(ips);
    const started = Date.now();
    const r = await c.fleetctl(["deploy", "--set", "WEB_REVISION=2", "--max-unavailable", "1", "--deadline", "300s", "units/web@.service"], { timeoutMs: 15 * 60_000 });
    const ms = Date.now() - started;
    const { maxDown, samples } = await sampler.stop();
    console.log(`[e2e rollout] deploy of web@1..3: ${ms} ms, ${samples} HTTP samples, most machines not answering at once: ${maxDown}`);
    expect(r.stdout).toMatch(/Rollout of web@\.service to revision \d+ succeeded/);
    expect(maxDown).toBeLessThanOrEqual(1);
    const files = await c.fleetctl(["list-unit-files", "--no-legend", "--fields", "unit,revision"]);
    for (const u of WEB_UNITS) expect(files.stdout).toMatch(new RegExp(`^${u.replace(/[.@]/g, "\\$&")}\\s+2$`, "m"));
    for (const ip of ips) expect((await c.httpGet(ip)).exitCode, `HTTP from ${ip} after the rollout`).toBe(0);
    // Each old instance stopped on SIGTERM: the web image's shell ends httpd, so no stop waited out
    // podman's 5 s and SIGKILL (httpd as the container's PID 1 ignored SIGTERM).
    for (const row of rows) {
      const m = c.byId(row.machineId)!;
      const log = await c.ssh(m.index, `journalctl -u '${row.unit}' --since @${Math.floor(started / 1000) - 5} --no-pager -o cat`);
      expect(log.stdout, `${row.unit} on ${m.hostname}: stopped for the rollout`).toMatch(/Stopping web@/);
      expect(log.stdout, `${row.unit} on ${m.hostname}: stopped without SIGKILL`).not.toMatch(/resorting to SIGKILL/);
    }
  });

  it("scale 3 → 5 → 2 → 3: web@4/5 created (unplaceable: Conflicts), then the highest numbers destroyed", async () => {
    const c = cluster();
    const up = await c.fleetctl(["scale", "--no-block", "web@.service=5"]);
    expect(up.stdout).toContain("Created web@4.service\nCreated web@5.service\n");
    const reasons = await waitFor("web@4/5 unscheduled because of Conflicts", async () => {
      const t = (await c.fleetctl(["list-unit-files", "--no-legend", "--fields", "unit,reason"])).stdout;
      return { done: /^web@5\.service\s+.*Conflicts/m.test(t), value: t, seen: t };
    }, { timeoutMs: 60_000, intervalMs: 3_000 });
    expect(reasons).toMatch(/^web@4\.service\s+.*Conflicts/m);
    const down = await c.fleetctl(["scale", "web@.service=2"], { timeoutMs: 5 * 60_000 });
    expect(down.stdout).toContain("Destroyed web@5.service\nDestroyed web@4.service\nDestroyed web@3.service\nScaled web@.service from 5 to 2 instances\n");
    const rows = (await listUnits(c)).filter((u) => u.unit.startsWith("web@"));
    expect(rows.map((u) => u.unit).sort()).toEqual(["web@1.service", "web@2.service"]);
    for (const row of rows) expect((await c.httpGet(c.byId(row.machineId)!.ip)).exitCode).toBe(0);
    // Back to three for the scenarios that follow.
    await c.fleetctl(["scale", "web@.service=3"], { timeoutMs: 6 * 60_000 });
    await waitWebActive(c);
  });
}
