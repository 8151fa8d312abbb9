/** web@1..3 through fleetctl: spread by Conflicts, serving HTTP, visible through list-units, ssh, status, journal. */
import { expect, it } from "vitest";
import type { E2eCluster } from "../helpers/e2e-cluster";
import { listUnits, type ListedUnit } from "../helpers/fleet-units";
import { waitFor } from "../helpers/wait-for";

export const WEB_UNITS = ["web@1.service", "web@2.service", "web@3.service"];

export async function waitWebActive(c: E2eCluster): Promise<ListedUnit[]> {
  return waitFor(
    "web@1..3 active/running on three different machines in fleetctl list-units",
    async () => {
      const rows = (await listUnits(c)).filter((u) => WEB_UNITS.includes(u.unit));
      const ok = rows.length === 3 && rows.every((u) => u.active === "active" && u.sub === "running") && new Set(rows.map((u) => u.machineId)).size === 3;
      return { done: ok, value: rows, seen: rows.map((u) => `${u.unit}@${u.ip}:${u.active}/${u.sub}`).join(" ") || "no web units" };
    },
    { timeoutMs: 6 * 60_000, intervalMs: 5_000 },
  );
}

export function webScenario(cluster: () => E2eCluster): void {
  it("starts web@1..3 on three machines (Conflicts) and each answers HTTP on its machine", async () => {
    const c = cluster();
    await c.fleetctl(["start", "units/web@1.service", "units/web@2.service", "units/web@3.service"], { timeoutMs: 6 * 60_000 });
    const rows = await waitWebActive(c);
    for (const row of rows) {
      const m = c.byId(row.machineId);
      expect(m, `machine ${row.machineId} of ${row.unit} is one of ours`).toBeDefined();
      const r = await waitFor(`HTTP 200 from ${row.unit} at http://${m!.ip}/`, async () => {
        const res = await c.httpGet(m!.ip);
        return { done: res.exitCode === 0, value: res, seen: res.stderr.trim() };
      }, { timeoutMs: 60_000, intervalMs: 3_000 });
      expect(r.stdout).toContain(`corefleet web on ${m!.hostname}`);
    }
  });

  it("list-units shows them active; fleetctl ssh, status and journal reach their machines", async () => {
    const c = cluster();
    const table = await c.fleetctl(["list-units"]);
    expect(table.stdout.split("\n")[0]).toMatch(/^UNIT\s+MACHINE\s+ACTIVE\s+SUB\s*$/);
    for (const u of WEB_UNITS) expect(table.stdout).toMatch(new RegExp(`^${u.replace(/[.@]/g, "\\$&")}\\s+\\S+/10\\.77\\.0\\.1[1-3]\\s+active\\s+running`, "m"));

    const rows = await listUnits(c);
    const web1 = rows.find((u) => u.unit === "web@1.service");
    const host = c.byId(web1?.machineId ?? "")?.hostname;
    const ssh = await c.fleetctl(["ssh", "web@1.service", "hostname"]);
    expect(ssh.stdout.trim()).toBe(host);

    const status = await c.fleetctl(["status", "web@1.service"]);
    expect(status.stdout).toMatch(/Active: active \(running\)/);

    // busybox httpd -v logs each request: the GETs from the namespace (10.77.0.1) are in the journal.
    const journal = await c.fleetctl(["journal", "--lines", "100", "web@1.service"]);
    expect(journal.stdout).toContain("10.77.0.1");

    const remoteExit = await c.fleetctl(["ssh", "web@1.service", "exit 3"], { allowFailure: true });
    expect(remoteExit.exitCode).toBe(3);
  });
}
