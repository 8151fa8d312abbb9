/**
 * Drives rolling deployments. Runs on every engine-enabled fleetd but acts only while its engine leads:
 * every tick it reads the running rollouts (`P/deployments/`), decides one step per template
 * (`rollout-step.ts`) and writes the step's unit changes, then the new rollout record with the last of
 * them, in transactions guarded by the leader key and by the revisions it decided from
 * (`step-transactions.ts`). Nothing lives only in memory, so a new leader (engine failover) resumes a
 * rollout where the old one left it, and so does the next step after a transaction that failed.
 */
import { systemClock, type Clock } from "../../lib/async/clock";
import { isRetriable } from "../registry/errors";
import type { EtcdStore } from "../registry/etcd-store";
import { parseRecord, type UnitRecord } from "../registry/keys";
import { isTemplate } from "../../lib/unit";
import type { ICompare, IRequestOp } from "etcd3";
import { deploymentKey, deploymentsPrefix, isRunning, type DeploymentRecord, type RolloutRecord } from "./records";
import { encodeDeployment } from "./record-codec";
import { step } from "./rollout-step";
import { packStep, type StepWrite } from "./step-transactions";
import { readRolloutTarget } from "./global-view";

/**
 * Unit changes per step: written in transactions etcd accepts (`step-transactions.ts`, about 100
 * changes each), so a step of 1,000 is about 10 transactions. At one transaction per step (100
 * changes), rolling 10,000 instances at 100 % took 100 steps, each reading the template's 30,000 keys.
 */
const MAX_STEP_CHANGES = 1_000;

/** What the controller needs of leader election (the engine's `LeaderElection`). */
export interface LeadershipView {
  readonly isLeader: boolean;
  leaderGuard(): ICompare;
}

export interface DeployControllerEvent {
  level: "debug" | "info" | "warn" | "error";
  message: string;
}

export interface DeployControllerOptions {
  store: EtcdStore;
  leadership: LeadershipView;
  /** Tick while a rollout runs. Default 100 ms. */
  tickMs?: number;
  /** Tick while none runs (a poll of `P/deployments/`). Default 500 ms. */
  idleTickMs?: number;
  /** Time for deadlines and ticks (a ManualClock in tests). Default the system clock. */
  clock?: Clock;
  onEvent?: (e: DeployControllerEvent) => void;
}

export class DeployController {
  private readonly clock: Clock;
  private readonly emit: (e: DeployControllerEvent) => void;
  private readonly lastMessage = new Map<string, string>();
  /** The last tick wrote a step that used its whole allowance: more is ready, tick again at once. */
  private saturated = false;
  /** How long the last tick took (ms). */
  private lastTickMs = 0;

