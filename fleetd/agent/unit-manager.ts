/**
 * The boundary between fleetd's agent and the machine's init system. Two implementations:
 * `DbusUnitManager` (systemd over D-Bus, `org.freedesktop.systemd1`) on real hosts and
 * `MemoryUnitManager` for fast tests of the engine/agent/API. Both must behave alike for every
 * method below; the agent never looks behind this interface.
 */

/** systemd's view of one unit. */
export interface SystemdUnitState {
  /** LoadState: loaded, not-found, error, masked, ... */
  loadState: string;
  /** ActiveState: active, inactive, failed, activating, deactivating, reloading. */
  activeState: string;
  /** SubState: running, dead, exited, failed, ... */
  subState: string;
}

/** How a service's main process last ended (systemd's `Result` and `ExecMainExitTimestamp`). */
export interface ServiceRun {
  /** `success`, `exit-code`, `signal`, `timeout`, ... (systemd's Service.Result). */
  result: string;
  /** When the main process last exited (epoch ms), or undefined if it has not run since systemd started. */
  exitedAt: number | undefined;
}

/** Emitted whenever systemd reports a change for a unit the manager was asked to watch. */
export interface UnitStateChange {
  name: string;
  state: SystemdUnitState;
}

export interface UnitManager {
  /**
   * Writes the unit file into the units directory (atomically: temp file + rename), links it into
   * `/run/systemd/system` (runtime link), and enables it at runtime when it has an `[Install]` section.
   * Does not reload systemd: the caller batches loads and calls `reload()` once.
   */
  load(name: string, text: string, signal?: AbortSignal): Promise<void>;
  /** Stops (if running), disables, resets failed state and deletes the file. Idempotent. */
  unload(name: string, signal?: AbortSignal): Promise<void>;
  /** systemd daemon-reload. */
  reload(signal?: AbortSignal): Promise<void>;
  /** StartUnit(name, "replace"); resolves when the job is queued, not when the unit is active. */
  start(name: string, signal?: AbortSignal): Promise<void>;
  /** StopUnit(name, "replace"). */
  stop(name: string, signal?: AbortSignal): Promise<void>;
  /** Current systemd state of the named units (units unknown to systemd report loadState "not-found"). */
  states(names: readonly string[], signal?: AbortSignal): Promise<Map<string, SystemdUnitState>>;
  /** How the service's main process last ended; undefined for units that are not services or unknown ones. */
  lastRun(name: string, signal?: AbortSignal): Promise<ServiceRun | undefined>;
  /** Unit files present in the units directory with their text (adopted by the agent after a restart). */
  listLoaded(): Promise<Map<string, string>>;
  /**
   * Subscribes to state changes (systemd's PropertiesChanged signals, not polling). The listener receives
   * one event per change for units that were loaded through this manager. Returns an unsubscribe function.
   */
  onStateChange(listener: (change: UnitStateChange) => void): () => void;
  /** Releases the D-Bus connection / timers. */
  close(): Promise<void>;
}
