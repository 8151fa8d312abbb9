import { describe, expect, it } from "vitest";
import { ManualClock } from "../lib/async/manual-clock";
import { MONITOR_TRIGGERED, ServerMonitor } from "./server-monitor";

function monitor(clock: ManualClock, heartbeat: { at: number | undefined }) {
  const events: string[] = [];
  const m = new ServerMonitor({ clock, ttlMs: () => 2_000, lastHeartbeatAt: () => heartbeat.at, onEvent: (e) => events.push(`${e.level} ${e.message}`) });
  return { m, events };
}

describe("ServerMonitor", () => {
  it("triggers once, only after a whole TTL without a heartbeat, and says when heartbeats are back", async () => {
    const clock = new ManualClock();
    const hb = { at: clock.now() as number | undefined };
    const { m, events } = monitor(clock, hb);
    await clock.advance(2_000);
    m.check();
    expect(events).toEqual([]);
    await clock.advance(1);
    m.check();
    m.check();
    expect(events).toEqual([`error ${MONITOR_TRIGGERED}`]);
    expect(m.isTriggered).toBe(true);
    await clock.advance(5_000);
    hb.at = clock.now();
    m.check();
    expect(events).toEqual([`error ${MONITOR_TRIGGERED}`, "info Server monitor: heartbeat succeeded again after 7.0 s without one"]);
    // Re-armed: the next silence triggers again.
    await clock.advance(2_001);
    m.check();
    expect(events.filter((e) => e === `error ${MONITOR_TRIGGERED}`)).toHaveLength(2);
  });

  it("counts time without registration (lease lost, etcd away) as time without a heartbeat", async () => {
    const clock = new ManualClock();
    const hb = { at: clock.now() as number | undefined };
    const { m, events } = monitor(clock, hb);
    await clock.advance(1_000);
    hb.at = clock.now();
    m.check();
    hb.at = undefined;
    await clock.advance(1_500);
    m.check();
    expect(events).toEqual([]);
    await clock.advance(600);
    m.check();
    expect(events).toEqual([`error ${MONITOR_TRIGGERED}`]);
  });

  it("checks on its own every quarter TTL until aborted", async () => {
    const clock = new ManualClock();
    const { events } = monitor(clock, { at: clock.now() });
    const ctl = new AbortController();
    const m = new ServerMonitor({ clock, ttlMs: () => 2_000, lastHeartbeatAt: () => undefined, onEvent: (e) => events.push(e.message) });
    const running = m.run(ctl.signal);
    await clock.advance(2_400);
    expect(events).toEqual([]);
    await clock.advance(200);
    expect(events).toEqual([MONITOR_TRIGGERED]);
    ctl.abort();
    await running;
  });
});
