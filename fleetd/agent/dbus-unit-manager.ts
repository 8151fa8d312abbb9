/**
 * `UnitManager` for real hosts: systemd's D-Bus API (`org.freedesktop.systemd1`) through `dbus-next`.
 *
 * Unit files are written atomically into the units directory, runtime-linked into
 * `/run/systemd/system` (LinkUnitFiles runtime+force, as fleet did), enabled at runtime when they have
 * an `[Install]` section, and driven with StartUnit/StopUnit "replace". State changes come from
 * systemd's PropertiesChanged signals after `Subscribe()`; nothing polls.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile, lstat, readlink, unlink } from "node:fs/promises";
import path from "node:path";
import { systemBus, Message, DBusError, type MessageBus, type Variant } from "dbus-next";
import { abortReason } from "../../lib/async/delay";
import type { ServiceRun, SystemdUnitState, UnitManager, UnitStateChange } from "./unit-manager";

/** Options of {@link DbusUnitManager.connect}. */
export interface DbusUnitManagerOptions {
  /** Where unit files are written. Default `/run/fleet/units` (fleet's `units_directory`). */
  unitsDirectory?: string;
  /** systemd's runtime unit directory, where runtime links live. Default `/run/systemd/system`. */
  runtimeDirectory?: string;
  /** A connected bus; default: the system bus. Injected for tests against another systemd instance. */
  bus?: MessageBus;
  /** Milliseconds before one D-Bus call counts as lost (the bus may have gone away). Default 25000. */
  callTimeoutMs?: number;
}

/** A systemd operation failed; `retriable` says whether trying again can help. */
export class SystemdError extends Error {
  override readonly name = "SystemdError";
  constructor(
    message: string,
    /** The D-Bus error name, e.g. `org.freedesktop.systemd1.NoSuchUnit`, when systemd answered. */
    readonly dbusName: string | undefined,
    readonly retriable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const SYSTEMD = "org.freedesktop.systemd1";
const MANAGER_PATH = "/org/freedesktop/systemd1";
const MANAGER_IFACE = "org.freedesktop.systemd1.Manager";
const UNIT_IFACE = "org.freedesktop.systemd1.Unit";
const SERVICE_IFACE = "org.freedesktop.systemd1.Service";
const PROPS_IFACE = "org.freedesktop.DBus.Properties";
const UNIT_PATH_PREFIX = "/org/freedesktop/systemd1/unit/";
const NO_SUCH_UNIT = "org.freedesktop.systemd1.NoSuchUnit";
/** Suffixes of files fleet manages (fleet's recognised unit types). */
const UNIT_SUFFIXES = [".service", ".socket", ".timer", ".path", ".device", ".mount", ".automount", ".target", ".scope", ".slice", ".swap"];
const SIGNAL_MATCH = `type='signal',sender='${SYSTEMD}',interface='${PROPS_IFACE}',member='PropertiesChanged',path_namespace='/org/freedesktop/systemd1/unit'`;

/**
 * systemd's object path for a unit name: every byte outside [A-Za-z0-9] becomes `_xx` (lower-case hex),
 * as in systemd's `bus_label_escape`. Lets us map signals to names without a GetUnit round trip.
 */
export function unitObjectPath(name: string): string {
  let out = "";
  for (const byte of Buffer.from(name, "utf8")) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9]/.test(c) ? c : `_${byte.toString(16).padStart(2, "0")}`;
  }
  return UNIT_PATH_PREFIX + (out || "_");
}

/** A service's run as systemd's properties give it (either part may be missing). */
interface SignalledRun {
  result: string | undefined;
  exitedUs: bigint | undefined;
}

function stringValue(v: Variant<unknown> | undefined): string | undefined {
  return typeof v?.value === "string" ? v.value : undefined;
}

/** A D-Bus uint64 (dbus-next gives a bigint). */
function uint64Value(v: Variant<unknown> | undefined): bigint | undefined {
  const x = v?.value;
  return typeof x === "bigint" ? x : typeof x === "number" ? BigInt(x) : undefined;
}

