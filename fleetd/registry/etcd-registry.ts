/**
 * `Registry` on etcd v3: what the HTTP API reads and writes. Every read is one consistent snapshot (one
 * transaction of ranges), every write a compare-guarded transaction. Placement and schedule keys are the
 * engine's; the API only writes units, bodies and dynamic metadata.
 */
import type { ICompare, IRequestOp } from "etcd3";
import type { ApiMachine, ApiUnit, ApiUnitState, ApiUnscheduledReason, UnitTargetState } from "../../lib/api/types";
import { buildUnit, isInstance, isTemplate } from "../../lib/unit";
import { BodyCache } from "./body-cache";
import { ConflictError, TemplateActivationError, UnitNotFoundError } from "./errors";
import type { EtcdStore, StoredKv } from "./etcd-store";
import { Keys, isCompleted, parseRecord, type MachineRecord, type StateRecord, type UnitRecord, type UnscheduledRecord } from "./keys";
import type { CreateUnitInput, CreateUnitOutcome, MetadataChangeInput, Registry, StateFilter } from "./registry";
import { batcherRecordIo, updateRecord, type RecordIo } from "./record-update";
import { TxnBatcher, type GuardedWrite } from "./txn-batcher";
import { MAX_TXN_BYTES, opBytes } from "./txn-limits";

/** Compare-and-swap attempts before a write reports a conflict (only concurrent writers cause retries). */
const CAS_ATTEMPTS = 5;

export interface EtcdRegistryOptions {
  /** Whether this fleetd holds its presence key right now (drives the API's 503). */
  isRegistered: () => boolean;
  /** Why this fleetd is not registered, when not for etcd (see `Registry.unregisteredReason`). Default: never known. */
  unregisteredReason?: () => string | undefined;
  /** etcd's `--max-txn-ops`, the size bound of batched transactions. Default 128. */
  maxTxnOps?: number;
}

export class EtcdRegistry implements Registry {
  private readonly keys: Keys;
  private readonly bodies: BodyCache;
  /** Concurrent single-unit reads and writes (one per API request) share transactions. */
  readonly batcher: TxnBatcher;
  private readonly recordIo: RecordIo;

  constructor(
    private readonly store: EtcdStore,
    private readonly options: EtcdRegistryOptions,
  ) {
    this.keys = store.keys;
    this.bodies = new BodyCache(store);
    this.batcher = new TxnBatcher(store, options.maxTxnOps === undefined ? {} : { maxTxnOps: options.maxTxnOps });
    this.recordIo = batcherRecordIo(this.batcher);
  }

  isRegistered(): boolean {
    return this.options.isRegistered();
  }

  unregisteredReason(): string | undefined {
    return this.options.isRegistered() ? undefined : this.options.unregisteredReason?.();
  }

  async listUnits(signal?: AbortSignal): Promise<ApiUnit[]> {
    const k = this.keys;
    const {
      results: [units = [], placements = [], states = [], reasons = []],
    } = await this.store.rangeMany("list units", [{ prefix: k.units }, { prefix: k.placements }, { prefix: k.statesAll }, { prefix: k.unscheduledAll }], signal);
    const placementOf = new Map(placements.map((kv) => [kv.key.slice(k.placements.length), kv.value.toString("utf8")]));
    const reasonOf = new Map(reasons.map((kv) => [kv.key.slice(k.unscheduledAll.length), kv]));
    const stateOf = new Map<string, StateRecord>();
    for (const kv of states) stateOf.set(kv.key.slice(k.statesAll.length), parseRecord<StateRecord>(kv.key, kv.value));
    const records = units.map((kv) => parseRecord<UnitRecord>(kv.key, kv.value));
    await this.bodies.load(
      records.map((r) => r.hash),
      signal,
    );
    return records.map((r) => this.toApiUnit(r, placementOf.get(r.name), (m) => stateOf.get(`${r.name}/${m}`), reasonOf.get(r.name))).sort(byName);
  }

