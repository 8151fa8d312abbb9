/**
 * A global unit (`[X-Fleet] Global=true`) seen as a rollout target: one consistent read of its unit
 * record, its deployment record and the states its agents report (`P/state/<name>/`), shaped like a
 * template's view so that the same rollout rules (`rollout-step.ts`) roll it one machine at a time.
 * Each machine that reports a state for the unit is one "instance", named by its machine ID: its hash
 * is the body the engine has it run (`hashOn`: the unit's hash, or the one `machineHashes` keeps it
 * on), and it is active when its agent reports that body active. A machine that reports no state (it
 * left, or does not match the unit's metadata) is not rolled: the engine gives it the unit's hash.
 */
import { isTemplate } from "../../lib/unit";
import { hashOn, parseRecord, type StateRecord, type UnitRecord } from "../registry/keys";
import type { EtcdStore } from "../registry/etcd-store";
import { decodeDeployment } from "./record-codec";
import { deploymentKey } from "./records";
import { readTemplate, type InstanceFacts, type TemplateView } from "./template-view";

export async function readGlobal(store: EtcdStore, name: string, signal?: AbortSignal): Promise<TemplateView> {
  const k = store.keys;
  const statePrefix = `${k.statesAll}${name}/`;
  const { revision, results } = await store.rangeMany(
    `read global unit ${name} and its machines' states`,
    [
      { prefix: k.unit(name), exact: true },
      { prefix: deploymentKey(k, name), exact: true },
      { prefix: statePrefix },
    ],
    signal,
  );
  const [unit = [], dep = [], states = []] = results;
  const u = unit[0];
  const d = dep[0];
  const record = u ? parseRecord<UnitRecord>(u.key, u.value) : undefined;
  const instances = new Map<string, InstanceFacts>();
  if (u && record) {
    for (const kv of states) {
      const machine = kv.key.slice(statePrefix.length);
      const state = parseRecord<StateRecord>(kv.key, kv.value);
      const hash = hashOn(record, machine);
      instances.set(machine, {
        name: machine,
        record: { ...record, hash },
        modRevision: u.modRevision,
        machine,
        hash,
        active: state.hash === hash && state.activeState === "active",
        idle: record.desiredState !== "launched",
      });
    }
  }
  return {
    template: name,
    revision,
    templateRecord: u && record ? { record, modRevision: u.modRevision } : undefined,
    deployment: d ? { record: decodeDeployment(d.key, d.value), modRevision: d.modRevision } : undefined,
    instances,
  };
}

/** The rollout target `name` (not an instance): a template and its instances, or a global unit and its machines. */
export function readRolloutTarget(store: EtcdStore, name: string, signal?: AbortSignal): Promise<TemplateView> {
  return isTemplate(name) ? readTemplate(store, name, signal) : readGlobal(store, name, signal);
}