/** systemd's timestamps are microseconds since the epoch; 0 means the main process never exited. */
function toServiceRun(run: SignalledRun | undefined): ServiceRun | undefined {
  if (run?.result === undefined) return undefined;
  const us = run.exitedUs ?? 0n;
  return { result: run.result, exitedAt: us > 0n ? Number(us / 1000n) : undefined };
}

/** True when the unit text has an `[Install]` section (then it is enabled at runtime when loaded). */
export function hasInstallSection(text: string): boolean {
  return /^[ \t]*\[Install\][ \t]*$/m.test(text);
}

/** True for file names the units directory may hold (temp files and foreign names are ignored). */
export function isUnitFileName(name: string): boolean {
  return !name.startsWith(".") && UNIT_SUFFIXES.some((s) => name.endsWith(s) && name.length > s.length);
}

export class DbusUnitManager implements UnitManager {
  private readonly unitsDir: string;
  private readonly runtimeDir: string;
  private readonly callTimeoutMs: number;
  /** Units loaded through this manager, by object path (signals carry only the path). */
  private readonly watched = new Map<string, string>();
  private readonly last = new Map<string, SystemdUnitState>();
  /**
   * How each watched service last ran, from its Service-interface PropertiesChanged signals. systemd
   * unloads (garbage-collects) a unit that ended inactive with success as soon as nothing references
   * it, and a unit loaded afresh has forgotten its run (Result success, no exit time): a oneshot that
   * exited 0 can only be seen exiting through the signal sent just before it was unloaded.
   */
  private readonly runs = new Map<string, SignalledRun>();
  private readonly listeners = new Set<(change: UnitStateChange) => void>();
  private readonly onMessage = (msg: Message): void => this.handleSignal(msg);
  private closed = false;

  private constructor(private readonly bus: MessageBus, options: DbusUnitManagerOptions) {
    this.unitsDir = options.unitsDirectory ?? "/run/fleet/units";
    this.runtimeDir = options.runtimeDirectory ?? "/run/systemd/system";
    this.callTimeoutMs = options.callTimeoutMs ?? 25_000;
  }

  /** Connects to systemd, subscribes to its signals and adopts the files already in the units directory. */
  static async connect(options: DbusUnitManagerOptions = {}): Promise<DbusUnitManager> {
    const bus = options.bus ?? systemBus();
    const m = new DbusUnitManager(bus, options);
    bus.on("message", m.onMessage);
    try {
      // Without Subscribe systemd sends no PropertiesChanged signals to us.
      await m.call("Subscribe", "", []);
      await m.callRaw("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", "s", [SIGNAL_MATCH]);
    } catch (err) {
      bus.removeListener("message", m.onMessage);
      if (!options.bus) bus.disconnect();
      throw new SystemdError(`Cannot connect to systemd over D-Bus: ${describe(err)}; is dbus running and are we root?`, dbusName(err), true, { cause: err });
    }
    for (const name of (await m.listLoaded()).keys()) m.watch(name);
    return m;
  }