  async getUnit(name: string, signal?: AbortSignal): Promise<ApiUnit | undefined> {
    const k = this.keys;
    const {
      results: [unit = [], placement = [], states = [], reason = []],
    } = await this.batcher.read(
      [{ prefix: k.unit(name), exact: true }, { prefix: k.placement(name), exact: true }, { prefix: k.state(name) }, { prefix: k.unscheduled(name), exact: true }],
      signal,
    );
    const kv = unit[0];
    if (!kv) return undefined;
    const record = parseRecord<UnitRecord>(kv.key, kv.value);
    await this.bodies.load([record.hash], signal);
    const stateOf = new Map(states.map((s) => [s.key.slice(k.state(name).length), parseRecord<StateRecord>(s.key, s.value)]));
    return this.toApiUnit(record, placement[0]?.value.toString("utf8"), (m) => stateOf.get(m), reason[0]);
  }

  private toApiUnit(record: UnitRecord, machine: string | undefined, stateOn: (machine: string) => StateRecord | undefined, reason?: StoredKv): ApiUnit {
    const body = this.bodies.get(record.hash);
    const unit: ApiUnit = { name: record.name, options: body ? body.options : [], desiredState: record.desiredState };
    if (record.global) return unit;
    unit.currentState = "inactive";
    if (isCompleted(record)) unit.completed = { machineID: record.completed!.machineId, at: record.completed!.at };
    if (machine !== undefined) {
      unit.machineID = machine;
      const state = stateOn(machine);
      if (state) unit.currentState = state.launched ? "launched" : "loaded";
    } else if (reason && record.desiredState !== "inactive") {
      // Shown only while it applies: the engine deletes it right after placing the unit or when the unit
      // goes inactive, but a reader may come in between.
      unit.unscheduledReason = readReason(reason);
    }
    return unit;
  }

