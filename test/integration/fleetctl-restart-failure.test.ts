/**
 * fleetctl restart of a unit that does not come back, through the real CLI against a real etcd and
 * fleetd API with in-memory unit managers: its agent reports it launched (it asked systemd to start
 * it), but systemd reports it failed; restart exited 0. It must fail, naming the state, the machine
 * and what to look at.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { etcdFixture } from "../helpers/fleet-fixture";
import { FleetctlEnv } from "./fleetctl-harness";

const M1 = "d1b2c3d4e5f60718293a4b5c6d7e8f91";
const LEGEND = "d1b2c3d4.../10.0.0.49";

describe("fleetctl restart of a unit that fails to come back", () => {
  const etcd = etcdFixture();
  let env: FleetctlEnv;

  beforeAll(async () => {
    env = await FleetctlEnv.start(etcd(), [M1]);
    await writeFile(join(env.dir, "svc.service"), "[Service]\nExecStart=/bin/sleep 1000\n");
    await writeFile(join(env.dir, "broken.service"), "[Service]\nExecStart=/bin/false\n");
    await writeFile(join(env.dir, "late.service"), "[Service]\nExecStart=/bin/sleep 1001\n");
  });
  afterAll(async () => {
    await env?.close();
  });

  it("restarts a healthy unit with exit 0, as before", async () => {
    expect((await env.run(["start", "svc.service"])).code).toBe(0);
    const r = await env.run(["restart", "svc.service"]);
    expect(r).toEqual({ code: 0, stdout: `Unit svc.service loaded on ${LEGEND}\nUnit svc.service launched on ${LEGEND}\n`, stderr: "" });
  });

  it("exits 1 when the unit ran before the restart and its new start fails (ExecStart exits 1)", async () => {
    const manager = env.cluster.instances.get(M1)!.manager;
    // The program the unit runs now exits 1 (as after a bad update on the host): the next start fails.
    manager.disk.set("svc.service", "[Service]\nExecStart=/bin/false\n");
    const r = await env.run(["restart", "svc.service"]);
    expect(r.stdout).toBe(`Unit svc.service loaded on ${LEGEND}\nUnit svc.service launched on ${LEGEND}\n`);
    expect(r.stderr).toBe(
      `Error restarting units: unit svc.service did not come back after the restart: systemd reports loaded/failed/failed on ${LEGEND} (it failed after its start); see "fleetctl status svc.service" and "fleetctl journal svc.service", fix the unit and start it again ("fleetctl start svc.service")\n`,
    );
    expect(r.code).toBe(1);
  });

  it("exits 1 when the unit is reported active after the restart and fails right after (its main process exits 1)", async () => {
    expect((await env.run(["start", "late.service"])).code).toBe(0);
    const manager = env.cluster.instances.get(M1)!.manager;
    // systemd's view of a Type=simple service whose process exits 1 just after it was forked: the
    // start succeeds (active/running), the failure comes 400 ms later, after fleetctl saw it active. Only the next start does this.
    const start = manager.start.bind(manager);
    const set = (manager as unknown as { set(name: string, state: object, later: boolean, delayMs?: number): void }).set.bind(manager);
    manager.start = async (name, signal) => {
      await start(name, signal);
      if (name === "late.service") set(name, { loadState: "loaded", activeState: "failed", subState: "failed" }, true, 400);
    };
    try {
      const r = await env.run(["restart", "late.service"]);
      expect(r.stderr).toBe(
        `Error restarting units: unit late.service did not come back after the restart: systemd reports loaded/failed/failed on ${LEGEND} (it was active, then failed); see "fleetctl status late.service" and "fleetctl journal late.service", fix the unit and start it again ("fleetctl start late.service")\n`,
      );
      expect(r.code).toBe(1);
    } finally {
      manager.start = start;
    }
  });

  it("exits 1 when a unit that had already failed fails again", async () => {
    // start waits until it is launched and says it failed.
    expect((await env.run(["start", "broken.service"])).stderr).toMatch(/unit broken\.service failed on machine/);
    const r = await env.run(["restart", "broken.service"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Error restarting units: unit broken\.service did not come back after the restart: systemd reports loaded\/failed\/failed on .*"fleetctl journal broken\.service"/);
  });

  it("--no-block does not wait for the new start, as before", async () => {
    const r = await env.run(["restart", "--no-block", "broken.service"]);
    expect(r).toEqual({ code: 0, stdout: `Unit broken.service loaded on ${LEGEND}\nTriggered unit broken.service restart\n`, stderr: "" });
  });
});
