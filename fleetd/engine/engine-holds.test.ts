// The engine's hold, grace, failover and batching logic on in-memory parts (store, placement writer, leader
// session) with a manual clock: every step is an exact instant, no sleeps. The same behaviour on a
// real etcd with real leases: test/integration/fleetd-faults.test.ts and fleetd-placement.test.ts.
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock, settle } from "../../lib/async/manual-clock";
import type { MachineRecord, UnitRecord } from "../registry/keys";
import { Engine, type EngineEvent } from "./engine";
import { MemoryLeaderSession } from "./memory-leader-session";
import { MemoryPlacementWriter } from "./memory-placement-writer";
import { MemoryScheduleStore } from "./memory-schedule-store";

const GRACE = 10_000;
const LOSS_GRACE = 4_000;
const BODY = "[Service]\nExecStart=/bin/true\n";

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

function cluster() {
  const clock = new ManualClock();
  const store = new MemoryScheduleStore();
  const k = store.keys;
  return {
    clock,
    store,
    machine(id: string, extra: Partial<MachineRecord> = {}): void {
      const r: MachineRecord = { id, publicIP: `10.0.0.${id.length}`, metadata: {}, version: "test", disableEngine: false, ...extra };
      store.put(k.machine(id), JSON.stringify(r));
    },
    gone(id: string): void {
      store.delete(k.machine(id));
    },
    unit(name: string, extra: Partial<UnitRecord> = {}, body = BODY): void {
      const r: UnitRecord = { name, hash: `h-${name}`, desiredState: "launched", global: false, ...extra };
      store.put(k.body(r.hash), body);
      store.put(k.unit(name), JSON.stringify(r));
    },
    placement(name: string): string | undefined {
      return store.get(k.placement(name))?.value.toString();
    },
    /** Machines that have a schedule entry for `name`. */
    scheduledOn(name: string): string[] {
      return store.list(k.scheduleAll).filter((kv) => kv.key.endsWith(`/${name}`)).map((kv) => kv.key.slice(k.scheduleAll.length).split("/")[0]!);
    },
    engine(id: string, batching: { debounceMs?: number; maxBatchWaitMs?: number } = {}) {
      const session = new MemoryLeaderSession();
      const writer = new MemoryPlacementWriter(store, session);
      const events: EngineEvent[] = [];
      const engine = new Engine(
        { machineId: id, leaderTtlSeconds: 5, graceMs: GRACE, lossGraceMs: LOSS_GRACE, resyncIntervalMs: 3_600_000, debounceMs: 0, ...batching, onEvent: (e) => events.push(e) },
        { store, writer, session, clock },
      );
      const ctl = new AbortController();
      const done = engine.run(ctl.signal);
      stops.push(async () => {
        ctl.abort();
        await done;
      });
      return { engine, session, writer, events };
    },
  };
}

describe("a new leader's hold on machines it has not seen (agent TTL)", () => {
  it("keeps units on an unregistered machine until the grace after taking over, then moves them", async () => {
    const c = cluster();
    c.machine("m2");
    c.unit("web.service");
    // Placed on m1 by an earlier leader; m1's agent has not re-registered yet.
    c.store.put(c.store.keys.placement("web.service"), "m1");
    const { session } = c.engine("e1");
    session.elect();
    await settle();
    expect(c.placement("web.service")).toBe("m1");
    await c.clock.advance(GRACE - 10);
    expect(c.placement("web.service")).toBe("m1");
    await c.clock.advance(20);
    expect(c.placement("web.service")).toBe("m2");
    expect(c.scheduledOn("web.service")).toEqual(["m2"]);
  });

  it("leaves units where they are when their machine registers within the grace", async () => {
    const c = cluster();
    c.machine("m2");
    c.unit("web.service");
    c.store.put(c.store.keys.placement("web.service"), "m1");
    const { session } = c.engine("e1");
    session.elect();
    await c.clock.advance(GRACE / 2);
    c.machine("m1");
    await c.clock.advance(GRACE * 2);
    expect(c.placement("web.service")).toBe("m1");
    expect(c.scheduledOn("web.service")).toEqual(["m1"]);
  });
});