  async createUnit(input: CreateUnitInput, signal?: AbortSignal): Promise<CreateUnitOutcome> {
    const unit = buildUnit(input.name, input.options);
    const record: UnitRecord = { name: unit.name, hash: unit.hash, desiredState: input.desiredState ?? "inactive", global: unit.requirements.global };
    const key = this.keys.unit(unit.name);
    const write = (expect: GuardedWrite["expect"]): GuardedWrite => ({
      key,
      expect,
      puts: [{ key, value: Buffer.from(JSON.stringify(record)) }],
      // The body is written with every create (once per batched transaction) so a concurrent body
      // clean-up (compare on its revision) can never remove a body that a unit has just started to use.
      shared: [{ key: this.keys.body(unit.hash), value: Buffer.from(unit.text) }],
    });
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const res = await this.batcher.write(write("absent"), signal);
      if (res.written) {
        this.bodies.remember(unit.hash, unit.text, unit.options);
        return "created";
      }
      const existing = res.current;
      if (!existing) continue; // deleted in between: try the create again
      const old = parseRecord<UnitRecord>(existing.key, existing.value);
      if (old.hash === unit.hash) return "unchanged";
      const replaced = await this.batcher.write(write(existing.modRevision), signal);
      if (replaced.written) {
        this.bodies.remember(unit.hash, unit.text, unit.options);
        return "replaced";
      }
    }
    throw new ConflictError(`create unit ${unit.name}`);
  }

  /**
   * Bulk create-only: units that do not exist yet are created in as few transactions as the op and
   * byte limits allow (each body written once per transaction); a unit that already exists falls back to
   * {@link createUnit} (unchanged / replaced). Returns the outcome per unit, in input order.
   */
  async createUnits(inputs: readonly CreateUnitInput[], options: { maxTxnOps?: number; signal?: AbortSignal } = {}): Promise<CreateUnitOutcome[]> {
    const maxOps = options.maxTxnOps ?? 128;
    const units = inputs.map((input) => ({ input, unit: buildUnit(input.name, input.options) }));
    const outcomes: CreateUnitOutcome[] = new Array<CreateUnitOutcome>(units.length);
    let i = 0;
    while (i < units.length) {
      const compares: ICompare[] = [];
      const ops: IRequestOp[] = [];
      const bodies = new Set<string>();
      const start = i;
      let bytes = 0;
      while (i < units.length) {
        const { input, unit } = units[i]!;
        const needBody = !bodies.has(unit.hash);
        const key = Buffer.from(this.keys.unit(unit.name));
        const record: UnitRecord = { name: unit.name, hash: unit.hash, desiredState: input.desiredState ?? "inactive", global: unit.requirements.global };
        const unitOps: IRequestOp[] = [{ request_put: { key, value: Buffer.from(JSON.stringify(record)) } }];
        if (needBody) unitOps.push({ request_put: { key: Buffer.from(this.keys.body(unit.hash)), value: Buffer.from(unit.text) } });
        const size = key.length + unitOps.reduce((n, op) => n + opBytes(op), 0);
        if (compares.length + 1 > maxOps || ops.length + unitOps.length > maxOps || (i > start && bytes + size > MAX_TXN_BYTES)) break;
        compares.push({ key, target: "Version", result: "Equal", version: 0 });
        ops.push(...unitOps);
        bytes += size;
        if (needBody) bodies.add(unit.hash);
        i++;
      }
      const res = await this.store.txn(`create ${i - start} units`, { compare: compares, success: ops }, options.signal);
      if (res.succeeded) {
        for (let j = start; j < i; j++) {
          const { unit } = units[j]!;
          this.bodies.remember(unit.hash, unit.text, unit.options);
          outcomes[j] = "created";
        }
      } else {
        // Some exist already: decide one by one (rare; keeps the per-unit semantics exact).
        for (let j = start; j < i; j++) outcomes[j] = await this.createUnit(units[j]!.input, options.signal);
      }
    }
    return outcomes;
  }

  async setDesiredState(name: string, state: UnitTargetState, signal?: AbortSignal): Promise<void> {
    await this.updateUnit(
      name,
      (record) => {
        if (state !== "inactive" && isTemplate(name)) throw new TemplateActivationError(name);
        if (record.desiredState === state) return undefined;
        // A new desired state runs a completed batch unit again (stop then start re-runs it).
        const { completed: _done, ...rest } = record;
        return { ...rest, desiredState: state };
      },
      signal,
    );
  }

  /** Read-modify-write of one unit record with compare on its revision; `change` returns undefined for no-op. */
  private async updateUnit(name: string, change: (record: UnitRecord) => UnitRecord | undefined, signal?: AbortSignal): Promise<void> {
    const res = await updateRecord(this.recordIo, this.keys.unit(name), `update unit ${name}`, change, { attempts: CAS_ATTEMPTS, ...(signal ? { signal } : {}) });
    if (!res.found) throw new UnitNotFoundError(name);
  }

  async destroyUnit(name: string, signal?: AbortSignal): Promise<void> {
    const key = Buffer.from(this.keys.unit(name));
    // Placement and schedule entries are removed by the engine, the only writer of those keys. A
    // template's (or global unit's) revision history and rollout go with it: submitted again, it starts
    // a new history (the old one let `history` show a template that no longer existed and `rollback`
    // pick its revisions). Instances have none.
    const history: IRequestOp[] = !isInstance(name) ? [{ request_delete_range: { key: Buffer.from(this.keys.deployment(name)) } }] : [];
    const res = await this.store.txn(
      `destroy unit ${name}`,
      { compare: [{ key, target: "Version", result: "Greater", version: 0 }], success: [{ request_delete_range: { key } }, ...history] },
      signal,
    );
    if (!res.succeeded) throw new UnitNotFoundError(name);
  }

  async listMachines(signal?: AbortSignal): Promise<ApiMachine[]> {
    const k = this.keys;
    const {
      results: [machines = [], metadata = []],
    } = await this.store.rangeMany("list machines", [{ prefix: k.machines }, { prefix: k.metadataAll }], signal);
    const dynamic = groupMetadata(k, metadata);
    return machines
      .map((kv) => {
        const m = parseRecord<MachineRecord>(kv.key, kv.value);
        const merged = mergeMetadata(m.metadata, dynamic.get(m.id));
        const out: ApiMachine = { id: m.id };
        if (m.publicIP) out.primaryIP = m.publicIP;
        if (Object.keys(merged).length > 0) out.metadata = merged;
        if (m.capacity !== undefined) out.capacity = { cpus: m.capacity.cpus, memory: m.capacity.memory };
        return out;
      })
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * Applies metadata changes all or nothing, in one etcd transaction (so concurrent patches never
   * interleave: the later one wins key by key). Changes of one key apply in order (the last one wins).
   * A removal writes "" (see MetadataChangeInput).
   */
  async patchMachineMetadata(changes: readonly MetadataChangeInput[], signal?: AbortSignal): Promise<void> {
    const final = new Map<string, string>();
    for (const c of changes) {
      const key = this.keys.metadata(c.machineID, c.key);
      final.delete(key); // keep the write order of the last change of each key
      final.set(key, c.value ?? "");
    }
    if (final.size === 0) return;
    const what = `patch metadata ${[...final.keys()].map((k) => k.slice(this.keys.metadataAll.length)).join(", ")}`;
    await this.store.txn(what, { success: [...final].map(([k, v]) => ({ request_put: { key: Buffer.from(k), value: Buffer.from(v) } })) }, signal);
  }

  async listStates(filter: StateFilter = {}, signal?: AbortSignal): Promise<ApiUnitState[]> {
    const k = this.keys;
    const prefix = filter.unitName !== undefined ? k.state(filter.unitName) : k.statesAll;
    const { kvs } = await this.store.range("list unit states", prefix, signal ? { signal } : {});
    const out: ApiUnitState[] = [];
    for (const kv of kvs) {
      const parts = Keys.split2(kv.key.slice(k.statesAll.length));
      if (!parts) continue;
      const [name, machineID] = parts;
      if (filter.machineID !== undefined && machineID !== filter.machineID) continue;
      const s = parseRecord<StateRecord>(kv.key, kv.value);
      out.push({ name, hash: s.hash, machineID, systemdLoadState: s.loadState, systemdActiveState: s.activeState, systemdSubState: s.subState });
    }
    return out.sort((a, b) => cmp(a.name, b.name) || cmp(a.machineID, b.machineID));
  }
}

