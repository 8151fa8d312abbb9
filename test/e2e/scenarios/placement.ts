/** MachineOf, MachineMetadata and Global on real hosts. */
import { expect, it } from "vitest";
import type { E2eCluster } from "../helpers/e2e-cluster";
import { listUnits } from "../helpers/fleet-units";
import { waitFor } from "../helpers/wait-for";

export function placementScenario(cluster: () => E2eCluster): void {
  it("places the web-check@1 sidekick on web@1's machine (MachineOf)", async () => {
    const c = cluster();
    await c.fleetctl(["start", "units/web-check@1.service"], { timeoutMs: 5 * 60_000 });
    const [check, web] = await waitFor("web-check@1.service active next to web@1.service", async () => {
      const rows = await listUnits(c);
      const chk = rows.find((u) => u.unit === "web-check@1.service");
      const w = rows.find((u) => u.unit === "web@1.service");
      return { done: chk?.active === "active" && w !== undefined, value: [chk, w] as const, seen: JSON.stringify(chk) };
    }, { timeoutMs: 4 * 60_000, intervalMs: 5_000 });
    expect(check?.machineId).toBe(web?.machineId);
  });

  it("places edge-proxy.service only on the role=edge machine (MachineMetadata)", async () => {
    const c = cluster();
    await c.fleetctl(["start", "units/edge-proxy.service"], { timeoutMs: 5 * 60_000 });
    const row = await waitFor("edge-proxy.service active", async () => {
      const r = (await listUnits(c)).find((u) => u.unit === "edge-proxy.service");
      return { done: r?.active === "active", value: r, seen: JSON.stringify(r) };
    }, { timeoutMs: 4 * 60_000, intervalMs: 5_000 });
    expect(c.byId(row?.machineId ?? "")?.hostname).toBe("core-2");
  });

  it("runs every etcd member with the image's backend commit settings, 10 ms or 256 writes, and compacts its history keeping an hour (etcd-launch; REGISTRY.md says why)", async () => {
    const c = cluster();
    for (const index of [1, 2, 3]) {
      for (const setting of ["ETCD_BACKEND_BATCH_INTERVAL=10ms", "ETCD_BACKEND_BATCH_LIMIT=256", "ETCD_AUTO_COMPACTION_MODE=periodic", "ETCD_AUTO_COMPACTION_RETENTION=1h"]) {
        const r = await c.ssh(index, `journalctl -u etcd --no-pager -o cat | grep -c 'recognized and used environment variable ${setting}' || true`);
        expect(Number(r.stdout.trim()), `etcd on machine ${index} did not report ${setting}`).toBeGreaterThan(0);
      }
    }
  });

  it("runs hello-global.service once on every machine (Global)", async () => {
    const c = cluster();
    await c.fleetctl(["start", "units/hello-global.service"], { timeoutMs: 5 * 60_000 });
    const rows = await waitFor("hello-global.service active on all 3 machines", async () => {
      const r = (await listUnits(c)).filter((u) => u.unit === "hello-global.service" && u.active === "active");
      return { done: r.length === 3, value: r, seen: r.map((x) => x.ip).join(",") };
    }, { timeoutMs: 4 * 60_000, intervalMs: 5_000 });
    expect(new Set(rows.map((r) => r.machineId)).size).toBe(3);
  });

  it("rolls hello-global.service to a new body one machine at a time (deploy of a global unit), on real systemd", async () => {
    const c = cluster();
    // No hello-global.service in the working folder: the body is the cluster's, with --set applied.
    const r = await c.fleetctl(["deploy", "--set", "GREETING=e2e", "--max-unavailable", "1", "hello-global.service"], { timeoutMs: 10 * 60_000 });
    expect(r.stdout).toContain("3 machine(s) to update: ");
    expect(r.stdout).toMatch(/Rollout of hello-global\.service to revision 2 succeeded in [\d.]+ s \(most machines unavailable at once: [01]\)\n$/);
    for (const i of [1, 2, 3]) {
      const unit = await c.ssh(i, "systemctl cat hello-global.service; systemctl is-active hello-global.service");
      expect(unit.stdout, `machine ${i}`).toContain("Environment=GREETING=e2e");
      expect(unit.stdout.trim().split("\n").at(-1), `machine ${i}`).toBe("active");
    }
  });
}