describe("machine_loss_grace", () => {
  it("moves the units of a machine that vanished only once it stayed away for the loss grace", async () => {
    const c = cluster();
    c.machine("m1");
    c.unit("web.service", {}, "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineID=m1\n");
    c.unit("api.service");
    c.machine("m2", { metadata: {} });
    const { session, events } = c.engine("e1");
    session.elect();
    await settle();
    const first = c.placement("api.service");
    expect(c.placement("web.service")).toBe("m1");
    expect(first).toBeDefined();
    const lost = first!;
    const other = lost === "m1" ? "m2" : "m1";
    c.gone(lost);
    await settle();
    expect(events.map((e) => e.message)).toContain(`Machine ${lost} is gone; its units move if it is not back within ${LOSS_GRACE} ms`);
    await c.clock.advance(LOSS_GRACE - 10);
    expect(c.placement("api.service")).toBe(lost);
    expect(c.scheduledOn("api.service")).toEqual([lost]);
    await c.clock.advance(20);
    expect(c.placement("api.service")).toBe(other);
    expect(c.scheduledOn("api.service")).toEqual([other]);
  });

  it("keeps the units of a machine that comes back within the loss grace", async () => {
    const c = cluster();
    c.machine("m1");
    c.machine("m2");
    c.unit("api.service");
    const { session, writer } = c.engine("e1");
    session.elect();
    await settle();
    const on = c.placement("api.service")!;
    const writes = writer.written;
    c.gone(on);
    await c.clock.advance(LOSS_GRACE - 100);
    c.machine(on);
    await c.clock.advance(LOSS_GRACE * 3);
    expect(c.placement("api.service")).toBe(on);
    expect(writer.written).toBe(writes);
  });

  it("moves the units of a machine that left gracefully (the leaving mark) at once", async () => {
    const c = cluster();
    c.machine("m1");
    c.unit("api.service", {}, "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineID=m1\n");
    c.unit("any.service");
    const { session, events } = c.engine("e1");
    session.elect();
    await settle();
    expect(c.placement("any.service")).toBe("m1");
    c.machine("m2");
    c.machine("m1", { leaving: true });
    await settle();
    expect(events.map((e) => e.message)).toContain("Machine m1 left the cluster; moving its units");
    expect(c.placement("any.service")).toBe("m2");
    // A unit that can only run on m1 has nowhere to go: unscheduled, no entry left on m1.
    expect(c.placement("api.service")).toBeUndefined();
    expect(c.scheduledOn("api.service")).toEqual([]);
  });
});

describe("failover", () => {
  it("a new leader changes nothing when every machine is present", async () => {
    const c = cluster();
    c.machine("m1");
    c.machine("m2");
    for (const n of ["a", "b", "c", "d"]) c.unit(`${n}.service`);
    const a = c.engine("e1");
    const b = c.engine("e2");
    a.session.elect();
    await settle();
    const before = ["a", "b", "c", "d"].map((n) => c.placement(`${n}.service`));
    expect(before.every((m) => m === "m1" || m === "m2")).toBe(true);
    a.session.depose();
    b.session.elect();
    await c.clock.advance(GRACE * 2);
    expect(["a", "b", "c", "d"].map((n) => c.placement(`${n}.service`))).toEqual(before);
    expect(b.writer.written).toBe(0);
    expect(b.engine.isLeader).toBe(true);
    expect(a.engine.isLeader).toBe(false);
  });

  it("a new leader holds units of a machine whose presence expired with the old leader, for the agent TTL", async () => {
    const c = cluster();
    c.machine("m1");
    c.machine("m2");
    c.unit("a.service", {}, "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineID=m1\n");
    c.unit("b.service", {}, "[Service]\nExecStart=/bin/true\n[X-Fleet]\nConflicts=a.service\n");
    const a = c.engine("e1");
    a.session.elect();
    await settle();
    expect(c.placement("b.service")).toBe("m2");
    // The old leader dies together with m2's presence; the new one takes over before m2 re-registers.
    a.session.depose();
    c.gone("m2");
    const b = c.engine("e2");
    b.session.elect();
    await c.clock.advance(GRACE - 10);
    expect(c.placement("b.service")).toBe("m2");
    await c.clock.advance(20);
    // b conflicts with a (on m1): once m2 is given up, b has nowhere to go.
    expect(c.placement("b.service")).toBeUndefined();
    expect(c.scheduledOn("b.service")).toEqual([]);
  });

  it("an engine whose write finds another leader stops leading instead of retrying", async () => {
    const c = cluster();
    c.machine("m1");
    const a = c.engine("e1");
    a.session.elect();
    await settle();
    // The writer sees leadership gone before the session noticed (the lease expired in etcd).
    a.writer.write = () => Promise.resolve("not-leader" as const);
    c.unit("x.service");
    await settle();
    expect(a.session.ended).toEqual(["abandoned"]);
    expect(a.events.map((e) => e.message)).toContain("Engine e1 lost leadership while writing placements");
    expect(c.placement("x.service")).toBeUndefined();
  });

  it("retries after etcd was unreachable for a write, half a second later", async () => {
    const c = cluster();
    c.machine("m1");
    const a = c.engine("e1");
    a.session.elect();
    await settle();
    a.writer.failNext(1);
    c.unit("x.service");
    await settle();
    expect(c.placement("x.service")).toBeUndefined();
    expect(a.events.some((e) => e.level === "warn" && e.message.includes("etcd is unreachable (simulated)"))).toBe(true);
    await c.clock.advance(499);
    expect(c.placement("x.service")).toBeUndefined();
    await c.clock.advance(2);
    expect(c.placement("x.service")).toBe("m1");
  });
});

