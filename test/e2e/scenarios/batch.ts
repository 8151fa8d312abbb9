/**
 * A batch unit (Type=oneshot) through fleetd on real systemd: it runs once, is recorded completed
 * (list-unit-files STATE), and when fleetd dies on its machine and systemd restarts it, the new fleetd
 * adopts the job without running it again, although systemd has unloaded the ended unit and forgotten
 * its run by then. (A graceful stop of fleet leaves the cluster: the job is unscheduled, and as a
 * completed unit it is never placed again.)
 */
import { expect, it } from "vitest";
import type { E2eCluster } from "../helpers/e2e-cluster";
import { waitFor } from "../helpers/wait-for";

const JOB = "backup.service";

/** How many times the job's journal says it finished, on its machine. */
async function runsOf(c: E2eCluster, index: number): Promise<number> {
  const r = await c.ssh(index, `journalctl -u ${JOB} --no-pager -o cat | grep -c ' done$' || true`);
  return Number(r.stdout.trim() || "0");
}

export function batchScenario(cluster: () => E2eCluster): void {
  it("runs backup.service once to completion, and not again when fleetd is killed and restarted on its machine", async () => {
    const c = cluster();
    // Runs so far on each machine (none on a fresh cluster; a reused one may have run it before).
    const before = new Map<number, number>();
    for (const index of c.alive) before.set(index, await runsOf(c, index));
    await c.fleetctl(["start", "--no-block", `units/${JOB}`]);
    const row = await waitFor(`${JOB} completed in list-unit-files`, async () => {
      const files = JSON.parse((await c.fleetctl(["list-unit-files", "--fields", "unit,state,target", "--output", "json"])).stdout) as { unit: string; state: string; target: string }[];
      const f = files.find((x) => x.unit === JOB);
      return { done: f?.state === "completed", value: f, seen: JSON.stringify(f) };
    }, { timeoutMs: 4 * 60_000, intervalMs: 3_000 });
    const machineId = row!.target.split("/")[0]!;
    const m = c.spec.machines.find((x) => x.machineId.startsWith(machineId));
    expect(m, `machine of ${row!.target}`).toBeDefined();
    expect(await runsOf(c, m!.index)).toBe(before.get(m!.index)! + 1);
    // systemd's own view: ended, not failed.
    const units = await c.fleetctl(["list-units", "--fields", "unit,active,sub", "--no-legend"]);
    expect(units.stdout).toMatch(new RegExp(`^${JOB.replace(".", "\\.")}\\s+inactive\\s+dead\\s*$`, "m"));

    // SIGKILL: no graceful leave; systemd restarts fleet (Restart=always) and it resumes its lease.
    await c.ssh(m!.index, "sudo systemctl kill --signal=SIGKILL fleet.service");
    await waitFor(`fleetd on ${m!.hostname} adopts ${JOB} without starting it`, async () => {
      const r = await c.ssh(m!.index, `journalctl -u fleet.service --no-pager -o cat | grep -c 'Batch unit ${JOB} .*not starting it again' || true`);
      return { done: Number(r.stdout.trim() || "0") > 0, value: r.stdout, seen: r.stdout.trim() };
    }, { timeoutMs: 3 * 60_000, intervalMs: 5_000 });
    expect(await runsOf(c, m!.index), "runs after fleetd's restart").toBe(before.get(m!.index)! + 1);
    await c.fleetctl(["destroy", JOB]);
  });
}
