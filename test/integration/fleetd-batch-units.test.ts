/**
 * Batch units (`Type=oneshot`, issue 12) with a real etcd and several fleetds: a run that succeeds is
 * recorded on the unit and reported as completed, and it is not run again when its machine goes
 * away; a new body runs again. (The unit managers are in memory; real systemd is in test/e2e.)
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { fleetctl } from "./fleetctl-harness";
import { fleetFixture } from "../helpers/fleet-fixture";
import { submit, unitText, waitFor } from "../helpers/fleet-cluster";

const JOB = unitText({}, "/bin/echo done").replace("[Service]\n", "[Service]\nType=oneshot\n");

describe("batch units with a real etcd and several fleetds", () => {
  const fx = fleetFixture();

  it("records a successful oneshot as completed and never runs it again when its machine goes away", async () => {
    const cluster = fx.cluster();
    const dir = await mkdtemp(join(tmpdir(), "batch-units-"));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const socket = join(dir, "m1.sock");
    await Promise.all(["m1", "m2"].map((id) => cluster.add(id, id === "m1" ? { api: true, extra: { api_socket: socket } } : {})));
    await cluster.waitMachines();
    await submit(cluster, "job.service", JOB);
    const done = await waitFor("job.service completed", async () => (await cluster.registry.getUnit("job.service"))?.completed, { describe: () => cluster.describe() });
    // What the operator sees through the API: fleetctl's STATE column says completed.
    const files = await fleetctl(["list-unit-files", "--no-legend", "--fields", "unit,state"], { FLEETCTL_ENDPOINT: `unix://${socket}`, HOME: dir });
    expect(files).toMatchObject({ code: 0, stdout: expect.stringMatching(/^job\.service\s+completed\n$/) as unknown });
    // Reported as it is: launched, and systemd says it ended (inactive/dead, not failed).
    const unit = await waitFor("job.service state published", async () => {
      const u = await cluster.registry.getUnit("job.service");
      return u?.currentState === "launched" ? u : undefined;
    });
    expect(unit.machineID).toBe(done.machineID);
    const states = await cluster.registry.listStates({ unitName: "job.service" });
    expect(states[0]).toMatchObject({ systemdActiveState: "inactive", systemdSubState: "dead" });
    const ranOn = done.machineID;
    const other = ranOn === "m1" ? "m2" : "m1";
    expect(cluster.get(ranOn).manager.count("start", "job.service")).toBe(1);

    // Its machine goes: it is unscheduled and stays so (fleet would run it again elsewhere).
    await cluster.crash(ranOn);
    await waitFor("job.service unscheduled", async () => (await cluster.registry.getUnit("job.service"))?.machineID === undefined, { describe: () => cluster.describe() });
    await new Promise((r) => setTimeout(r, 3_000));
    expect(cluster.get(other).manager.count("start", "job.service")).toBe(0);
    expect((await cluster.registry.getUnit("job.service"))?.completed).toEqual(done);

    // A new body is a new job: it runs (on the machine left) and completes again.
    await cluster.registry.destroyUnit("job.service");
    await submit(cluster, "job.service", JOB.replace("/bin/echo done", "/bin/echo again"));
    const again = await waitFor("the new job.service completed", async () => (await cluster.registry.getUnit("job.service"))?.completed, { describe: () => cluster.describe() });
    expect(again.machineID).toBe(other);
    expect(cluster.get(other).manager.count("start", "job.service")).toBe(1);
  });

  it("does not record a failing oneshot", async () => {
    const cluster = fx.cluster();
    await cluster.add("m1");
    await cluster.waitMachines();
    await submit(cluster, "bad.service", unitText({}, "/bin/false").replace("[Service]\n", "[Service]\nType=oneshot\n"));
    await waitFor("bad.service failed", async () => (await cluster.registry.listStates({ unitName: "bad.service" }))[0]?.systemdActiveState === "failed", { describe: () => cluster.describe() });
    expect((await cluster.registry.getUnit("bad.service"))?.completed).toBeUndefined();
  });
});