  constructor(private readonly options: DeployControllerOptions) {
    this.clock = options.clock ?? systemClock;
    this.emit = options.onEvent ?? (() => undefined);
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let busy = false;
      const started = this.clock.now();
      try {
        if (this.options.leadership.isLeader) busy = await this.tick(signal);
      } catch (err) {
        if (signal.aborted) return;
        this.emit({ level: isRetriable(err) ? "warn" : "error", message: `Deploy controller: ${(err as Error).message}; retrying` });
      }
      try {
        this.lastTickMs = this.clock.now() - started;
        await this.clock.sleep(this.pause(busy), signal);
      } catch {
        return; // aborted
      }
    }
  }

  /**
   * Wait before the next tick: none after a full step (more is ready); while rolling `tickMs`, but at
   * least twice the last tick, so a tick that reads a large template (10,000 instances: 30,000 keys,
   * ~100 ms) keeps the controller below a third of a core while instances start; idle `idleTickMs`.
   */
  private pause(busy: boolean): number {
    if (this.saturated) return 0;
    if (!busy) return this.options.idleTickMs ?? 500;
    return Math.max(this.options.tickMs ?? 100, 2 * this.lastTickMs);
  }

  /** One pass over the running rollouts; true when any is still running. */
  async tick(signal?: AbortSignal): Promise<boolean> {
    const { store } = this.options;
    const { kvs } = await store.range("read deployments", deploymentsPrefix(store.keys), signal ? { signal } : {});
    this.saturated = false;
    let busy = false;
    for (const kv of kvs) {
      // Only whether it runs: advance() reads the record again with the template (expanding it is not free at 10,000 instances).
      const record = parseRecord<DeploymentRecord>(kv.key, kv.value);
      if (!isRunning(record)) continue;
      busy = (await this.advance(record.template, signal)) || busy;
    }
    return busy;
  }

  /** Decides and writes one step of a template's rollout; true while it still runs. */
  private async advance(template: string, signal?: AbortSignal): Promise<boolean> {
    const { store, leadership } = this.options;
    const k = store.keys;
    const view = await readRolloutTarget(store, template, signal);
    const dep = view.deployment;
    if (!dep || !isRunning(dep.record)) return false;
    const rollout = dep.record.rollout;
    const global = !isTemplate(template);
    const out = step({ template, rollout, instances: view.instances, now: this.clock.now(), maxChanges: MAX_STEP_CHANGES, noun: global ? "machines" : "instances" });
    const textOf = (hash: string): string | undefined => dep.record.revisions.find((r) => r.hash === hash)?.text ?? rollout.bodies[hash];
    const body = (hash: string): NonNullable<StepWrite["body"]> => {
      const text = textOf(hash);
      if (text === undefined) throw new Error(`Cannot roll ${template}: the text of body ${hash} is in neither its history nor the rollout record`);
      return { hash, op: { request_put: { key: Buffer.from(k.body(hash)), value: Buffer.from(text) } } };
    };
    const put = (key: string, value: unknown): IRequestOp => ({ request_put: { key: Buffer.from(key), value: Buffer.from(typeof value === "string" ? value : JSON.stringify(value)) } });
    const writes: StepWrite[] = [];
    const last: StepWrite[] = [];
    if (global) {
      // One unit record: the machines still kept on another body (`machineHashes`), all of them in one write.
      const tpl = view.templateRecord;
      const next = tpl && globalRecord(tpl.record, out.updates, out.rollout);
      if (tpl && next && JSON.stringify(next) !== JSON.stringify(tpl.record)) {
        const [first, ...more] = new Set([next.hash, ...out.updates.map((u) => u.toHash)]);
        (out.rollout.phase === "done" ? last : writes).push({
          op: put(k.unit(template), next),
          compare: { key: Buffer.from(k.unit(template)), target: "Mod", result: "Equal", mod_revision: tpl.modRevision },
          body: body(first!),
        });
        for (const hash of more) writes.unshift({ op: body(hash).op });
      }
    }
    for (const u of global ? [] : out.updates) {
      const facts = view.instances.get(u.instance)!;
      const record: UnitRecord = { ...facts.record, hash: u.toHash };
      writes.push({ op: put(k.unit(u.instance), record), compare: { key: Buffer.from(k.unit(u.instance)), target: "Mod", result: "Equal", mod_revision: facts.modRevision }, body: body(u.toHash) });
    }
    for (const name of out.createSurge) {
      const record: UnitRecord = { name, hash: rollout.toHash, desiredState: "launched", global: false };
      writes.push({ op: put(k.unit(name), record), body: body(rollout.toHash) });
    }
    for (const name of out.destroySurge) writes.push({ op: { request_delete_range: { key: Buffer.from(k.unit(name)) } } });
    const next: DeploymentRecord = { ...dep.record, rollout: out.rollout };
    if (out.rollout.phase === "done") {
      this.finish(next, out.rollout);
      const tpl = view.templateRecord;
      if (!global && out.rollout.outcome !== "succeeded" && tpl && tpl.record.hash !== rollout.fromHash) {
        // New instances (scale) must not get the body that failed.
        last.push({ op: put(k.unit(template), { ...tpl.record, hash: rollout.fromHash }), body: body(rollout.fromHash) });
      }
    }
    last.push({ op: put(deploymentKey(k, template), encodeDeployment(next)) });
    if (writes.length === 0 && last.length === 1 && JSON.stringify(rollout) === JSON.stringify(out.rollout)) return true; // nothing to write
    if (!leadership.isLeader) return false;
    const guards: ICompare[] = [leadership.leaderGuard(), { key: Buffer.from(deploymentKey(k, template)), target: "Mod", result: "Equal", mod_revision: dep.modRevision }];
    for (const txn of packStep(writes, last, { guards })) {
      const res = await store.txn(`advance the rollout of ${template}`, { compare: [...guards, ...txn.compares], success: txn.ops }, signal);
      if (!res.succeeded) {
        this.emit({ level: "debug", message: `Rollout of ${template}: etcd changed under the step (another writer or lost leadership); deciding again` });
        return true;
      }
    }
    // A step that used its whole allowance has more ready: no 100 ms wait before the next.
    if (out.updates.length + out.createSurge.length + out.destroySurge.length >= MAX_STEP_CHANGES) this.saturated = true;
    if (this.lastMessage.get(template) !== out.rollout.message) {
      this.lastMessage.set(template, out.rollout.message);
      this.emit({ level: out.rollout.outcome === "failed" || out.rollout.outcome === "rolled-back" ? "warn" : "info", message: `Rollout of ${template} to revision ${rollout.revision}: ${out.rollout.message}` });
    }
    return out.rollout.phase !== "done";
  }

  /** Records the outcome on the revision. */
  private finish(record: DeploymentRecord, rollout: RolloutRecord): void {
    const rev = record.revisions.find((r) => r.revision === rollout.revision);
    if (rev && rollout.outcome) rev.outcome = rollout.outcome;
    record.revisions = [...record.revisions];
  }
}

/**
 * A global unit's record after a step: `updates` move machines to a hash (the unit's own: no longer
 * listed); once the rollout is done nothing is kept, and a rollout that did not succeed puts the unit
 * back on the body it had (new machines must not get the body that failed).
 */
export function globalRecord(record: UnitRecord, updates: readonly { instance: string; toHash: string }[], rollout: RolloutRecord): UnitRecord {
  const { machineHashes, ...rest } = record;
  if (rollout.phase === "done") return rollout.outcome === "succeeded" ? rest : { ...rest, hash: rollout.fromHash };
  const kept: Record<string, string> = { ...machineHashes };
  for (const u of updates) {
    if (u.toHash === record.hash) delete kept[u.instance];
    else kept[u.instance] = u.toHash;
  }
  return Object.keys(kept).length > 0 ? { ...rest, machineHashes: kept } : rest;
}
