/**
 * Drives rolling deployments. Runs on every engine-enabled fleetd but acts only while its engine leads:
 * every tick it reads the running rollouts (`P/deployments/`), decides one step per template
 * (`rollout-step.ts`) and writes the step's unit changes and the new rollout record in ONE transaction
 * guarded by the leader key and by the revisions it decided from. Nothing lives only in memory, so a
 * new leader (engine failover) resumes a rollout where the old one left it.
 */
import { systemClock, type Clock } from "../../lib/async/clock";
import { isRetriable } from "../registry/errors";
import type { EtcdStore } from "../registry/etcd-store";
import type { UnitRecord } from "../registry/keys";
import { DEFAULT_MAX_TXN_OPS } from "../registry/txn-limits";
import type { ICompare, IRequestOp } from "etcd3";
import { deploymentKey, deploymentsPrefix, isRunning, type DeploymentRecord, type RolloutRecord } from "./records";
import { decodeDeployment, encodeDeployment } from "./record-codec";
import { step } from "./rollout-step";
import { readTemplate } from "./template-view";

/**
 * Unit changes per step (100): with the step's 2 guards, its bodies and the rollout record they must
 * fit etcd's 128 operations per transaction, leaving 28 for those (a step of 200 updates was refused,
 * and retried forever).
 */
const MAX_STEP_CHANGES = DEFAULT_MAX_TXN_OPS - 28;

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

  constructor(private readonly options: DeployControllerOptions) {
    this.clock = options.clock ?? systemClock;
    this.emit = options.onEvent ?? (() => undefined);
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let busy = false;
      try {
        if (this.options.leadership.isLeader) busy = await this.tick(signal);
      } catch (err) {
        if (signal.aborted) return;
        this.emit({ level: isRetriable(err) ? "warn" : "error", message: `Deploy controller: ${(err as Error).message}; retrying` });
      }
      try {
        await this.clock.sleep(this.saturated ? 0 : busy ? (this.options.tickMs ?? 100) : (this.options.idleTickMs ?? 500), signal);
      } catch {
        return; // aborted
      }
    }
  }

  /** One pass over the running rollouts; true when any is still running. */
  async tick(signal?: AbortSignal): Promise<boolean> {
    const { store } = this.options;
    const { kvs } = await store.range("read deployments", deploymentsPrefix(store.keys), signal ? { signal } : {});
    this.saturated = false;
    let busy = false;
    for (const kv of kvs) {
      const record = decodeDeployment(kv.key, kv.value);
      if (!isRunning(record)) continue;
      busy = (await this.advance(record.template, signal)) || busy;
    }
    return busy;
  }

  /** Decides and writes one step of a template's rollout; true while it still runs. */
  private async advance(template: string, signal?: AbortSignal): Promise<boolean> {
    const { store, leadership } = this.options;
    const k = store.keys;
    const view = await readTemplate(store, template, signal);
    const dep = view.deployment;
    if (!dep || !isRunning(dep.record)) return false;
    const rollout = dep.record.rollout;
    const out = step({ template, rollout, instances: view.instances, now: this.clock.now(), maxChanges: MAX_STEP_CHANGES });
    const textOf = (hash: string): string | undefined => dep.record.revisions.find((r) => r.hash === hash)?.text ?? rollout.bodies[hash];
    const compares: ICompare[] = [leadership.leaderGuard(), { key: Buffer.from(deploymentKey(k, template)), target: "Mod", result: "Equal", mod_revision: dep.modRevision }];
    const ops: IRequestOp[] = [];
    const bodies = new Set<string>();
    const putBody = (hash: string): void => {
      const text = textOf(hash);
      if (text === undefined) throw new Error(`Cannot roll ${template}: the text of body ${hash} is in neither its history nor the rollout record`);
      if (bodies.has(hash)) return;
      bodies.add(hash);
      ops.push({ request_put: { key: Buffer.from(k.body(hash)), value: Buffer.from(text) } });
    };
    for (const u of out.updates) {
      const facts = view.instances.get(u.instance)!;
      putBody(u.toHash);
      const record: UnitRecord = { ...facts.record, hash: u.toHash };
      compares.push({ key: Buffer.from(k.unit(u.instance)), target: "Mod", result: "Equal", mod_revision: facts.modRevision });
      ops.push({ request_put: { key: Buffer.from(k.unit(u.instance)), value: Buffer.from(JSON.stringify(record)) } });
    }
    for (const name of out.createSurge) {
      putBody(rollout.toHash);
      const record: UnitRecord = { name, hash: rollout.toHash, desiredState: "launched", global: false };
      ops.push({ request_put: { key: Buffer.from(k.unit(name)), value: Buffer.from(JSON.stringify(record)) } });
    }
    for (const name of out.destroySurge) ops.push({ request_delete_range: { key: Buffer.from(k.unit(name)) } });
    const next: DeploymentRecord = { ...dep.record, rollout: out.rollout };
    if (out.rollout.phase === "done") {
      this.finish(next, out.rollout);
      const tpl = view.templateRecord;
      if (out.rollout.outcome !== "succeeded" && tpl && tpl.record.hash !== rollout.fromHash) {
        // New instances (scale) must not get the body that failed.
        putBody(rollout.fromHash);
        ops.push({ request_put: { key: Buffer.from(k.unit(template)), value: Buffer.from(JSON.stringify({ ...tpl.record, hash: rollout.fromHash })) } });
      }
    }
    ops.push({ request_put: { key: Buffer.from(deploymentKey(k, template)), value: Buffer.from(encodeDeployment(next)) } });
    const unchanged = ops.length === 1 && JSON.stringify(rollout) === JSON.stringify(out.rollout);
    if (unchanged) return true;
    if (!leadership.isLeader) return false;
    const res = await store.txn(`advance the rollout of ${template}`, { compare: compares, success: ops }, signal);
    if (!res.succeeded) {
      this.emit({ level: "debug", message: `Rollout of ${template}: etcd changed under the step (another writer or lost leadership); deciding again` });
      return true;
    }
    // A rollout of 10,000 instances at 100 % is 100 full steps: 10 s of waiting alone at one per tick.
    if (out.updates.length + out.createSurge.length + out.destroySurge.length >= MAX_STEP_CHANGES) this.saturated = true;
    if (this.lastMessage.get(template) !== out.rollout.message) {
      this.lastMessage.set(template, out.rollout.message);
      this.emit({ level: out.rollout.outcome === "failed" || out.rollout.outcome === "rolled-back" ? "warn" : "info", message: `Rollout of ${template} to revision ${rollout.revision}: ${out.rollout.message}` });
    }
    return out.rollout.phase !== "done";
  }

  /** Records the outcome on the revision, and puts the template back on the old body after a rollback. */
  private finish(record: DeploymentRecord, rollout: RolloutRecord): void {
    const rev = record.revisions.find((r) => r.revision === rollout.revision);
    if (rev && rollout.outcome) rev.outcome = rollout.outcome;
    record.revisions = [...record.revisions];
  }
}
