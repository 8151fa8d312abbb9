/** The engine's settings, events and counters (shared by the engine and its leader term). */
import type { Clock } from "../../lib/async/clock";
import type { EtcdStore } from "../registry/etcd-store";

export interface EngineEvent {
  level: "debug" | "info" | "warn" | "error";
  message: string;
}

/** How the engine behaves, whatever it reads from and writes to. */
export interface EngineSettings {
  machineId: string;
  /** Leader lease TTL (fleet: 5 × engine_reconcile_interval). */
  leaderTtlSeconds: number;
  /**
   * Grace before a machine counts as dead (agent TTL): a new leader does not unschedule from machines
   * it has not seen until this long after taking over, and units of a machine whose presence vanished
   * move only once it has stayed away this long (a host cut off from etcd that comes back in time
   * keeps its units; nothing stops, nothing runs twice).
   */
  graceMs: number;
  /**
   * Grace for machines that vanished (fleetd passes `machine_loss_grace`, default 10 s; here the default
   * is `graceMs`); the first kind of grace stays `graceMs`. A partition shorter than agent TTL + this
   * keeps its units in place; a longer one moves them.
   */
  lossGraceMs?: number;
  /** Full resync period (safety net). */
  resyncIntervalMs: number;
  /** Batch window after a change before a pass runs. Default 10 ms. */
  debounceMs?: number;
  /**
   * While changes keep arriving (a flood of submits), keep collecting them for up to this long before
   * a pass, so one pass places a big batch and each agent gets its units in fewer events; a pass starts
   * sooner once the units collected fill every write slot (4 transactions of maxTxnOps / 2 units).
   * Default 200 ms.
   */
  maxBatchWaitMs?: number;
  maxTxnOps?: number;
  onEvent?: (e: EngineEvent) => void;
  /** Time source for grace periods, holds, debouncing and retries. Default: the system clock. */
  clock?: Clock;
}

/** An engine on etcd. */
export interface EngineOptions extends EngineSettings {
  store: EtcdStore;
}

/** Counters for benches and diagnostics. */
export interface EngineStats {
  passes: number;
  transactions: number;
  failedTransactions: number;
  resyncs: number;
  /** Milliseconds spent feeding + reconciling the model, and writing placements. */
  decideMs: number;
  writeMs: number;
}
