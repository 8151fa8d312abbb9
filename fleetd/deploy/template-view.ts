/**
 * One consistent read of everything about a template: its unit record, its deployment record, and each
 * instance's record, placement, agent state and unscheduled reason (prefix ranges on `<prefix>@`, so
 * the cost is the template's instances, not the cluster's units).
 */
import { parseUnitName } from "../../lib/unit";
import type { EtcdStore, StoredKv } from "../registry/etcd-store";
import { parseRecord, type StateRecord, type UnitRecord } from "../registry/keys";
import { deploymentKey, type DeploymentRecord } from "./records";
import { decodeDeployment } from "./record-codec";
import type { InstanceView } from "./rollout-step";

export interface InstanceFacts extends InstanceView {
  name: string;
  record: UnitRecord;
  modRevision: number;
  machine: string | undefined;
}

export interface TemplateView {
  template: string;
  revision: number;
  templateRecord: { record: UnitRecord; modRevision: number } | undefined;
  deployment: { record: DeploymentRecord; modRevision: number } | undefined;
  /** Every instance of the template (surge ones included), by name. */
  instances: Map<string, InstanceFacts>;
}

/** Whether an instance name is a surge instance of a rollout (`web@surge-3-1.service`). */
export function isSurgeInstance(name: string): boolean {
  return parseUnitName(name).instance.startsWith("surge-");
}

/** Numbered instances (`web@7.service` → 7), for scale. */
export function instanceNumber(name: string): number | undefined {
  const i = parseUnitName(name).instance;
  return /^[1-9]\d*$/.test(i) ? Number(i) : undefined;
}

/** Sorts instance names with numbers in numeric order. */
export function byInstance(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

export async function readTemplate(store: EtcdStore, template: string, signal?: AbortSignal): Promise<TemplateView> {
  const k = store.keys;
  const { prefix, suffix } = parseUnitName(template);
  const stem = `${prefix}@`;
  const { revision, results } = await store.rangeMany(
    `read template ${template} and its instances`,
    [
      { prefix: k.unit(template), exact: true },
      { prefix: deploymentKey(k, template), exact: true },
      { prefix: k.unit(stem) },
      { prefix: k.placement(stem) },
      { prefix: k.statesAll + stem },
      { prefix: k.unscheduled(stem) },
    ],
    signal,
  );
  const [tpl = [], dep = [], units = [], placements = [], states = [], reasons = []] = results;
  const tail = (kv: StoredKv, base: string): string => kv.key.slice(base.length);
  const isOurs = (name: string): boolean => {
    const p = parseUnitName(name);
    return p.prefix === prefix && p.suffix === suffix && p.instance !== "";
  };
  const placementOf = new Map(placements.map((kv) => [tail(kv, k.placements), kv.value.toString("utf8")]));
  const reasonOf = new Map(reasons.map((kv) => [tail(kv, k.unscheduledAll), kv.value.toString("utf8")]));
  const stateOf = new Map(states.map((kv) => [tail(kv, k.statesAll), parseRecord<StateRecord>(kv.key, kv.value)]));
  const instances = new Map<string, InstanceFacts>();
  for (const kv of units) {
    const name = tail(kv, k.units);
    if (!isOurs(name)) continue;
    const record = parseRecord<UnitRecord>(kv.key, kv.value);
    const machine = placementOf.get(name);
    const state = machine !== undefined ? stateOf.get(`${name}/${machine}`) : undefined;
    const active = state !== undefined && state.hash === record.hash && state.activeState === "active";
    const facts: InstanceFacts = { name, record, modRevision: kv.modRevision, machine, hash: record.hash, active, idle: record.desiredState !== "launched" };
    const reason = reasonOf.get(name);
    if (machine === undefined && reason !== undefined && record.desiredState !== "inactive") facts.unschedulable = summaryOf(reason);
    instances.set(name, facts);
  }
  const t = tpl[0];
  const d = dep[0];
  return {
    template,
    revision,
    templateRecord: t ? { record: parseRecord<UnitRecord>(t.key, t.value), modRevision: t.modRevision } : undefined,
    deployment: d ? { record: decodeDeployment(d.key, d.value), modRevision: d.modRevision } : undefined,
    instances,
  };
}

function summaryOf(json: string): string {
  try {
    return (JSON.parse(json) as { summary?: string }).summary ?? "no machine can run it";
  } catch {
    return "no machine can run it";
  }
}
