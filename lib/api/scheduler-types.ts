/**
 * Wire types of the scheduler's extensions to the fleet API (fleet has neither): `GET /why/<unit>`
 * (`fleetctl why`) and `POST /rebalance` (`fleetctl rebalance`). fleet's clients never call them.
 */

/** What the scheduler makes of a unit on one machine. */
export interface ApiWhyMachine {
  machineID: string;
  /** current: the unit is there; best: where the scheduler would put it now; fits: could run there; excluded: a rule forbids it. */
  verdict: "current" | "best" | "fits" | "excluded";
  /** The rule that excludes the machine (MachineID, MachineOf, MachineMetadata, Conflicts, Replaces, Resources, Spread); also on `current` when the unit could no longer stay. */
  rule?: string;
  /** e.g. `unit needs 2 CPUs, machine has 1 CPU free of 4 CPUs`, `fits (load 3, 40% of its capacity with the unit)`. */
  detail: string;
}

/** `GET /why/<unit>`: per machine, the scheduler's verdict, from one consistent read of etcd. */
export interface ApiWhy {
  unit: string;
  desiredState: string;
  global: boolean;
  /** Machine the unit is placed on (non-global units); absent when it has none. */
  machineID?: string;
  /** The placement's machine is not registered (gone, or not back yet): the engine moves the unit once its grace has passed. */
  machineGone?: boolean;
  /** Machines a global unit is scheduled on. */
  globalMachines?: string[];
  /** The engine's recorded reason when the unit wants a machine and has none. */
  unscheduledReason?: string;
  /** Every registered machine, sorted by ID. */
  machines: ApiWhyMachine[];
  /** The etcd revision the answer was computed at. */
  revision: number;
}

/** `POST /rebalance` body. */
export interface ApiRebalanceRequest {
  /** Most units moved (the disruption budget); 1 … 1000, default 1. */
  maxMoves?: number;
  /** Plan only: nothing changes. */
  dryRun?: boolean;
  /** Per move, how long to wait for the unit to be active on its new machine before giving up (ms; default 60000). */
  deadlineMs?: number;
}

/** One unit moved (or to move) from a machine to another. */
export interface ApiRebalanceMove {
  unit: string;
  from: string;
  to: string;
  /** e.g. `load 5 → 1`, `zone=a holds 3 instances of web@.service, zone=c holds 1`. */
  reason: string;
  /** Set once carried out: moved (active on its new machine), conflict (the cluster changed first; not moved), timeout (placed, not active within the deadline). */
  outcome?: "moved" | "conflict" | "timeout";
}

/** `POST /rebalance` answer. */
export interface ApiRebalancePlan {
  dryRun: boolean;
  maxMoves: number;
  moves: ApiRebalanceMove[];
  /** Units the planner looked at (placed, movable, non-global). */
  considered: number;
}