/** The engine's record of why a unit is unscheduled; an unreadable one is reported as such, not thrown. */
function readReason(kv: StoredKv): ApiUnscheduledReason {
  try {
    return parseRecord<UnscheduledRecord>(kv.key, kv.value);
  } catch (err) {
    return { summary: (err as Error).message, excludedBy: {}, machines: [], moreMachines: 0, since: "" };
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byName(a: { name: string }, b: { name: string }): number {
  return cmp(a.name, b.name);
}

/** Dynamic metadata keys `P/metadata/<id>/<key>` grouped by machine. */
export function groupMetadata(keys: Keys, kvs: readonly StoredKv[]): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const kv of kvs) {
    const parts = Keys.split2(kv.key.slice(keys.metadataAll.length));
    if (!parts) continue;
    const [id, key] = parts;
    let m = out.get(id);
    if (!m) out.set(id, (m = {}));
    m[key] = kv.value.toString("utf8");
  }
  return out;
}

/** fleet's merge: dynamic wins; a dynamic "" deletes the key (also hiding a static value). */
export function mergeMetadata(staticMeta: Readonly<Record<string, string>>, dynamic: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const merged: Record<string, string> = { ...staticMeta };
  for (const [key, value] of Object.entries(dynamic ?? {})) {
    if (value === "") delete merged[key];
    else merged[key] = value;
  }
  return merged;
}
