/**
 * The agent's own logic, fast and deterministic: an in-memory session and unit manager behind the
 * agent's interfaces, time on a `ManualClock` (publish windows, retries and back-off fire only when
 * the test moves the clock). The same agent over etcd and systemd is tested in
 * test/integration (real etcd) and test/e2e (real systemd).
 */
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock, settle } from "../../lib/async/manual-clock";
import { unitHashOfText } from "../../lib/unit";
import type { ScheduleRecord } from "../registry/keys";
import { Agent, PUBLISH_LATENCY_FACTOR, type AgentEvent } from "./agent";
import { MemoryAgentSession } from "./memory-agent-session";
import { MemoryUnitManager } from "./memory-unit-manager";
import type { ServiceRun } from "./unit-manager";

const TEXT = "[Service]\nExecStart=/bin/sleep infinity\n";
const entry = (desiredState: "loaded" | "launched", text = TEXT): ScheduleRecord => ({ hash: unitHashOfText(text), desiredState, text });

/** Lets the agent and the memory manager (whose transitions take a real 0 ms timer) run. */
async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 1));
    await settle(5);
  }
  throw new Error(`never happened: ${what}`);
}

describe("Agent (in-memory session and unit manager, manual clock)", () => {
  const stops: AbortController[] = [];
  afterEach(() => {
    for (const c of stops.splice(0)) c.abort();
  });

  const start = (opts: { publishDelayMs?: number; burstPublishDelayMs?: number } = {}) => {
    const clock = new ManualClock();
    const session = new MemoryAgentSession("m1");
    const manager = new MemoryUnitManager();
    const events: AgentEvent[] = [];
    const agent = new Agent({ session, manager, clock, onEvent: (e) => events.push(e), ...opts });
    const stop = new AbortController();
    stops.push(stop);
    const done = agent.run(stop.signal);
    return { clock, session, manager, events, agent, stop, done };
  };

  it("starts a scheduled unit and publishes its state once the publish window has passed, not before", async () => {
    const t = start({ publishDelayMs: 20 });
    await until("registered", () => t.session.registered);
    t.session.setEntry("a.service", entry("launched"));
    await until("a running", () => t.manager.running().includes("a.service"));
    await settle();
    expect(t.session.states.has("a.service")).toBe(false);
    await t.clock.advance(19);
    expect(t.session.states.has("a.service")).toBe(false);
    await t.clock.advance(1);
    expect(t.session.states.get("a.service")).toEqual({ hash: unitHashOfText(TEXT), loadState: "loaded", activeState: "active", subState: "running", launched: true });
  });

  it("batches changes within a second of the last publish into the longer burst window", async () => {
    const t = start({ publishDelayMs: 20, burstPublishDelayMs: 250 });
    await until("registered", () => t.session.registered);
    t.session.setEntry("a.service", entry("launched"));
    await until("a running", () => t.manager.running().includes("a.service"));
    await t.clock.advance(20);
    const after = t.session.publishes.length;
    for (const n of ["b.service", "c.service", "d.service"]) t.session.setEntry(n, entry("launched"));
    await until("b, c, d running", () => t.manager.running().length === 4);
    await t.clock.advance(249);
    expect(t.session.publishes.length).toBe(after);
    await t.clock.advance(1);
    expect(t.session.publishes.length).toBe(after + 1);
    expect([...t.session.publishes.at(-1)!.keys()].sort()).toEqual(["b.service", "c.service", "d.service"]);
  });

  it("waits PUBLISH_LATENCY_FACTOR times the last publish's round trip in a burst while etcd is slow, the burst window once it is fast again, and the quiet window after a quiet second", async () => {
    const t = start({ publishDelayMs: 20, burstPublishDelayMs: 250 });
    await until("registered", () => t.session.registered);
    const launch = async (name: string): Promise<void> => {
      t.session.setEntry(name, entry("launched"));
      await until(`${name} running`, () => t.manager.running().includes(name));
    };
    /** Launches `name` and lets etcd take `ms` to answer the publish of its state (after the burst window). */
    const launchSlowlyPublished = async (name: string, ms: number): Promise<void> => {
      let answer!: () => void;
      t.session.publishGate = new Promise((r) => (answer = r));
      const published = t.session.publishes.length + 1;
      await launch(name);
      await t.clock.advance(250);
      await t.clock.advance(ms);
      t.session.publishGate = undefined;
      answer();
      await until(`${name} published`, () => t.session.publishes.length === published);
    };
    await launch("a.service");
    await t.clock.advance(20);
    expect(t.session.publishes).toHaveLength(1);
    // etcd takes 400 ms to answer the next publish.
    await launchSlowlyPublished("b.service", 400);
    await launch("c.service");
    await t.clock.advance(PUBLISH_LATENCY_FACTOR * 400 - 1);
    expect(t.session.publishes).toHaveLength(2);
    await t.clock.advance(1);
    expect(t.session.publishes).toHaveLength(3);
    // That publish was instant: the burst window is back to 250 ms.
    await launch("d.service");
    await t.clock.advance(249);
    expect(t.session.publishes).toHaveLength(3);
    await t.clock.advance(1);
    expect([...t.session.publishes.at(-1)!.keys()]).toEqual(["d.service"]);
    // A slow publish followed by a quiet second: the first new state goes out in the quiet window.
    await launchSlowlyPublished("e.service", 2_000);
    await t.clock.advance(1_000);
    await launch("f.service");
    await t.clock.advance(19);
    expect(t.session.publishes).toHaveLength(5);
    await t.clock.advance(1);
    expect([...t.session.publishes.at(-1)!.keys()]).toEqual(["f.service"]);
  });

  it("after losing its lease, registers again and republishes every state (they went with the lease), keeping the units running", async () => {
    const t = start({ publishDelayMs: 20 });
    await until("registered", () => t.session.registered);
    t.session.setEntry("a.service", entry("launched"));
    t.session.setEntry("b.service", entry("loaded"));
    await until("a running", () => t.manager.running().includes("a.service"));
    await t.clock.advance(20);
    expect(t.session.states.size).toBe(2);
    t.session.loseLease();
    expect(t.session.states.size).toBe(0);
    await until("registered again", () => t.session.registrations === 2);
    await t.clock.advance(250);
    expect([...t.session.states.keys()].sort()).toEqual(["a.service", "b.service"]);
    expect(t.session.states.get("b.service")).toMatchObject({ activeState: "inactive", launched: false });
    expect(t.manager.count("stop")).toBe(0);
    expect(t.manager.running()).toEqual(["a.service"]);
    expect(t.events.some((e) => e.level === "warn" && /registering machine m1 again/.test(e.message))).toBe(true);
  });

  it("keeps a state that failed to publish and sends it again after 500 ms, the newest value winning", async () => {
    const t = start({ publishDelayMs: 20, burstPublishDelayMs: 250 });
    await until("registered", () => t.session.registered);
    t.session.failPublishes = 1;
    t.session.setEntry("a.service", entry("launched"));
    await until("a running", () => t.manager.running().includes("a.service"));
    await t.clock.advance(20);
    expect(t.session.states.has("a.service")).toBe(false);
    expect(t.events.some((e) => e.level === "warn" && e.message.startsWith("Cannot publish 1 unit states: etcd did not answer in time"))).toBe(true);
    // Meanwhile the engine asks for a stop: the retry carries the newer state only.
    t.session.setEntry("a.service", entry("loaded"));
    await until("a stopped", () => !t.manager.running().includes("a.service"));
    await t.clock.advance(500 + 250);
    expect(t.session.states.get("a.service")).toMatchObject({ activeState: "inactive", launched: false });
    expect(t.session.publishes).toHaveLength(1);
  });

  it("unloads a unit whose schedule entry goes and deletes its state; a new body replaces the old unit", async () => {
    const t = start({ publishDelayMs: 20 });
    await until("registered", () => t.session.registered);
    t.session.setEntry("a.service", entry("launched"));
    t.session.setEntry("b.service", entry("launched"));
    await until("both running", () => t.manager.running().length === 2);
    await t.clock.advance(20);
    t.session.setEntry("a.service", undefined);
    const v2 = "[Service]\nExecStart=/bin/sleep 1000\n";
    t.session.setEntry("b.service", entry("launched", v2));
    await until("a gone, b reloaded", () => !t.manager.disk.has("a.service") && t.manager.disk.get("b.service") === v2 && t.manager.running().includes("b.service"));
    await t.clock.advance(250);
    expect([...t.session.states.keys()]).toEqual(["b.service"]);
    expect(t.session.states.get("b.service")).toMatchObject({ hash: unitHashOfText(v2), activeState: "active", launched: true });
    expect(t.manager.count("unload", "b.service")).toBe(1);
  });

  it("records a batch unit's successful run once, and neither a failing one nor a re-run after a fleetd restart", async () => {
    const clock = new ManualClock();
    const manager = new MemoryUnitManager({ now: () => clock.now() });
    const session = new MemoryAgentSession("m1");
    const stop = new AbortController();
    stops.push(stop);
    void new Agent({ session, manager, clock}).run(stop.signal);
    await until("registered", () => session.registered);
    const job = "[Service]\nType=oneshot\nExecStart=/bin/echo done\n";
    const bad = "[Service]\nType=oneshot\nExecStart=/bin/false\n";
    session.setEntry("job.service", entry("launched", job));
    session.setEntry("bad.service", entry("launched", bad));
    await until("job recorded", () => session.completions.has("job.service"));
    expect(session.completions.get("job.service")).toBe(unitHashOfText(job));
    let badState = "";
    await until("bad failed", () => {
      void manager.states(["bad.service"]).then((m) => (badState = m.get("bad.service")?.activeState ?? ""));
      return badState === "failed";
    });
    await settle(20);
    expect(session.completions.has("bad.service")).toBe(false);
    expect(manager.count("start", "job.service")).toBe(1);

    // fleetd restarts (systemd keeps its state): the adopted job already ran on this boot.
    stop.abort();
    const again = new AbortController();
    stops.push(again);
    const session2 = new MemoryAgentSession("m1");
    session2.setEntry("job.service", entry("launched", job));
    void new Agent({ session: session2, manager, clock }).run(again.signal);
    await until("registered again", () => session2.registered);
    await settle(20);
    expect(manager.count("start", "job.service")).toBe(1);
    again.abort();

    // systemd unloaded the ended job and forgot its run (as real systemd does with an inactive unit):
    // the completion this machine recorded keeps it from running again...
    const forgetful = new MemoryUnitManager({ now: () => clock.now(), disk: manager.disk });
    expect(await forgetful.lastRun("job.service")).toEqual({ result: "success", exitedAt: undefined });
    const third = new AbortController();
    stops.push(third);
    const session3 = new MemoryAgentSession("m1");
    session3.setEntry("job.service", entry("launched", job));
    session3.completions.set("job.service", unitHashOfText(job));
    void new Agent({ session: session3, manager: forgetful, clock }).run(third.signal);
    await until("registered a third time", () => session3.registered);
    await settle(20);
    expect(forgetful.count("start", "job.service")).toBe(0);
    third.abort();

    // ...and without a recorded completion (or one from another machine) it runs again: at least once.
    const fresh = new MemoryUnitManager({ now: () => clock.now(), disk: manager.disk });
    const session4 = new MemoryAgentSession("m1");
    session4.setEntry("job.service", entry("launched", job));
    const fourth = new AbortController();
    stops.push(fourth);
    void new Agent({ session: session4, manager: fresh, clock }).run(fourth.signal);
    await until("job run again and recorded", () => session4.completions.has("job.service"));
    expect(fresh.count("start", "job.service")).toBe(1);
  });
  it("checks a batch unit again when its run ends while an earlier check is still asking systemd", async () => {
    // The state read right after StartUnit is still the old inactive/dead: the agent asks how the unit
    // last ran; systemd answers slowly (a loaded host), and the run ends meanwhile. That answer (no run
    // yet) must not be the last word.
    class SlowSystemd extends MemoryUnitManager {
      asked = 0;
      override async lastRun(name: string, signal?: AbortSignal): Promise<ServiceRun | undefined> {
        const run = await super.lastRun(name, signal);
        // The first question after StartUnit (the adoption check before it is not the one).
        if (this.count("start", name) > 0 && ++this.asked === 1) await new Promise((r) => setTimeout(r, 30));
        return run;
      }
    }
    const clock = new ManualClock();
    const manager = new SlowSystemd({ now: () => clock.now(), transitionDelayMs: 10, startDelayMs: 20 });
    const session = new MemoryAgentSession("m1");
    const stop = new AbortController();
    stops.push(stop);
    void new Agent({ session, manager, clock }).run(stop.signal);
    await until("registered", () => session.registered);
    const job = "[Service]\nType=oneshot\nExecStart=/bin/echo done\n";
    session.setEntry("job.service", entry("launched", job));
    await until("job recorded", () => session.completions.has("job.service"));
    expect(manager.asked).toBeGreaterThanOrEqual(2);
    expect(manager.count("start", "job.service")).toBe(1);
  });
});
