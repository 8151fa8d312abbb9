/**
 * The engine: takes part in leader election and, while leader, runs one leader term (./leader-term)
 * that schedules units. What it reads (schedule store), writes (placement writer) and how it leads
 * (session) are interfaces: etcd in fleetd, in-memory ones in tests, with an injectable clock.
 *
 * No churn: an etcd leader change or a client reconnect only pauses watches (they resume from their
 * revision); a newly elected engine does not unschedule units from machines it has not seen yet until
 * the grace period (agent TTL) has passed since it took over.
 */
import { systemClock, type Clock } from "../../lib/async/clock";
import { anySignal } from "../../lib/async/any-signal";
import type { SchedulerModel } from "../scheduler/scheduler-model";
import type { ReconcileResult } from "../scheduler/types";
import type { EngineEvent, EngineOptions, EngineSettings, EngineStats } from "./engine-options";
import { EtcdPlacementWriter } from "./etcd-placement-writer";
import { LeaderElection } from "./leader-election";
import type { LeaderSession } from "./leader-session";
import { LeaderTerm } from "./leader-term";
import type { PlacementWriter } from "./placement-writer";
import type { ScheduleStore } from "./schedule-store";

export type { EngineEvent, EngineOptions, EngineSettings, EngineStats } from "./engine-options";

/** What an engine reads from, writes to and leads with. */
export interface EngineParts {
  store: ScheduleStore;
  writer: PlacementWriter;
  session: LeaderSession;
  clock: Clock;
}

/** The etcd parts: the store itself, guarded transactions, leader election on a lease. */
export function etcdEngineParts(options: EngineOptions): EngineParts {
  const election = new LeaderElection(options.store, {
    machineId: options.machineId,
    ttlSeconds: options.leaderTtlSeconds,
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
  });
  return { store: options.store, writer: new EtcdPlacementWriter(options.store, election), session: election, clock: options.clock ?? systemClock };
}

export class Engine {
  readonly session: LeaderSession;
  readonly stats: EngineStats = { passes: 0, transactions: 0, failedTransactions: 0, resyncs: 0, decideMs: 0, writeMs: 0 };
  private readonly emit: (e: EngineEvent) => void;
  private readonly parts: EngineParts;
  private readonly settings: EngineSettings;
  private term: LeaderTerm | undefined;

  /** An engine on etcd (`options.store`), or on the given parts. */
  constructor(options: EngineOptions);
  constructor(settings: EngineSettings, parts: EngineParts);
  constructor(options: EngineSettings & { store?: EngineOptions["store"] }, parts?: EngineParts) {
    this.emit = options.onEvent ?? (() => undefined);
    this.parts = parts ?? etcdEngineParts(options as EngineOptions);
    this.settings = { ...options, clock: this.parts.clock };
    this.session = this.parts.session;
  }

  get isLeader(): boolean {
    return this.session.isLeader;
  }

  /** The last pass's result while leader (unscheduled units with reasons), else undefined. */
  lastResult(): ReconcileResult | undefined {
    return this.term?.lastResult;
  }

  /** Why each machine cannot run `unit` (invariant 4), while leader. */
  explain(unit: string): ReturnType<SchedulerModel["explain"]> {
    return this.term?.model.explain(unit);
  }

  /** Runs until `signal` aborts, leading when elected. */
  async run(signal: AbortSignal): Promise<void> {
    let termController: AbortController | undefined;
    let termDone: Promise<void> = Promise.resolve();
    const off = this.session.onChange((leader) => {
      termController?.abort();
      if (!leader) return;
      const c = (termController = new AbortController());
      const term = (this.term = new LeaderTerm(this.settings, this.parts.store, this.parts.writer, this.stats, this.emit, () => this.session.abandon()));
      const previous = termDone;
      termDone = previous.then(() => {
        const combined = anySignal([signal, c.signal]);
        return term
          .run(combined.signal)
          .catch((err: unknown) => {
            if (!c.signal.aborted && !signal.aborted) {
              this.emit({ level: "error", message: `Engine term ended: ${(err as Error).message}; resigning` });
              void this.session.resign();
            }
          })
          .finally(combined.dispose);
      });
    });
    try {
      await this.session.run(signal);
    } finally {
      off();
      termController?.abort();
      await termDone;
    }
  }

  /** Asks the leading engine for a full resync (re-read everything, rebuild the model, collect bodies). */
  requestResync(): void {
    this.term?.requestResync();
  }

  /** Gives up leadership at once (graceful shutdown). */
  async resign(): Promise<void> {
    await this.session.resign();
  }

  /** Stops keeping the leader lease alive without deleting it (simulates a crash in tests). */
  abandon(): void {
    this.session.abandon();
  }
}
