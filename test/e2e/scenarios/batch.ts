/**
 * A batch unit (Type=oneshot) through fleetd on real systemd: it runs once, is recorded completed
 * (list-unit-files STATE), and when fleetd dies on its machine and systemd restarts it, the new fleetd
 * adopts the job without running it again, although systemd has unloaded the ended unit and forgotten
 * its run by then; if the restart outlasts agent TTL + grace (slow TCG hosts), the engine unschedules
 * the completed job and it runs nowhere again. (A graceful stop of fleet leaves the cluster: the job
 * is unscheduled, and as a completed unit it is never placed again.)
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

    // SIGKILL: no graceful leave; systemd restarts fleet (Restart=always, 5 s) and the new fleetd
    // resumes its lease. On a slow TCG host its start can outlast agent TTL + grace: the engine then
    // declares the machine gone and unschedules its units, and a completed job is never placed again.
    // Either way it must not run again; which of the two happened is read from fleetd's own journal.
    const killedAt = (await c.ssh(m!.index, "date +%s")).stdout.trim();
    await c.ssh(m!.index, "sudo systemctl kill --signal=SIGKILL fleet.service");
    const outcome = await waitFor(`fleetd on ${m!.hostname} to come back and adopt ${JOB} without starting it, or to find it unscheduled`, async () => {
      const log = (await c.ssh(m!.index, `journalctl -u fleet.service --since @${killedAt} --no-pager -o cat`)).stdout;
      if (new RegExp(`Batch unit ${JOB} .*not starting it again`).test(log)) return { done: true, value: "adopted" as const };
      const registered = /Registered machine \S+ \(lease \S+(, resumed)?\)/.exec(log);
      if (registered && !registered[1]) {
        const files = JSON.parse((await c.fleetctl(["list-unit-files", "--fields", "unit,target", "--output", "json"])).stdout) as { unit: string; target: string }[];
        if (files.find((x) => x.unit === JOB)?.target === "-") return { done: true, value: "unscheduled" as const };
      }
      return { done: false, value: undefined, seen: `fleet.service since the kill: ${log.trim().split("\n").slice(-8).join(" | ") || "(nothing)"}` };
    }, { timeoutMs: 3 * 60_000, intervalMs: 5_000 });
    process.stderr.write(`[e2e] after fleetd's SIGKILL on ${m!.hostname}: ${outcome === "adopted" ? "lease resumed, the job adopted without running it" : "lease expired (restart slower than agent TTL + grace), the completed job unscheduled and not placed again"}\n`);
    for (const index of c.alive) {
      expect(await runsOf(c, index), `runs on machine ${index} after fleetd's restart`).toBe(before.get(index)! + (index === m!.index ? 1 : 0));
    }
    await c.fleetctl(["destroy", JOB]);
  });
}
