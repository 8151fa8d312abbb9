/**
 * scale, rolling deploy, history, rollback: fleetctl in-process against the real API, a real etcd and
 * three fleetds (engine + agent + deploy controller each) with in-memory unit managers whose services
 * take 400 ms to start, so a restart is a real window of unavailability that a sampler can see.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiClient } from "../../lib/api/client";
import { summarizeDeployment } from "../../lib/api/deploy-types";
import { parseUnitFile, unitHash } from "../../lib/unit";
import { waitFor } from "../helpers/fleet-cluster";
import { etcdFixture } from "../helpers/fleet-fixture";
import { socketRequest } from "../helpers/socket-request";
import { FleetctlEnv } from "./fleetctl-harness";

const M1 = "d1b2c3d4e5f60718293a4b5c6d7e8f91";
const M2 = "d2b2c3d4e5f60718293a4b5c6d7e8f92";
const M3 = "d3b2c3d4e5f60718293a4b5c6d7e8f93";
const SLOW = { startDelayMs: 400 };

const APP = "[Unit]\nDescription=app %i\n\n[Service]\nEnvironment=image=localhost/app:1\nExecStart=/bin/sleep infinity ${image}\n";
const BAD = "[Unit]\nDescription=app %i\n\n[Service]\nEnvironment=image=localhost/app:1\nExecStart=/bin/false ${image}\n";
const instances = (n: number): string[] => Array.from({ length: n }, (_, i) => `app@${i + 1}.service`);

describe("fleetctl scale / deploy / history / rollback against real fleetds", () => {
  const etcd = etcdFixture();
  let env: FleetctlEnv;

  beforeAll(async () => {
    env = await FleetctlEnv.start(etcd(), [M1, M2, M3], { [M1]: SLOW, [M2]: SLOW, [M3]: SLOW });
    await writeFile(join(env.dir, "app@.service"), APP);
    await writeFile(join(env.dir, "hello.service"), "[Service]\nExecStart=/bin/sleep infinity\n");
    expect((await env.run(["submit", "hello.service"])).code).toBe(0);
  });
  afterAll(async () => {
    await env?.close();
  });

  /** Instances of app@ that run on some machine, with the hash their machine loaded. */
  const running = (): Map<string, string> => {
    const out = new Map<string, string>();
    for (const i of env.cluster.instances.values()) {
      for (const n of i.manager.running()) if (n.startsWith("app@")) out.set(n, unitHash(parseUnitFile(i.manager.disk.get(n) ?? "")));
    }
    return out;
  };

  it("scales a template up and down (highest numbers first), blocking like start, with a dry run that changes nothing", async () => {
    expect((await env.run(["submit", "app@.service"])).code).toBe(0);
    const up = await env.run(["scale", "app@.service=3"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect(up.stdout).toContain("Created app@1.service\nCreated app@2.service\nCreated app@3.service\n");
    expect(up.stdout).toContain("Scaled app@.service from 0 to 3 instances\n");
    expect([...running().keys()].sort()).toEqual(instances(3));

    const plan = await env.run(["scale", "--dry-run", "app@.service=5"]);
    expect(plan).toEqual({ code: 0, stdout: "Would create app@4.service\nWould create app@5.service\nWould scale app@.service from 3 to 5 instances (dry run: nothing changed)\n", stderr: "" });
    expect((await env.cluster.registry.listUnits()).filter((u) => u.name.startsWith("app@")).length).toBe(4);
    const startPlan = await env.run(["start", "--dry-run", "--instances", "4", "app@.service", "hello.service"]);
    expect(startPlan).toEqual({
      code: 0,
      stdout:
        "app@1.service is already launched\napp@2.service is already launched\napp@3.service is already launched\nWould create app@4.service from its template and start it\nWould start hello.service (desired state inactive → launched)\nDry run: 2 unit(s) would change, nothing changed\n",
      stderr: "",
    });
    expect((await env.cluster.registry.getUnit("hello.service"))?.desiredState).toBe("inactive");

    expect((await env.run(["scale", "app@.service=5"])).code).toBe(0);
    expect([...running().keys()].sort()).toEqual(instances(5));
    const down = await env.run(["scale", "app@.service=2"]);
    expect(down.code).toBe(0);
    expect(down.stdout).toBe("Destroyed app@5.service\nDestroyed app@4.service\nDestroyed app@3.service\nScaled app@.service from 5 to 2 instances\n");
    // Blocking: the destroyed instances are already stopped on their machines.
    expect([...running().keys()].sort()).toEqual(instances(2));
  });

  it("prints many created or destroyed instances as one line of runs, and the wait as a count, not a line each", async () => {
    await writeFile(join(env.dir, "big@.service"), APP.replace("app %i", "big %i"));
    expect((await env.run(["submit", "big@.service"])).code).toBe(0);
    const up = await env.run(["scale", "big@.service=30"]);
    expect(up.code).toBe(0);
    expect(up.stdout).toBe("Created 30 instances: big@{1..30}.service\nAll 30 units launched\nScaled big@.service from 0 to 30 instances\n");
    // Progress on stderr only while the count grows for more than 2 s.
    for (const line of up.stderr.split("\n").filter(Boolean)) expect(line).toMatch(/^\d+ of 30 units launched$/);
    const bigRunning = (): number => [...env.cluster.instances.values()].reduce((n, i) => n + i.manager.running().filter((u) => u.startsWith("big@")).length, 0);
    expect(bigRunning()).toBe(30);

    const down = await env.run(["scale", "big@.service=3"]);
    expect(down).toEqual({ code: 0, stdout: "Destroyed 27 instances: big@{4..30}.service\nScaled big@.service from 30 to 3 instances\n", stderr: "" });
    // Blocking: the 27 are already stopped on their machines.
    expect(bigRunning()).toBe(3);
    expect((await env.run(["scale", "big@.service=0"])).code).toBe(0);
  });

  it("refuses bad input with clear errors", async () => {
    expect(await env.run(["scale", "hello.service=3"])).toEqual({
      code: 1,
      stdout: "",
      stderr: "Cannot scale hello.service: it is not a template; scale works on templates such as web@.service (instances web@1.service, web@2.service …)\n",
    });
    expect((await env.run(["scale", "app@.service"])).stderr).toBe('Invalid scale argument "app@.service": use TEMPLATE=COUNT, e.g. web@.service=5\n');
    expect((await env.run(["scale", "nope@.service=2"])).stderr).toBe(
      "Error scaling nope@.service: cannot scale nope@.service: the template is not in the cluster; submit it first (fleetctl submit nope@.service) (HTTP 404)\n",
    );
    expect((await env.run(["deploy", "app@.service", "--set", "image=x", "--max-unavailable", "150%"])).stderr).toBe(
      'Error starting the deploy of app@.service: invalid max-unavailable "150%": a percentage must be from 0% to 100% (HTTP 400)\n',
    );
    expect((await env.run(["deploy", "app@.service", "--set", "image=x", "--max-unavailable", "0"])).stderr).toBe(
      "Error starting the deploy of app@.service: cannot deploy app@.service: max-unavailable 0 and max-surge 0 allow no instance to change with 2 instance(s); raise --max-unavailable or --max-surge to at least 1 (HTTP 400)\n",
    );
    // A plain unit: only a global one can be rolled (the API knows which).
    expect((await env.run(["deploy", "--set", "image=x", "hello.service"])).stderr).toBe(
      "Error starting the deploy of hello.service: cannot deploy hello.service: it is neither a template nor a global unit; deploy rolls the instances of a template (web@.service) or the machines of a global unit ([X-Fleet] Global=true); to change a single unit, use fleetctl start --replace (HTTP 400)\n",
    );
    expect((await env.run(["deploy", "--deadline", "25h", "--set", "image=x", "app@.service"])).stderr).toBe(
      "error: option '--deadline <duration>' argument '25h' is invalid. \"25h\" is out of range; use from 1s to 24h\n",
    );
    // The API refuses what it would misread: a dryRun that is not a boolean, an unknown (mistyped) field, a count JSON cannot hold.
    const units = async (): Promise<number> => (await env.cluster.registry.listUnits()).length;
    const before = await units();
    const scaleApi = async (body: string): Promise<[number, string]> => {
      const r = await socketRequest(env.socket, "POST", "/fleet/v1/scale/app@.service", body);
      return [r.status, (JSON.parse(r.body) as { error: { message: string } }).error.message];
    };
    expect(await scaleApi('{"instances":9,"dryRun":"true"}')).toEqual([400, 'field dryRun must be true or false, not "true"']);
    expect(await scaleApi('{"instances":9,"dryrun":true}')).toEqual([400, 'unknown field "dryrun"; this request takes instances, dryRun']);
    expect(await scaleApi('{"instances":1e400}')).toEqual([400, "field instances must be a number (the instance count wanted for app@.service)"]);
    expect(await units()).toBe(before);
    // An empty body: refused by fleetctl with the file named, and by the API for any client (it was rolled out to every instance).
    await mkdir(join(env.dir, "empty"), { recursive: true });
    await writeFile(join(env.dir, "empty", "app@.service"), "");
    expect((await env.run(["deploy", "empty/app@.service"])).stderr).toBe("failed getting Unit(empty/app@.service) from file: it has no [Section] and no Key=Value lines (an empty unit file)\n");
    const empty = await socketRequest(env.socket, "POST", "/fleet/v1/deployments/app@.service", JSON.stringify({ options: [] }));
    expect([empty.status, (JSON.parse(empty.body) as { error: { message: string } }).error.message]).toEqual([
      400,
      "cannot deploy app@.service: the new body is empty (no [Section] and Key=Value lines); give the template's unit file",
    ]);
    expect((await env.run(["deploy", "app@.service"])).stderr).toBe(
      "Error starting the deploy of app@.service: nothing to deploy: app@.service and its 2 instance(s) already have this body (hash " +
        unitHash(parseUnitFile(APP)).slice(0, 7) +
        ") (HTTP 400)\n",
    );
  });

  it("rolls 10 instances with --set and max-unavailable 25 %: never more than 2 down (sampled every 100 ms), revision 2 everywhere", async () => {
    expect((await env.run(["scale", "app@.service=10"])).code).toBe(0);
    const newHash = unitHash(parseUnitFile(APP.replace("localhost/app:1", "localhost/app:2")));
    const dry = await env.run(["deploy", "--dry-run", "--set", "image=localhost/app:2", "--max-unavailable", "25%", "app@.service"]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("Would roll app@.service from revision 1 to revision 2 (deploy --set image=localhost/app:2, hash ");
    expect(dry.stdout).toContain("\n  new body from the local file app@.service, with --set applied\n");
    expect(dry.stdout).toContain("10 instance(s) to update: app@{1..10}.service; max unavailable 2");
    expect(dry.stdout).toContain("max unavailable 2, max surge 0");
    expect(dry.stdout).toContain("  - Environment=image=localhost/app:1\n  + Environment=image=localhost/app:2\n");
    expect(dry.stdout).toContain("Dry run: nothing changed\n");

    let maxDown = 0;
    let samples = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const up = running();
        maxDown = Math.max(maxDown, instances(10).filter((n) => !up.has(n)).length);
        samples++;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const started = Date.now();
    const r = await env.run(["deploy", "--set", "image=localhost/app:2", "--max-unavailable", "25%", "app@.service"]);
    const ms = Date.now() - started;
    sampling = false;
    await sampler;
    expect(r.stderr, env.cluster.describe()).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Rollout of app@\.service to revision 2 succeeded in [\d.]+ s \(most instances unavailable at once: [12]\)\n$/);
    console.log(`deploy of 10 instances, max-unavailable 25%: ${ms} ms, ${samples} samples, max unavailable observed ${maxDown}`);
    expect(maxDown).toBeGreaterThan(0); // the sampler does see restarts
    expect(maxDown).toBeLessThanOrEqual(2);
    const now = running();
    expect([...now.keys()].sort()).toEqual(instances(10).sort());
    expect(new Set(now.values())).toEqual(new Set([newHash]));

    const files = await env.run(["list-unit-files", "--no-legend", "--fields", "unit,revision"]);
    expect(files.stdout).toContain("app@.service\t2\n");
    expect(files.stdout).toContain("app@10.service\t2\n");
    expect(files.stdout).toContain("hello.service\t-\n");
    const units = await env.run(["list-units", "--no-legend", "--fields", "unit,revision"]);
    expect(units.stdout.trim().split("\n").filter((l) => l.startsWith("app@")).every((l) => l.endsWith("\t2"))).toBe(true);
    // Default output unchanged (fleet compatibility).
    expect((await env.run(["list-units"])).stdout.split("\n")[0]).toMatch(/^UNIT\t+MACHINE\t+ACTIVE\tSUB$/);

    const h = await env.run(["history", "app@.service"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^REVISION\tHASH\tCREATED\t+OUTCOME\t+CHANGE\n1\t+[0-9a-f]{7}\t\S+\tsucceeded\tinitial\n2\t+[0-9a-f]{7}\t\S+\tsucceeded\tdeploy --set image=localhost\/app:2\n/);

    // What fleetctl follows a rollout with: the record without per-instance lists, bodies and texts.
    const api = new ApiClient({ endpoint: `unix://${env.socket}` });
    try {
      const full = await api.getDeployment("app@.service");
      const brief = await api.getDeploymentSummary("app@.service");
      expect(full.rollout!.instances).toEqual(instances(10));
      expect(brief).toEqual(summarizeDeployment(full));
      expect(brief.rollout).toMatchObject({ revision: 2, phase: "done", outcome: "succeeded", message: full.rollout!.message });
      for (const field of ["instances", "previous", "pending", "bodies"]) expect(brief.rollout).not.toHaveProperty(field);
      expect(brief.revisions.map((r) => [r.revision, r.hash, "text" in r])).toEqual(full.revisions.map((r) => [r.revision, r.hash, false]));
      const bad = await socketRequest(env.socket, "GET", "/fleet/v1/deployments/app@.service?brief=yes", "");
      expect(bad.status).toBe(400);
      expect((JSON.parse(bad.body) as { error: { message: string } }).error.message).toMatch(/^invalid brief="yes": use brief=true/);
    } finally {
      api.close();
    }
  });

  it("refuses a deploy while another runs, naming the running one", async () => {
    const first = await env.run(["deploy", "--no-block", "--set", "image=localhost/app:3", "app@.service"]);
    expect(first.code).toBe(0);
    const second = await env.run(["deploy", "--set", "image=localhost/app:4", "app@.service"]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/^Error starting the deploy of app@\.service: cannot deploy app@\.service: the rollout of revision 3 \(started \S+\) is still running \(.*\); wait for it to finish \(fleetctl history app@\.service\), or stop it and roll it back \(fleetctl rollback app@\.service\) \(HTTP 409\)\n$/);
    const scale = await env.run(["scale", "app@.service=3"]);
    expect(scale.stderr).toContain("cannot scale app@.service: the rollout of revision 3");
    await waitFor("revision 3 rolled out", async () => /\n3\t+[0-9a-f]{7}\t\S+\tsucceeded\t/.test((await env.run(["history", "app@.service"])).stdout), { timeoutMs: 60_000 });
  });

  it("rolls back automatically when the new body does not become active within the deadline", async () => {
    const before = running();
    await writeFile(join(env.dir, "app@.service"), BAD);
    const r = await env.run(["deploy", "--deadline", "2s", "--max-unavailable", "1", "app@.service"]);
    expect(r.code).toBe(1);
    // The plan says where the new body came from (a stale local copy would silently revert the cluster's).
    expect(r.stdout).toContain("(deploy (new body), hash ");
    expect(r.stdout).toContain("\n  new body from the local file app@.service\n");
    expect(r.stderr).toBe(
      'Rollout of app@.service to revision 4 failed and was rolled back: app@1.service not active within 2 s of getting its new body; see "fleetctl status app@1.service" and fix the body before deploying again\n',
    );
    await waitFor("every instance back on revision 3 and running", () => {
      const now = running();
      return now.size === 10 && [...now].every(([n, h]) => before.get(n) === h);
    });
    // New instances get the body that works: the template is back on revision 3.
    expect((await env.run(["cat", "app@.service"])).stdout).toContain("localhost/app:3");
    const h = await env.run(["history", "--no-legend", "app@.service"]);
    expect(h.stdout).toMatch(/\n4\t+[0-9a-f]{7}\t\S+\trolled-back\tdeploy \(new body\)\n/);
    expect(h.stdout).toContain("failed at app@1.service: not active within 2 s of getting its new body");
    await writeFile(join(env.dir, "app@.service"), APP);
  });

  it("rollback --to redeploys an earlier revision", async () => {
    const r = await env.run(["rollback", "--to", "2", "--max-unavailable", "50%", "app@.service"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("Rolling app@.service from revision 3 to revision 5 (rollback to 2");
    const want = unitHash(parseUnitFile(APP.replace("localhost/app:1", "localhost/app:2")));
    expect(new Set(running().values())).toEqual(new Set([want]));
    expect((await env.run(["rollback", "--to", "9", "app@.service"])).stderr).toBe(
      "Error starting the rollback of app@.service: cannot roll back app@.service to revision 9: no such revision (known: 1, 2, 3, 4, 5); see fleetctl history app@.service (HTTP 400)\n",
    );
  });

  it("make-before-break with --max-unavailable 0 --max-surge 1: a surge instance is active before an old one stops", async () => {
    expect((await env.run(["scale", "app@.service=3"])).code).toBe(0);
    let minUp = Infinity;
    let surgeSeen = false;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const up = running();
        minUp = Math.min(minUp, up.size);
        surgeSeen ||= [...up.keys()].some((n) => n.startsWith("app@surge-"));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const r = await env.run(["deploy", "--max-unavailable", "0", "--max-surge", "1", "--set", "image=localhost/app:surge", "app@.service"]);
    sampling = false;
    await sampler;
    expect(r.stderr, env.cluster.describe()).toBe("");
    // From the newest revision with the current body: 5 ("rollback to 2"), not 2.
    expect(r.stdout).toContain("Rolling app@.service from revision 5 to revision 6 (");
    expect(r.stdout).toContain("max unavailable 0, max surge 1");
    expect(surgeSeen).toBe(true);
    expect(minUp).toBeGreaterThanOrEqual(3);
    const want = unitHash(parseUnitFile(APP.replace("localhost/app:1", "localhost/app:surge")));
    await waitFor("surge instance removed", () => running().size === 3);
    expect([...running().keys()].sort()).toEqual(instances(3));
    expect(new Set(running().values())).toEqual(new Set([want]));
    expect((await env.cluster.registry.listUnits()).some((u) => u.name.includes("surge"))).toBe(false);
  });

  it("make-before-break of a body that never becomes active: the surge instance's deadline rolls it back", async () => {
    const before = running();
    await writeFile(join(env.dir, "app@.service"), BAD);
    const r = await env.run(["deploy", "--deadline", "2s", "--max-unavailable", "0", "--max-surge", "1", "app@.service"]);
    await writeFile(join(env.dir, "app@.service"), APP);
    expect(r.code, `${r.stdout}${r.stderr}`).toBe(1);
    expect(r.stderr).toMatch(/^Rollout of app@\.service to revision \d+ failed and was rolled back: app@surge-\d+-1\.service not active within 2 s of getting its new body; /);
    await waitFor("no surge instance left, the old ones untouched", async () => !(await env.cluster.registry.listUnits()).some((u) => u.name.includes("surge")) && running().size === 3);
    expect(running()).toEqual(before);
  });

  it("rollback while a rollout runs stops it: every instance goes back to its body, outcome rolled-back; Ctrl-C stops only the following", async () => {
    expect((await env.run(["scale", "app@.service=6"])).code).toBe(0);
    const before = running();
    const historyText = async (): Promise<string> => (await env.run(["history", "app@.service"])).stdout;
    // Ctrl-C while following: the command ends (130) and says the rollout goes on, and how to stop it.
    const ctrlC = new AbortController();
    const followed = env.run(["deploy", "--set", "image=localhost/app:stop", "app@.service"], { signal: ctrlC.signal });
    await waitFor("a first instance on the new body", async () => /rolling: [1-9]\/6 instances updated/.test(await historyText()));
    ctrlC.abort(new Error("interrupted"));
    const interrupted = await followed;
    expect(interrupted.code).toBe(130);
    const rev = /to revision (\d+)/.exec(interrupted.stdout)![1]!;
    expect(interrupted.stderr).toBe(`Stopped following; the rollout of app@.service to revision ${rev} goes on in the cluster: see fleetctl history app@.service, or stop it and roll it back with fleetctl rollback app@.service\n`);
    expect(await historyText()).toMatch(/rolling: \d\/6 instances updated/);

    // The limit options do not apply to a stop; --to waits for the running rollout to end.
    expect(await env.run(["rollback", "--max-unavailable", "2", "app@.service"])).toEqual({
      code: 1,
      stdout: "",
      stderr: "Cannot use --max-unavailable to stop the running rollout of app@.service: it rolls back with its own limits; leave it out\n",
    });
    const to = await env.run(["rollback", "--to", "1", "app@.service"]);
    expect(to.code).toBe(1);
    expect(to.stderr).toMatch(/^Error starting the rollback of app@\.service: cannot roll back app@\.service: the rollout of revision \d+ .* or stop it and roll it back \(fleetctl rollback app@\.service\) \(HTTP 409\)\n$/);

    const stop = await env.run(["rollback", "app@.service"]);
    expect(stop.stderr).toBe("");
    expect(stop.code).toBe(0);
    expect(stop.stdout).toMatch(new RegExp(`^Stopping the rollout of app@\\.service to revision ${rev}; its instances go back to the bodies they had \\(revision \\d+\\)\n`));
    expect(stop.stdout).toMatch(new RegExp(`Rollout of app@\\.service to revision ${rev} stopped and rolled back in [\\d.]+ s \\(rolled back: stopped by the operator at \\S+\\)\n$`));
    expect(running()).toEqual(before);
    const h = (await env.run(["history", "--no-legend", "app@.service"])).stdout;
    expect(h, h).toMatch(new RegExp(`\n${rev}\t+[0-9a-f]{7}\t\\S+\trolled-back\tdeploy( \\(new body\\))? --set image=localhost/app:stop\n`));
    // None runs now: the API refuses a stop and says what to do instead.
    const none = await socketRequest(env.socket, "POST", "/fleet/v1/deployments/app@.service", JSON.stringify({ abort: true }));
    expect(none.status).toBe(409);
    expect((JSON.parse(none.body) as { error: { message: string } }).error.message).toBe(
      `cannot stop the rollout of app@.service: none is running (the last one, to revision ${rev}, ended rolled-back); to redeploy an earlier revision: fleetctl rollback --to N app@.service`,
    );
  });

  it("resumes a rollout on the new leader when the leading fleetd crashes in the middle", async () => {
    expect((await env.run(["scale", "app@.service=10"])).code).toBe(0);
    const leader = [...env.cluster.instances.values()].find((i) => i.server.engine?.isLeader);
    expect(leader).toBeDefined();
    const r = await env.run(["deploy", "--no-block", "--deadline", "30s", "--set", "image=localhost/app:6", "app@.service"]);
    expect(r.code).toBe(0);
    // Mid-way: some instances updated, the rollout still running.
    const midway = await waitFor("a first instance updated", async () => /rolling: [1-9]\/10 instances updated/.exec((await env.run(["history", "app@.service"])).stdout)?.[0]);
    await env.cluster.crash(leader!.id);
    console.log(`crashed the leading fleetd ${leader!.id.slice(0, 8)} at "${midway}"`);
    const rev = /to revision (\d+)/.exec(r.stdout)![1]!;
    let last = "";
    await waitFor(
      `revision ${rev} rolled out by the new leader`,
      async () => {
        last = (await env.run(["history", "--no-legend", "app@.service"])).stdout;
        return new RegExp(`(^|\n)${rev}\t+[0-9a-f]{7}\t\\S+\tsucceeded\tdeploy( \\(new body\\))? --set image=localhost/app:6\n`).test(last);
      },
      { timeoutMs: 45_000, describe: () => `${last}\n${env.cluster.describe()}` },
    );
    const want = unitHash(parseUnitFile(APP.replace("localhost/app:1", "localhost/app:6")));
    await waitFor("every instance on the new body, on the two machines left", () => {
      const now = running();
      return now.size === 10 && [...now.values()].every((h) => h === want);
    });
    const newLeader = [...env.cluster.instances.values()].find((i) => i.server.engine?.isLeader)!;
    expect(newLeader.id).not.toBe(leader!.id);
    expect(newLeader.events.some((e) => e.message.startsWith(`Rollout of app@.service to revision ${rev}: all 10 instances active`))).toBe(true);
  }, 90_000);

  it("destroying a template removes its history: submitted again, it starts a new one", async () => {
    expect((await env.run(["history", "--no-legend", "app@.service"])).stdout).toMatch(/^1\t/);
    const destroyed = await env.run(["destroy", "app@.service"]);
    expect(destroyed.code).toBe(0);
    expect(destroyed.stdout).toContain("Destroyed app@.service\n");
    expect(await env.run(["history", "app@.service"])).toEqual({
      code: 1,
      stdout: "",
      stderr: "Error reading the history of app@.service: cannot read the history of app@.service: the template is not in the cluster (HTTP 404)\n",
    });
    expect((await env.run(["submit", "app@.service"])).code).toBe(0);
    const fresh = await env.run(["rollback", "app@.service"]);
    expect(fresh.stderr).toBe("Cannot roll back app@.service: it has no earlier successful revision (history: none); name one with --to N\n");
  });
});