  async load(name: string, text: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const file = path.join(this.unitsDir, name);
    await mkdir(this.unitsDir, { recursive: true });
    // Temp file + rename: systemd (or an adopting agent) never reads a half-written unit.
    const tmp = path.join(this.unitsDir, `.${name}.${process.pid}.tmp`);
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, file);
    this.watch(name);
    await this.call("LinkUnitFiles", "asbb", [[file], true, true], signal, `link "${name}"`);
    if (hasInstallSection(text)) {
      await this.call("EnableUnitFiles", "asbb", [[name], true, true], signal, `enable "${name}"`);
    }
  }

  async unload(name: string, signal?: AbortSignal): Promise<void> {
    await this.ignoreNoSuchUnit(this.call("StopUnit", "ss", [name, "replace"], signal, `stop "${name}"`));
    await this.ignoreNoSuchUnit(this.call("DisableUnitFiles", "asb", [[name], true], signal, `disable "${name}"`));
    await this.ignoreNoSuchUnit(this.call("ResetFailedUnit", "s", [name], signal, `reset the failed state of "${name}"`));
    const file = path.join(this.unitsDir, name);
    await this.removeRuntimeLink(name, file);
    await rm(file, { force: true });
    this.watched.delete(unitObjectPath(name));
    this.last.delete(name);
    this.runs.delete(name);
  }

  async reload(signal?: AbortSignal): Promise<void> {
    await this.call("Reload", "", [], signal, "reload systemd (daemon-reload)");
  }

  async start(name: string, signal?: AbortSignal): Promise<void> {
    await this.call("StartUnit", "ss", [name, "replace"], signal, `start "${name}"`);
  }

  async stop(name: string, signal?: AbortSignal): Promise<void> {
    await this.ignoreNoSuchUnit(this.call("StopUnit", "ss", [name, "replace"], signal, `stop "${name}"`));
  }

  async states(names: readonly string[], signal?: AbortSignal): Promise<Map<string, SystemdUnitState>> {
    const out = new Map<string, SystemdUnitState>();
    if (names.length === 0) return out;
    // One call for all names (systemd >= 230); unknown names come back as "not-found".
    const reply = await this.call("ListUnitsByNames", "as", [[...names]], signal, `read the state of ${names.length} unit(s)`);
    const rows = (reply.body[0] ?? []) as unknown[][];
    for (const row of rows) {
      const [name, , loadState, activeState, subState] = row as [string, string, string, string, string];
      out.set(name, { loadState, activeState, subState });
    }
    for (const n of names) if (!out.has(n)) out.set(n, { loadState: "not-found", activeState: "inactive", subState: "dead" });
    return out;
  }

  async lastRun(name: string, signal?: AbortSignal): Promise<ServiceRun | undefined> {
    if (!name.endsWith(".service")) return undefined;
    const signalled = toServiceRun(this.runs.get(name));
    let reply: Message;
    try {
      reply = await this.callRaw(SYSTEMD, unitObjectPath(name), PROPS_IFACE, "GetAll", "s", [SERVICE_IFACE], signal);
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      if (dbusName(err) === NO_SUCH_UNIT || dbusName(err) === "org.freedesktop.DBus.Error.UnknownObject") return signalled;
      throw new SystemdError(`Cannot read how "${name}" last ran through systemd: ${describe(err)}`, dbusName(err), true, { cause: err });
    }
    const props = (reply.body[0] ?? {}) as Record<string, Variant<unknown> | undefined>;
    const asked = toServiceRun({ result: stringValue(props.Result), exitedUs: uint64Value(props.ExecMainExitTimestamp) });
    // The later exit wins: systemd's own answer, unless it unloaded the unit since the signal we kept.
    if (!asked) return signalled;
    if (signalled?.exitedAt !== undefined && (asked.exitedAt === undefined || asked.exitedAt < signalled.exitedAt)) return signalled;
    return asked;
  }

  async listLoaded(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let entries: string[];
    try {
      entries = await readdir(this.unitsDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return out;
      throw err;
    }
    for (const name of entries.filter(isUnitFileName).sort()) {
      out.set(name, await readFile(path.join(this.unitsDir, name), "utf8"));
    }
    return out;
  }

  onStateChange(listener: (change: UnitStateChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.bus.removeListener("message", this.onMessage);
    this.listeners.clear();
    this.bus.disconnect();
    await Promise.resolve();
  }

  private watch(name: string): void {
    this.watched.set(unitObjectPath(name), name);
  }

  private handleSignal(msg: Message): void {
    if (msg.member !== "PropertiesChanged" || msg.interface !== PROPS_IFACE) return;
    const name = this.watched.get(msg.path);
    if (name === undefined) return;
    const changed = (msg.body[1] ?? {}) as Record<string, Variant<unknown> | undefined>;
    if (msg.body[0] === SERVICE_IFACE) {
      // systemd sends the Service interface's changes before the Unit's: the run is known by the time
      // the agent hears of the ended state.
      const result = stringValue(changed.Result);
      const exitedUs = uint64Value(changed.ExecMainExitTimestamp);
      if (result === undefined && exitedUs === undefined) return;
      const run = this.runs.get(name);
      this.runs.set(name, { result: result ?? run?.result, exitedUs: exitedUs ?? run?.exitedUs });
      return;
    }
    if (msg.body[0] !== UNIT_IFACE) return;
    const prev = this.last.get(name);
    const pick = (key: string, fallback: string | undefined): string | undefined => {
      const v = changed[key]?.value;
      return typeof v === "string" ? v : fallback;
    };
    const loadState = pick("LoadState", prev?.loadState);
    const activeState = pick("ActiveState", prev?.activeState);
    const subState = pick("SubState", prev?.subState);
    if (loadState !== undefined && activeState !== undefined && subState !== undefined) {
      this.emit(name, { loadState, activeState, subState });
      return;
    }
    // First signal for this unit and it did not carry all three: ask once, then signals suffice.
    this.states([name]).then(
      (s) => {
        const state = s.get(name);
        if (state && this.watched.has(msg.path)) this.emit(name, state);
      },
      () => undefined, // the next signal or the agent's own states() call reports it
    );
  }

  private emit(name: string, state: SystemdUnitState): void {
    const prev = this.last.get(name);
    if (prev && prev.loadState === state.loadState && prev.activeState === state.activeState && prev.subState === state.subState) return;
    this.last.set(name, state);
    for (const l of this.listeners) l({ name, state });
  }

  /** Removes our runtime link if systemd left it (only a symlink pointing at our own file). */
  private async removeRuntimeLink(name: string, file: string): Promise<void> {
    const link = path.join(this.runtimeDir, name);
    try {
      const st = await lstat(link);
      if (st.isSymbolicLink() && path.resolve(this.runtimeDir, await readlink(link)) === file) await unlink(link);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }

  private async ignoreNoSuchUnit(p: Promise<unknown>): Promise<void> {
    try {
      await p;
    } catch (err) {
      if (err instanceof SystemdError && (err.dbusName === NO_SUCH_UNIT || err.dbusName === "org.freedesktop.DBus.Error.FileNotFound")) return;
      throw err;
    }
  }

  private async call(member: string, signature: string, body: unknown[], signal?: AbortSignal, what = member): Promise<Message> {
    try {
      return await this.callRaw(SYSTEMD, MANAGER_PATH, MANAGER_IFACE, member, signature, body, signal);
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      const name = dbusName(err);
      const retriable = name === undefined || name.startsWith("org.freedesktop.DBus.Error.") && name !== "org.freedesktop.DBus.Error.InvalidArgs";
      throw new SystemdError(`Cannot ${what} through systemd: ${describe(err)}`, name, retriable, { cause: err });
    }
  }

  /** One D-Bus method call, bounded by a timeout (dbus-next never times out) and the signal. */
  private callRaw(dest: string, objPath: string, iface: string, member: string, signature: string, body: unknown[], signal?: AbortSignal): Promise<Message> {
    if (this.closed) return Promise.reject(new Error(`Cannot call ${member}: the D-Bus unit manager is closed`));
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const msg = new Message({ destination: dest, path: objPath, interface: iface, member, signature, body });
    return new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no answer from ${dest} within ${this.callTimeoutMs} ms`));
      }, this.callTimeoutMs);
      const onAbort = (): void => {
        cleanup();
        reject(abortReason(signal!));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.bus.call(msg).then(
        (reply) => {
          cleanup();
          if (reply) resolve(reply);
          else reject(new Error(`${member} returned no reply`));
        },
        (err: unknown) => {
          cleanup();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }
}

function dbusName(err: unknown): string | undefined {
  if (err instanceof DBusError) return err.type;
  if (err instanceof SystemdError) return err.dbusName;
  return undefined;
}

function describe(err: unknown): string {
  if (err instanceof DBusError) return `${err.type}: ${err.text}`;
  return err instanceof Error ? err.message : String(err);
}
