/** The D-Bus unit manager against the real systemd of machine 1 (fixtures/dbus-driver.ts). */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { build } from "esbuild";
import { expect, it } from "vitest";
import { runOnMachine } from "../../../qemu/machine-ssh";
import { repoRoot, type E2eCluster } from "../helpers/e2e-cluster";

export function dbusUnitManagerScenario(cluster: () => E2eCluster): void {
  it("loads, starts, stops and unloads units through systemd's D-Bus API, with states from signals", async () => {
    const c = cluster();
    const dir = await mkdtemp(path.join(os.tmpdir(), "e2e-dbus-"));
    try {
      const out = path.join(dir, "dbus-driver.cjs");
      await build({ entryPoints: [path.join(repoRoot, "test/e2e/fixtures/dbus-driver.ts")], outfile: out, bundle: true, platform: "node", target: "node18", format: "cjs", external: ["x11"], logLevel: "warning" });
      await runOnMachine(c.paths, c.machine(1), "cat > /tmp/dbus-driver.cjs", { input: await readFile(out) });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const r = await c.ssh(1, "sudo node /tmp/dbus-driver.cjs", { timeoutMs: 600_000 });
    const report = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as Record<string, unknown>;

    expect(report.beforeLoad).toEqual({ loadState: "not-found", activeState: "inactive", subState: "dead" });
    expect(report.afterLoad).toEqual({ loadState: "loaded", activeState: "inactive", subState: "dead" });
    expect(report.link).toBe("/run/corefleet-e2e/units/e2e-sleep.service");
    expect(report.isEnabledLinked).toBe("linked-runtime");
    // From PropertiesChanged signals, not from polling.
    expect(report.startEvent).toEqual({ loadState: "loaded", activeState: "active", subState: "running" });
    expect(report.afterStart).toEqual({ loadState: "loaded", activeState: "active", subState: "running" });
    expect(report.stopEvent).toEqual({ loadState: "loaded", activeState: "inactive", subState: "dead" });
    expect(report.isEnabledInstall).toBe("enabled-runtime");
    expect(report.wantsLink).toBe(true);
    expect(report.instanceEvent).toMatchObject({ activeState: "active" });
    expect(report.instanceDescription).toBe("e2e template instance 7");
    expect(report.failEvent).toMatchObject({ activeState: "failed" });
    expect(report.failRun).toBe("exit-code");
    expect(report.jobRunBefore).toEqual({ result: "success", exitedAt: undefined });
    // The oneshot's exit comes after our start: from the Service signal systemd sent before it unloaded
    // the ended unit (asked afresh, an unloaded unit has no exit time: session 8's failure).
    console.log(`[e2e dbus] oneshot last run: ${JSON.stringify(report.jobRun)}; still loaded: ${JSON.stringify(report.jobLoadedAfterRun)}`);
    const job = report.jobRun as { result?: string; exitedAt: number | null; startedAt: number; now: number };
    expect(job.result).toBe("success");
    expect(job.exitedAt).not.toBeNull();
    // Same host clock, millisecond rounding of systemd's microseconds.
    expect(job.exitedAt!).toBeGreaterThanOrEqual(job.startedAt - 1);
    expect(job.exitedAt!).toBeLessThanOrEqual(job.now);
    expect(report.jobState).toEqual({ loadState: "loaded", activeState: "inactive", subState: "dead" });
    expect(report.listed).toEqual(["e2e-fail.service", "e2e-install.service", "e2e-sleep.service", "e2e-tmpl@7.service"]);
    for (const s of Object.values(report.afterUnload as Record<string, { loadState: string }>)) expect(s.loadState).toBe("not-found");
    expect(report.filesLeft).toEqual([]);
    expect(report.linksLeft).toEqual([]);
    expect(report.wantsLinkAfterUnload).toBe(false);
    expect(report.failedAfterUnload).toBe("");
  });
}
