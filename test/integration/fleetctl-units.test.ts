/**
 * fleetctl in-process against the real API, a real etcd and fleetd instances with in-memory unit
 * managers: lifecycle commands, blocking output, listings byte-for-byte, templates, --replace, errors.
 */
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unitHash, parseUnitFile } from "../../lib/unit";
import { waitFor } from "../helpers/fleet-cluster";
import { etcdFixture } from "../helpers/fleet-fixture";
import { FleetctlEnv } from "./fleetctl-harness";

const M1 = "a1b2c3d4e5f60718293a4b5c6d7e8f91";
const M2 = "b1b2c3d4e5f60718293a4b5c6d7e8f92";
// fleet-cluster's test config derives public_ip from the last character of the ID.
const IP1 = "10.0.0.49";
const IP2 = "10.0.0.50";

const HELLO = "[Unit]\nDescription=Hello World\n\n[Service]\nExecStart=/bin/sh -c \"while true; do echo Hello; sleep 1; done\"\n";

describe("fleetctl lifecycle against a real fleetd API", () => {
  const etcd = etcdFixture();
  let env: FleetctlEnv;

  beforeAll(async () => {
    env = await FleetctlEnv.start(etcd(), [M1, M2], { [M1]: { metadata: "role=web,zone=a" } });
    await writeFile(join(env.dir, "hello.service"), HELLO);
  });
  afterAll(async () => {
    await env?.close();
  });

  it("submits a local file and cats it back byte-for-byte", async () => {
    const r = await env.run(["submit", "hello.service"]);
    expect(r).toEqual({ code: 0, stdout: "Unit hello.service inactive\n", stderr: "" });
    const again = await env.run(["submit", "hello"]);
    expect(again).toEqual({ code: 0, stdout: "", stderr: "" });
    const cat = await env.run(["cat", "hello"]);
    expect(cat).toEqual({ code: 0, stdout: HELLO, stderr: "" });
  });

  it("lists unit files with fleet's columns through the tab writer", async () => {
    const hash = unitHash(parseUnitFile(HELLO)).slice(0, 7);
    const r = await env.run(["list-unit-files"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`UNIT\t\tHASH\tDSTATE\t\tSTATE\t\tTARGET\nhello.service\t${hash}\tinactive\tinactive\t-\n`);
    const noLegend = await env.run(["list-unit-files", "--no-legend", "--fields", "unit,global,desc"]);
    expect(noLegend.stdout).toBe("hello.service\tfalse\tHello World\n");
  });

  it("starts a unit, waiting until it is launched, and lists it", async () => {
    const r = await env.run(["start", "hello.service"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Unit hello\.service launched on (a1b2c3d4\.\.\.\/10\.0\.0\.49|b1b2c3d4\.\.\.\/10\.0\.0\.50)\n$/);
    const machine = r.stdout.includes("a1b2c3d4") ? M1 : M2;
    const legend = machine === M1 ? `a1b2c3d4.../${IP1}` : `b1b2c3d4.../${IP2}`;
    expect(env.cluster.runningOn("hello.service")).toEqual([machine]);
    const list = await env.run(["list-units"]);
    expect(list.stdout).toBe(`UNIT\t\tMACHINE\t\t\tACTIVE\tSUB\nhello.service\t${legend}\tactive\trunning\n`);
    const full = await env.run(["list-units", "-l", "--fields", "unit,load,machine"]);
    expect(full.stdout).toBe(`UNIT\t\tLOAD\tMACHINE\nhello.service\tloaded\t${machine}/${machine === M1 ? IP1 : IP2}\n`);
    const json = await env.run(["list-units", "--output", "json"]);
    expect(JSON.parse(json.stdout)).toEqual([{ unit: "hello.service", machine: `${machine}/${machine === M1 ? IP1 : IP2}`, active: "active", sub: "running" }]);
  });

  it("lists machines sorted by ID with metadata", async () => {
    const r = await env.run(["list-machines"]);
    expect(r.stdout).toBe(`MACHINE\t\tIP\t\tMETADATA\na1b2c3d4...\t${IP1}\trole=web,zone=a\nb1b2c3d4...\t${IP2}\t-\n`);
    const full = await env.run(["list-machines", "--full", "--no-legend", "--fields=machine"]);
    expect(full.stdout).toBe(`${M1}\n${M2}\n`);
    // fleet's spelling of -l (a long flag there), in scripts written for it: "unknown option '--l'", exit 1.
    for (const command of ["list-machines", "list-units", "list-unit-files"]) {
      expect(await env.run([command, "--l"])).toEqual(await env.run([command, "--full"]));
    }
  });

  it("stops, unloads and destroys with fleet's messages", async () => {
    const stop = await env.run(["stop", "hello"]);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toMatch(/^Unit hello\.service loaded on \w{8}\.\.\.\/10\.0\.0\.\d+\n$/);
    expect(stop.stderr).toBe("Successfully stopped units [hello.service].\n");
    expect(env.cluster.runningOn("hello.service")).toEqual([]);
    const unload = await env.run(["unload", "hello"]);
    expect(unload).toEqual({ code: 0, stdout: "Unit hello.service inactive\n", stderr: "Successfully unloaded units [hello.service].\n" });
    const stopInactive = await env.run(["stop", "hello"]);
    expect(stopInactive).toEqual({ code: 1, stdout: "", stderr: "Unable to stop unit hello.service in state inactive\n" });
    const destroy = await env.run(["destroy", "hello.service", "missing.service"]);
    expect(destroy).toEqual({ code: 0, stdout: "Destroyed hello.service\n", stderr: "" });
    expect(await env.run(["destroy", "hello.service"])).toEqual({
      code: 1,
      stdout: "",
      stderr: 'Units not found in registry: check the names with "fleetctl list-unit-files"\n',
    });
    expect(await env.run(["cat", "hello"])).toEqual({ code: 1, stdout: "", stderr: "Unit hello.service not found\n" });
  });

  it("creates instances from a local template beside the argument without submitting the template", async () => {
    await mkdir(join(env.dir, "units"), { recursive: true });
    await writeFile(join(env.dir, "units", "web@.service"), "[Service]\nExecStart=/bin/echo %i\n");
    const r = await env.run(["load", "--no-block", "units/web@1.service", "units/web@2.service"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("Triggered unit web@1.service load\nTriggered unit web@2.service load\n");
    const files = await env.run(["list-unit-files", "--no-legend", "--fields=unit,hash"]);
    const hash = unitHash(parseUnitFile("[Service]\nExecStart=/bin/echo %i\n")).slice(0, 7);
    expect(files.stdout).toBe(`web@1.service\t${hash}\nweb@2.service\t${hash}\n`);
  });

  it("starts every instance of a template, creating web@1..N with --instances", async () => {
    await env.run(["submit", "units/web@.service"]);
    const r = await env.run(["start", "web@.service", "--instances", "3"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.filter((l) => /^Unit web@[123]\.service inactive$/.test(l))).toHaveLength(1); // web@3 is new
    expect(lines.filter((l) => /^Unit web@[123]\.service launched on /.test(l))).toHaveLength(3);
    for (const n of [1, 2, 3]) expect(env.cluster.runningOn(`web@${n}.service`)).toHaveLength(1);
    const template = await env.run(["list-unit-files", "--no-legend", "--fields=unit,dstate"]);
    expect(template.stdout).toContain("web@.service\tinactive\n");
  });

  it("stops, unloads and destroys every instance of a template, as start does; none found exits 1", async () => {
    // Relies on the previous test: web@1..3 launched from the registered template web@.service.
    const stop = await env.run(["stop", "web@.service"]);
    expect(stop.code).toBe(0);
    expect(stop.stdout.trim().split("\n").filter((l) => /^Unit web@[123]\.service loaded on /.test(l))).toHaveLength(3);
    for (const n of [1, 2, 3]) expect(env.cluster.runningOn(`web@${n}.service`)).toEqual([]);
    const unload = await env.run(["unload", "web@.service"]);
    expect(unload.code).toBe(0);
    expect(unload.stdout).toBe("Unit web@1.service inactive\nUnit web@2.service inactive\nUnit web@3.service inactive\n");
    const destroy = await env.run(["destroy", "web@.service"]);
    expect(destroy.code).toBe(0);
    expect(destroy.stdout.trim().split("\n").sort()).toEqual(["Destroyed web@.service", "Destroyed web@1.service", "Destroyed web@2.service", "Destroyed web@3.service"]);
    const none = await env.run(["stop", "web@.service"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("Units not found in registry (no instances of web@.service either)");
  });

  it("handles many units in one command (listings instead of one request per unit)", async () => {
    const names = Array.from({ length: 40 }, (_, i) => `units/batch@${i + 1}.service`);
    await writeFile(join(env.dir, "units", "batch@.service"), "[Service]\nExecStart=/bin/sleep infinity\n");
    const start = await env.run(["start", ...names]);
    expect(start.stderr).toBe("");
    expect(start.code).toBe(0);
    const lines = start.stdout.trim().split("\n");
    expect(lines.filter((l) => / inactive$/.test(l))).toHaveLength(40);
    expect(lines.filter((l) => /^Unit batch@\d+\.service launched on \w{8}\.\.\.\/10\.0\.0\.(49|50)$/.test(l))).toHaveLength(40);
    for (let i = 1; i <= 40; i++) expect(env.cluster.runningOn(`batch@${i}.service`)).toHaveLength(1);
    const stop = await env.run(["stop", ...names]);
    expect(stop.code).toBe(0);
    expect(stop.stdout.trim().split("\n").filter((l) => / loaded on /.test(l))).toHaveLength(40);
    const destroy = await env.run(["destroy", ...names]);
    expect(destroy.stdout.trim().split("\n")).toHaveLength(40);
    await waitFor("batch units gone", () => Array.from({ length: 40 }, (_, i) => env.cluster.runningOn(`batch@${i + 1}.service`).length).every((n) => n === 0));
  });

  it("triggers global units without waiting and lists them once per machine", async () => {
    await writeFile(join(env.dir, "everywhere.service"), "[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\n");
    const start = await env.run(["start", "everywhere.service"]);
    expect(start).toEqual({ code: 0, stdout: "Unit everywhere.service inactive\nTriggered global unit everywhere.service start\n", stderr: "" });
    await waitFor("global unit on both machines", () => env.cluster.runningOn("everywhere.service").length === 2);
    const files = await env.run(["list-unit-files", "--no-legend", "--fields", "unit,dstate,state,target,global"]);
    const row = files.stdout.split("\n").find((l) => l.startsWith("everywhere.service"));
    expect(row?.split(/\t+/)).toEqual(["everywhere.service", "launched", "-", "global", "true"]);
    const units = await waitFor("two states", async () => {
      const r = await env.run(["list-units", "--no-legend", "--fields", "unit,machine"]);
      return r.stdout.split("\n").filter((l) => l.startsWith("everywhere.service")).length === 2 ? r.stdout : undefined;
    });
    const rows = units.split("\n").filter((l) => l.startsWith("everywhere.service")).map((l) => l.split(/\t+/));
    expect(rows).toEqual([
      ["everywhere.service", `a1b2c3d4.../${IP1}`],
      ["everywhere.service", `b1b2c3d4.../${IP2}`],
    ]);
    const unload = await env.run(["unload", "everywhere"]);
    expect(unload).toEqual({ code: 0, stdout: "Triggered global unit everywhere.service unload\n", stderr: "Successfully unloaded units [].\n" });
    await waitFor("global unit gone", () => env.cluster.runningOn("everywhere.service").length === 0);
  });

  it("refuses to start a template that has no instances and says how", async () => {
    await writeFile(join(env.dir, "db@.service"), "[Service]\nExecStart=/bin/true\n");
    const r = await env.run(["start", "db@.service"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "Cannot start template db@.service: it has no instances in the cluster; use --instances N to create db@1.service … db@N.service, or start instances by name\n",
    );
    // Refused before anything is written (it submitted the local template first: "Unit db@.service inactive").
    expect(r.stdout).toBe("");
    expect(await env.cluster.registry.getUnit("db@.service")).toBeUndefined();
  });

  it("status and journal of a template say it never runs itself and what to ask about instead", async () => {
    expect((await env.run(["submit", "db@.service"])).code).toBe(0);
    // fleet's words alone ("does not appear to be loaded") read as if the template should run.
    expect(await env.run(["status", "db@.service"])).toEqual({
      code: 1,
      stdout: "",
      stderr: 'Unit db@.service does not appear to be loaded. It is a template, which never runs itself; ask about an instance, e.g. "fleetctl status db@1.service" ("fleetctl list-units" lists them).\n',
    });
    expect(await env.run(["journal", "db@.service"])).toEqual({
      code: 1,
      stdout: "",
      stderr: 'Unit db@.service does not appear to be running. It is a template, which never runs itself; ask about an instance, e.g. "fleetctl journal db@1.service" ("fleetctl list-units" lists them).\n',
    });
    expect((await env.run(["destroy", "db@.service"])).code).toBe(0);
  });

  it("refuses to load a template before writing anything, and says what to load instead", async () => {
    await writeFile(join(env.dir, "cache@.service"), "[Service]\nExecStart=/bin/true\n");
    // It submitted the local template, then printed the API's "Error: cannot activate template" (HTTP 400).
    expect(await env.run(["load", "cache@.service"])).toEqual({
      code: 1,
      stdout: "",
      stderr: 'Cannot load template cache@.service: only its instances can be loaded; load instances by name ("fleetctl load cache@1.service"), or start every instance with "fleetctl start cache@.service"\n',
    });
    expect(await env.cluster.registry.getUnit("cache@.service")).toBeUndefined();
  });

  it("checks --instances, and its dry run says what would be submitted and what would fail", async () => {
    for (const bad of ["-1", "0", "20000", "two"]) {
      expect((await env.run(["start", "--instances", bad, "db@.service"])).stderr).toBe(
        `error: option '--instances <n>' argument '${bad}' is invalid. "${bad}" is not an instance count; use a whole number from 1 to 10000\n`,
      );
    }
    await writeFile(join(env.dir, "solo.service"), "[Service]\nExecStart=/bin/true\n");
    for (const args of [["--instances", "3", "solo.service"], ["--dry-run", "--instances", "3", "solo.service"]]) {
      expect(await env.run(["start", ...args])).toEqual({ code: 1, stdout: "", stderr: "--instances applies to a template argument (start --instances 3 web@.service); none of solo.service is one\n" });
    }
    expect(await env.cluster.registry.getUnit("solo.service")).toBeUndefined();
    // The dry run used to promise instances of a template that exists nowhere; the real start then failed.
    expect(await env.run(["start", "--dry-run", "--instances", "2", "nope@.service"])).toEqual({
      code: 1,
      stdout: "",
      stderr: "Cannot create nope@1.service: no unit file nope@1.service here and no template nope@.service in the cluster or here; start would fail\n",
    });
    // A local template not in the cluster: submitted first, and said so.
    await writeFile(join(env.dir, "dry@.service"), "[Service]\nExecStart=/bin/true\n");
    expect(await env.run(["start", "--dry-run", "--instances", "2", "dry@.service"])).toEqual({
      code: 0,
      stdout: "Would submit dry@.service from dry@.service\nWould create dry@1.service from its template dry@.service and start it\nWould create dry@2.service from its template dry@.service and start it\nDry run: 3 unit(s) would change, nothing changed\n",
      stderr: "",
    });
    expect(await env.cluster.registry.getUnit("dry@.service")).toBeUndefined();
  });

  it("warns when the local file differs, and replaces the unit with --replace", async () => {
    await writeFile(join(env.dir, "app.service"), "[Service]\nExecStart=/bin/sleep 1\n");
    expect((await env.run(["start", "app.service"])).code).toBe(0);
    await writeFile(join(env.dir, "app.service"), "[Service]\nExecStart=/bin/sleep 2\n");
    const warn = await env.run(["start", "app.service"]);
    expect(warn).toEqual({ code: 0, stdout: "", stderr: "WARNING: Unit app.service in registry differs from local unit file app.service. Add --replace to override.\n" });
    const replaced = await env.run(["start", "--replace", "app.service"]);
    expect(replaced.stderr).toBe("");
    expect(replaced.stdout).toMatch(/^Unit app\.service inactive\nUnit app\.service launched on .*\n$/);
    expect(await env.run(["cat", "app"])).toMatchObject({ stdout: "[Service]\nExecStart=/bin/sleep 2\n" });
    const same = await env.run(["start", "--replace", "app.service"]);
    expect(same.stdout).toBe("Found same Unit(app.service) in Registry, nothing to do\n");
    await waitFor("one copy of app.service", () => env.cluster.runningOn("app.service").length === 1);
  });

  it("replaces an instance from its changed local template with --replace, as the warning says, and the dry run says so", async () => {
    await mkdir(join(env.dir, "tpl"), { recursive: true });
    await writeFile(join(env.dir, "tpl", "api@.service"), "[Service]\nExecStart=/bin/sleep 1\n");
    expect((await env.run(["submit", "tpl/api@.service"])).code).toBe(0);
    expect((await env.run(["start", "tpl/api@1.service"])).code).toBe(0);
    await writeFile(join(env.dir, "tpl", "api@.service"), "[Service]\nExecStart=/bin/sleep 2\n");
    expect(await env.run(["start", "tpl/api@1.service"])).toEqual({
      code: 0,
      stdout: "",
      stderr: "WARNING: Unit api@1.service in registry differs from local template unit file tpl/api@.service. Add --replace to override.\n",
    });
    // The dry run said "api@1.service is already launched": it ignored --replace.
    expect(await env.run(["start", "--dry-run", "--replace", "tpl/api@1.service"])).toEqual({
      code: 0,
      stdout: "Would replace api@1.service with tpl/api@.service (its body differs: it is stopped and started again with the new one)\nDry run: 1 unit(s) would change, nothing changed\n",
      stderr: "",
    });
    // It compared the registry's unchanged template instead: "Found same Unit(api@1.service) in Registry, nothing to do".
    const replaced = await env.run(["start", "--replace", "tpl/api@1.service"]);
    expect(replaced.stderr).toBe("");
    expect(replaced.stdout).toMatch(/^Unit api@1\.service inactive\nUnit api@1\.service launched on .*\n$/);
    expect((await env.run(["cat", "api@1"])).stdout).toBe("[Service]\nExecStart=/bin/sleep 2\n");
    expect((await env.run(["destroy", "api@.service"])).code).toBe(0);
  });

  it("restarts a launched unit (stop, then start)", async () => {
    const r = await env.run(["restart", "app"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Unit app\.service loaded on .*\nUnit app\.service launched on .*\n$/);
  });

  it("restart --no-block really stops and starts the unit", async () => {
    const where = (await env.cluster.registry.getUnit("app.service"))!.machineID!;
    const manager = env.cluster.instances.get(where)!.manager;
    const [stops, starts] = [manager.count("stop", "app.service"), manager.count("start", "app.service")];
    const r = await env.run(["restart", "--no-block", "app"]);
    // It set loaded and launched at once and printed "Triggered unit app.service restart": the agent saw no change.
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Unit app\.service loaded on .*\nTriggered unit app\.service restart\n$/);
    await waitFor("app.service started again", () => manager.count("start", "app.service") > starts, { timeoutMs: 10_000 });
    expect(manager.count("stop", "app.service")).toBe(stops + 1);
  });

  it("times out a blocking start after --block-attempts and exits 1", async () => {
    await writeFile(join(env.dir, "nowhere.service"), "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nMachineID=ffffffffffffffffffffffffffffffff\n");
    const r = await env.run(["start", "--block-attempts=1", "nowhere.service"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("Unit nowhere.service inactive\n");
    expect(r.stderr).toBe(
      "Error waiting for units: timed out waiting for unit nowhere.service to report state launched: it is not scheduled on any machine: " +
        "no machine can run it (2 machines): 2 excluded by MachineID. Start fleetd on the machine it requires (MachineID), " +
        'or change the unit\'s [X-Fleet] section and run "fleetctl start --replace nowhere.service". Per-machine reasons: "fleetctl status nowhere.service"\n' +
        "Error waiting for unit states, exit status: 1\n",
    );
  });

  it("journal of a unit the engine cannot place says why, as status does", async () => {
    // nowhere.service from the test before: desired launched, no machine (MachineID of none).
    const status = await env.run(["status", "nowhere.service"]);
    expect(status.stderr).toMatch(/^Unit nowhere\.service is not scheduled on any machine: no machine can run it \(2 machines\): 2 excluded by MachineID\n/);
    // It said "Unit nowhere.service does not appear to be running."
    expect(await env.run(["journal", "nowhere.service"])).toEqual({ code: 1, stdout: "", stderr: status.stderr });
  });

  it("refuses to stop a unit that waits for a machine, and says what keeps it from starting", async () => {
    // fleet's message alone read as if the unit were down for good; it starts once a machine can take it.
    expect(await env.run(["stop", "nowhere.service"])).toEqual({
      code: 1,
      stdout: "",
      stderr: 'Unable to stop unit nowhere.service in state inactive: it is not scheduled on any machine yet and starts once placed; "fleetctl unload nowhere.service" keeps it from being placed\n',
    });
  });

  it("returns from a blocking start of a oneshot once it completed (systemd reports it inactive/dead again)", async () => {
    await writeFile(join(env.dir, "once.service"), "[Service]\nType=oneshot\nExecStart=/bin/true\n");
    // Bounded, so that the wait that never ended before fails here instead of hanging.
    const r = await env.run(["start", "--block-attempts=5", "once.service"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Unit once\.service inactive\nUnit once\.service launched on \w{8}\.\.\.\/10\.0\.0\.(49|50)\n$/);
    expect((await env.cluster.registry.getUnit("once.service"))?.completed).toBeDefined();
    expect((await env.run(["destroy", "once.service"])).code).toBe(0);
  });

  it("says once why a unit it waits for without end cannot be placed (the wait went on silently)", async () => {
    await writeFile(join(env.dir, "nowhere2.service"), "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nMachineID=ffffffffffffffffffffffffffffffff\n");
    const ctrlC = new AbortController();
    const waiting = env.run(["start", "nowhere2.service"], { signal: ctrlC.signal });
    await waitFor("the engine recording why nowhere2.service has no machine", async () => (await env.cluster.registry.getUnit("nowhere2.service"))?.unscheduledReason !== undefined, { timeoutMs: 15_000 });
    await new Promise((r) => setTimeout(r, 1_000)); // a few of the wait's polls (at most 250 ms apart)
    ctrlC.abort(new Error("interrupted"));
    const r = await waiting;
    expect(r.code).toBe(130);
    expect(r.stderr).toBe(
      "Still waiting: nowhere2.service it is not scheduled on any machine: no machine can run it (2 machines): 2 excluded by MachineID. Start fleetd on the machine it requires (MachineID), " +
        'or change the unit\'s [X-Fleet] section and run "fleetctl start --replace nowhere2.service". Per-machine reasons: "fleetctl status nowhere2.service"\n',
    );
  });

  it("rejects invalid units before calling the API and reports unknown units", async () => {
    await writeFile(join(env.dir, "bad.service"), "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nGlobal=true\nMachineOf=a.service\n");
    const bad = await env.run(["submit", "bad.service"]);
    expect(bad).toEqual({ code: 1, stdout: "", stderr: "Error creating units: error creating Unit(bad.service): Global cannot be used with Peers\n" });
    const missing = await env.run(["start", "ghost.service"]);
    expect(missing).toEqual({ code: 1, stdout: "", stderr: "Error creating units: unable to find Unit(ghost.service) in Registry or on filesystem\n" });
    const noTemplate = await env.run(["start", "ghost@1.service"]);
    expect(noTemplate.stderr).toBe("Error creating units: unable to find template Unit(ghost@.service) in Registry or on filesystem\n");
    expect(await env.run(["start"])).toEqual({ code: 0, stdout: "", stderr: "No units given\n" });
    // An empty file among others: refused with its name before any unit is written (the API refused
    // it with fleet's "options field empty" after writing the ones before it).
    await writeFile(join(env.dir, "fine.service"), "[Service]\nExecStart=/bin/true\n");
    await writeFile(join(env.dir, "empty.service"), "");
    expect(await env.run(["start", "fine.service", "empty.service"])).toEqual({
      code: 1,
      stdout: "",
      stderr: "Error creating units: failed getting Unit(empty.service) from file: it has no [Section] and no Key=Value lines (an empty unit file)\n",
    });
    expect(await env.cluster.registry.getUnit("fine.service")).toBeUndefined();
  });

  it("says a name or path is too long instead of the file system's ENAMETOOLONG", async () => {
    const long = `${"x".repeat(300)}.service`;
    const name = await env.run(["start", long]);
    expect(name).toEqual({ code: 1, stdout: "", stderr: `Error creating units: Invalid unit name "${"x".repeat(31)}…${"x".repeat(24)}.service": it is 308 bytes long; unit names are limited to 256 bytes\n` });
    expect((await env.run(["submit", long])).stderr).toBe(name.stderr);
    // A name systemd accepts (256 bytes) in a directory whose name no file system accepts.
    const path = `${"d".repeat(256)}/${"y".repeat(248)}.service`;
    const r = await env.run(["submit", path]);
    expect(r).toEqual({ code: 1, stdout: "", stderr: `Error creating units: Cannot look for unit file "${"d".repeat(31)}…${"y".repeat(24)}.service": its path is too long for the file system (at most 255 bytes per file or directory name and 4095 bytes in all); use a shorter path\n` });
  });

  it("checks --fields like fleet", async () => {
    expect(await env.run(["list-units", "--fields", "unit,bogus"])).toEqual({ code: 1, stdout: "", stderr: 'Invalid key in output format: "bogus"\n' });
    expect(await env.run(["list-machines", "--fields", ""])).toEqual({ code: 1, stdout: "", stderr: "Must define output format\n" });
  });

  it("exits non-zero on a bad flag or an unknown command, unlike fleet", async () => {
    const flag = await env.run(["list-units", "--bogus"]);
    expect(flag.code).toBe(1);
    expect(flag.stderr).toContain("unknown option '--bogus'");
    const cmd = await env.run(["frobnicate"]);
    expect(cmd.code).toBe(1);
    expect(cmd.stderr).toContain('Unknown command "frobnicate"');
  });

  it("prints fleet's hint when the API cannot be reached", async () => {
    const r = await env.run(["list-units"], { env: { FLEETCTL_ENDPOINT: `unix://${join(env.dir, "nothing.sock")}` } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Error retrieving list of units from fleet API: GET \/fleet\/v1\/state\?pageSize=65535 via unix:\/\/.*nothing\.sock failed: connect ENOENT .*\nPossible issues:\n/);
    // Commands that look units up said only "Error: GET /fleet/v1/units/… failed", not what they were doing.
    for (const [command, before] of [["stop", ""], ["status", ""], ["start", "Error creating units: "]] as const) {
      const lookup = await env.run([command, "hello"], { env: { FLEETCTL_ENDPOINT: `unix://${join(env.dir, "nothing.sock")}` } });
      expect(lookup.code).toBe(1);
      expect(lookup.stderr).toMatch(
        new RegExp(`^${before}Error retrieving unit hello\\.service from fleet API: GET /fleet/v1/units/hello\\.service via unix://.*nothing\\.sock failed: connect ENOENT .*\nPossible issues:\n`),
      );
    }
    const flagWins = await env.run(["--endpoint", `unix://${env.socket}`, "list-machines", "--no-legend", "--fields=ip"], {
      env: { FLEETCTL_ENDPOINT: "unix:///nonexistent.sock" },
    });
    expect(flagWins).toEqual({ code: 0, stdout: `${IP1}\n${IP2}\n`, stderr: "" });
  });

  it("says how to pass fleetd's api_token when a TCP listener refuses fleetctl (HTTP 401)", async () => {
    const tcp = await env.api.listen({ kind: "tcp", host: "127.0.0.1", port: 0, token: "s3cret" });
    const denied = await env.run(["--endpoint", tcp.address, "list-machines"]);
    expect(denied).toEqual({
      code: 1,
      stdout: "",
      stderr:
        'Error retrieving list of active machines from fleet API: missing or wrong credentials: send "Authorization: Bearer <api_token>" (see fleetd\'s api_token option) (HTTP 401)\n' +
        "fleetctl sends the token given with --api-token or FLEETCTL_API_TOKEN: set either to the api_token in fleetd's configuration\n",
    });
    expect((await env.run(["--endpoint", tcp.address, "list-machines", "--no-legend", "--fields=ip"], { env: { FLEETCTL_API_TOKEN: "s3cret" } })).stdout).toBe(`${IP1}\n${IP2}\n`);
  });

  it("gives up on a silent API after --request-timeout (no limit by default, like fleet's API client)", async () => {
    const path = join(env.dir, "silent.sock");
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(path, resolve));
    try {
      const r = await env.run(["--request-timeout", "0.3", "list-machines"], { env: { FLEETCTL_ENDPOINT: `unix://${path}` } });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^Error retrieving list of active machines from fleet API: GET \/fleet\/v1\/machines\?pageSize=65535 via unix:\/\/.*silent\.sock failed: no answer within 300 ms \(raise or set --request-timeout, in seconds; 0 = no limit\)\nPossible issues:/);
    } finally {
      silent.close();
    }
  });

  it("prints the version", async () => {
    expect(await env.run(["version"])).toEqual({ code: 0, stdout: "fleetctl version 0.1.0\n", stderr: "" });
    expect(await env.run(["--version"])).toEqual({ code: 0, stdout: "fleetctl version 0.1.0\n", stderr: "" });
    expect((await readFile(join(env.dir, "hello.service"), "utf8")).length).toBeGreaterThan(0);
  });
});