describe("placements and schedule entries, written only by the leader and not watched", () => {
  it("reads a failed batch's keys back when etcd has what the mirror does not, and decides again", async () => {
    const c = cluster();
    c.machine("m1");
    c.machine("m2");
    c.unit("web.service");
    const a = c.engine("e1");
    a.session.elect();
    await settle();
    const first = c.placement("web.service")!;
    const other = first === "m1" ? "m2" : "m1";
    expect(c.scheduledOn("web.service")).toEqual([first]);
    // etcd moves ahead of the engine's mirror without an event for it (as after a write whose answer
    // was lost): the unit is on the other machine now.
    const k = c.store.keys;
    const entry = c.store.get(k.schedule(first, "web.service"))!.value;
    c.store.commit([], [{ request_put: { key: Buffer.from(k.placement("web.service")), value: Buffer.from(other) } }, { request_put: { key: Buffer.from(k.schedule(other, "web.service")), value: entry } }, { request_delete_range: { key: Buffer.from(k.schedule(first, "web.service")) } }]);
    // Stopping the unit makes the engine delete its placement, compared on the value it believes.
    c.unit("web.service", { desiredState: "inactive" });
    await settle();
    expect(c.placement("web.service")).toBeUndefined();
    expect(c.scheduledOn("web.service")).toEqual([]);
    expect(a.engine.stats.failedTransactions).toBe(1);
    expect(a.engine.stats.resyncs).toBe(1);
  });
});

describe("collecting a flood of changes before a pass", () => {
  /** Units arriving every 5 ms for 300 ms, `perTick` at a time: how many were placed 20 ms in, how many were sent, how many were placed in the end. */
  async function placedEarly(perTick: number): Promise<{ placedAt20ms: number; total: number; placedAtEnd: number }> {
    const c = cluster();
    c.machine("m1");
    const a = c.engine("e1", { debounceMs: 10, maxBatchWaitMs: 200 });
    a.session.elect();
    await c.clock.advance(50);
    let n = 0;
    let placedAt20ms = 0;
    for (let t = 0; t < 300; t += 5) {
      for (let i = 0; i < perTick; i++) c.unit(`u${n++}.service`);
      await c.clock.advance(5);
      if (t === 15) placedAt20ms = c.store.list(c.store.keys.placements).length;
    }
    await c.clock.advance(500);
    return { placedAt20ms, total: n, placedAtEnd: c.store.list(c.store.keys.placements).length };
  }

  it("keeps collecting while a trickle arrives (up to maxBatchWaitMs), so one pass takes a bigger batch", async () => {
    const r = await placedEarly(2);
    expect(r.placedAt20ms).toBe(0);
    expect(r.placedAtEnd).toBe(r.total);
  });

  it("passes as soon as the units collected fill every write slot, without waiting for the flood to end", async () => {
    // 4 transactions in flight × 64 units (128 ops: placement + schedule entry each) = 256 units.
    const r = await placedEarly(100);
    expect(r.placedAt20ms).toBeGreaterThanOrEqual(256);
    expect(r.placedAtEnd).toBe(r.total);
  });
});
