/**
 * The etcd key layout under a prefix `P` (default `/fleet/`), and the JSON records stored in it.
 * See `fleetd/REGISTRY.md` for who writes/watches what and why it scales.
 */
import type { ApiUnscheduledReason, UnitTargetState } from "../../lib/api/types";

/** `P/machines/<id>` (on the machine's lease): presence and static facts. */
export interface MachineRecord {
  id: string;
  publicIP: string;
  /** Static metadata from the machine's configuration. */
  metadata: Record<string, string>;
  /** fleetd version that registered. */
  version: string;
  /** The machine does not take part in leader election (`disable_engine`). */
  disableEngine: boolean;
  /** What the machine offers units (milli-CPUs, bytes): config or host. Absent in records of older fleetd. */
  capacity?: { cpus: number; memory: number };
  /** Set just before a graceful leave: its units may move at once, no grace for a comeback. */
  leaving?: boolean;
}

/** `P/units/<name>` (permanent): the unit and what the operator wants. */
export interface UnitRecord {
  name: string;
  /** SHA1 of the canonical unit text; the text is at `P/bodies/<hash>`. */
  hash: string;
  desiredState: UnitTargetState;
  /** `[X-Fleet] Global=true`: scheduled on every matching machine, never placed. */
  global: boolean;
  /**
   * A batch unit (`Type=oneshot`) ran to success: written by the agent that ran it, only while the
   * record is unchanged (compare on its revision). Applies while `hash` is the unit's hash; any
   * change of desired state or body drops it, so the unit runs again.
   */
  completed?: UnitCompletion;
  /**
   * A global unit in the middle of a rolling deploy: machines that keep another body than `hash` for
   * now (machine ID → hash). Written only by the deploy (API at its start, then the leading engine's
   * deploy controller, a few machines per step); absent otherwise. A machine not listed runs `hash`.
   */
  machineHashes?: Record<string, string>;
}

/** The body `record` runs on `machineId`: its per-machine hash during a global unit's rollout, else its hash. */
export function hashOn(record: UnitRecord, machineId: string): string {
  return record.machineHashes?.[machineId] ?? record.hash;
}

/** Every body `record` uses (its hash, and those machines keep during a rollout). */
export function hashesOf(record: UnitRecord): string[] {
  return record.machineHashes ? [...new Set([record.hash, ...Object.values(record.machineHashes)])] : [record.hash];
}

/** When and where a batch unit's body ran to success. */
export interface UnitCompletion {
  hash: string;
  machineId: string;
  /** ISO 8601. */
  at: string;
}

/** Whether `record` is completed with its current body. */
export function isCompleted(record: UnitRecord): boolean {
  return record.completed !== undefined && record.completed.hash === record.hash && !record.global;
}

/** `P/schedule/<machine>/<name>` (permanent, written by the engine): work for one agent. */
export interface ScheduleRecord {
  hash: string;
  /** loaded or launched (inactive units are not scheduled). */
  desiredState: UnitTargetState;
  /** The canonical unit text, so the agent needs no further read. */
  text: string;
}

/** `P/state/<name>/<machine>` (on the agent's lease): systemd's view plus the launched flag. */
export interface StateRecord {
  hash: string;
  loadState: string;
  activeState: string;
  subState: string;
  /** The agent asked systemd to start the unit (fleet's "job-state" heartbeat, folded into the state). */
  launched: boolean;
}

/**
 * `P/unscheduled/<name>` (permanent, written by the leading engine only when it changes): why the unit
 * has no machine. Deleted when the unit is placed, destroyed or no longer wants a machine.
 */
export type UnscheduledRecord = ApiUnscheduledReason;

/** Builds keys under one prefix. All keys are strings; etcd sorts them bytewise. */
export class Keys {
  readonly prefix: string;
  constructor(prefix: string) {
    this.prefix = prefix.endsWith("/") ? prefix : `${prefix}/`;
  }
  get machines(): string {
    return `${this.prefix}machines/`;
  }
  machine(id: string): string {
    return `${this.machines}${id}`;
  }
  get metadataAll(): string {
    return `${this.prefix}metadata/`;
  }
  metadata(id: string, key?: string): string {
    return key === undefined ? `${this.metadataAll}${id}/` : `${this.metadataAll}${id}/${key}`;
  }
  get units(): string {
    return `${this.prefix}units/`;
  }
  unit(name: string): string {
    return `${this.units}${name}`;
  }
  get bodies(): string {
    return `${this.prefix}bodies/`;
  }
  body(hash: string): string {
    return `${this.bodies}${hash}`;
  }
  /** `P/deployments/`: each template's revision history and rollout (`fleetd/deploy/records.ts`). */
  get deployments(): string {
    return `${this.prefix}deployments/`;
  }
  deployment(template: string): string {
    return `${this.deployments}${template}`;
  }
  get placements(): string {
    return `${this.prefix}placement/`;
  }
  placement(name: string): string {
    return `${this.placements}${name}`;
  }
  get scheduleAll(): string {
    return `${this.prefix}schedule/`;
  }
  /** `P/schedule/<machine>/` or one entry of it. */
  schedule(machine: string, name?: string): string {
    return name === undefined ? `${this.scheduleAll}${machine}/` : `${this.scheduleAll}${machine}/${name}`;
  }
  get statesAll(): string {
    return `${this.prefix}state/`;
  }
  /** `P/state/<name>/` or one machine's state of it. */
  state(name: string, machine?: string): string {
    return machine === undefined ? `${this.statesAll}${name}/` : `${this.statesAll}${name}/${machine}`;
  }
  /** `P/unscheduled/`: why each unit that wants a machine has none (engine-written, see REGISTRY.md). */
  get unscheduledAll(): string {
    return `${this.prefix}unscheduled/`;
  }
  unscheduled(name: string): string {
    return `${this.unscheduledAll}${name}`;
  }
  get leader(): string {
    return `${this.prefix}engine/leader`;
  }

  /** Splits `rest` after a folder prefix into its two path parts (`<a>/<b>`). */
  static split2(rest: string): [string, string] | undefined {
    const i = rest.indexOf("/");
    if (i <= 0 || i === rest.length - 1) return undefined;
    return [rest.slice(0, i), rest.slice(i + 1)];
  }
}

/** etcd's range end for "every key starting with `prefix`". */
export function prefixEnd(prefix: string): Buffer {
  const buf = Buffer.from(prefix);
  for (let i = buf.length - 1; i >= 0; i--) {
    if (buf[i]! < 0xff) {
      const end = Buffer.from(buf.subarray(0, i + 1));
      end[i] = end[i]! + 1;
      return end;
    }
  }
  return Buffer.from([0]);
}

/** Parses a JSON record, naming the key on failure (a corrupt value must not crash a loop silently). */
export function parseRecord<T>(key: string, value: Buffer | string): T {
  const text = typeof value === "string" ? value : value.toString("utf8");
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`Cannot read etcd key ${key}: its value is not valid JSON (${text.slice(0, 80)})`, { cause: err });
  }
}
