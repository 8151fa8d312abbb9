/**
 * Wire types of fleetd's dashboard feed (`GET /dashboard/v1/events`, Server-Sent Events), shared by
 * fleetd (`fleetd/dashboard/`) and the page it serves (`fleetd/dashboard/web/`). Only derived, small
 * fields: unit file bodies stay behind `GET /fleet/v1/units/<name>`.
 */
import type { UnitTargetState } from "./types";

/** A live machine as the dashboard shows it. */
export interface DashboardMachine {
  id: string;
  primaryIP?: string;
  /** Static metadata merged with dynamic metadata (fleet's rule). */
  metadata: Record<string, string>;
  /** fleetd version that registered the machine. */
  version?: string;
  /** Announced a graceful leave: its units are moving away. */
  leaving?: boolean;
  /** The machine takes no part in leader election (`disable_engine`). */
  disableEngine?: boolean;
  /** Whatever capacity the machine record carries (resources), shown as given; absent when unknown. */
  capacity?: Record<string, unknown>;
}

/** systemd's view of a unit on the machine it is placed on. */
export interface DashboardSystemdState {
  load: string;
  active: string;
  sub: string;
}

/** A unit as the dashboard shows it. */
export interface DashboardUnit {
  name: string;
  /** `web@.service` for `web@1.service`; absent for units that are not template instances. */
  template?: string;
  desiredState: UnitTargetState;
  /** As the API derives it; absent for global units. */
  currentState?: UnitTargetState;
  machineID?: string;
  global: boolean;
  /** On the machine it is placed on (non-global units). */
  systemd?: DashboardSystemdState;
  /** Global units: machines that publish a state for it, and how many of them run it (active). */
  globalMachines?: number;
  globalActive?: number;
  /** Why it has no machine (the engine's summary), while it wants one. */
  unscheduled?: string;
  /** Short unit hash (first 8 hex digits of the SHA1 of its canonical text). */
  hash: string;
  /** The unit record's revision when it carries one (rolling deploys); absent otherwise. */
  revision?: string | number;
}

/** Who may use the listener the page talks to (the page offers actions accordingly). */
export type DashboardListenerAuth = "open" | "bearer";

/** First event of every stream, and again after the server re-read etcd (replace everything). */
export interface DashboardSnapshot {
  /** etcd revision the view reflects. */
  revision: number;
  listener: DashboardListenerAuth;
  /** This fleetd's machine ID when known. */
  servedBy?: string;
  machines: DashboardMachine[];
  units: DashboardUnit[];
}

/** Changes since the previous event: upserts by ID/name and removals. */
export interface DashboardDelta {
  revision: number;
  machines: DashboardMachine[];
  removedMachines: string[];
  units: DashboardUnit[];
  removedUnits: string[];
}

/** Path of the event stream (SSE: `event: snapshot|delta`, `data: <JSON>`; comments as heartbeats). */
export const DASHBOARD_EVENTS_PATH = "/dashboard/v1/events";
