/**
 * The API side of scale and rolling deployments: validates a request against one consistent read of
 * the template, computes the plan, and (unless `dryRun`) writes it in compare-guarded transactions
 * (one for a deploy; a scale by more instances than etcd's op limit takes several).
 * A rollout is only *recorded* here; the leading engine's {@link DeployController} carries it out.
 */
import type { ICompare, IRequestOp } from "etcd3";
import { MAX_INSTANCES, type ApiDeployPlan, type ApiDeployRequest, type ApiScalePlan, type ApiScaleRequest, type DeploymentSummary, type RevisionRecord, type RolloutRecord } from "../../lib/api/deploy-types";
import type { UnitOption } from "../../lib/api/types";
import { diffLines, fromRevisionOf, planOfRollout, rolloutOfRequest } from "../../lib/api/deploy-plan";
import { buildUnit, isInstance, isTemplate, parseUnitFile, parseUnitName, validateUnit } from "../../lib/unit";
import type { EtcdStore, StoredKv } from "../registry/etcd-store";
import type { UnitRecord } from "../registry/keys";
import { DEFAULT_MAX_TXN_OPS, ETCD_MAX_REQUEST_BYTES, MAX_TXN_BYTES } from "../registry/txn-limits";
import { DeployConflictError, DeployInputError, DeployNotFoundError } from "./errors";
import { resolveLimit } from "./limits";
import { DEFAULT_DEADLINE_MS, deploymentKey, isRunning, MAX_REVISIONS, type DeploymentRecord } from "./records";
import { decodeDeployment, decodeDeploymentSummary, encodeDeployment } from "./record-codec";
import { applySet, SetAssignmentError } from "./set-environment";
import { readRolloutTarget } from "./global-view";
import { byInstance, instanceNumber, isSurgeInstance, readTemplate, type TemplateView } from "./template-view";

export class DeployOperations {
  constructor(
    private readonly store: EtcdStore,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The template's history and rollout. Reads those two keys only, not the template's instances:
   * `fleetctl deploy` polls this while it rolls (a whole read of 10,000 instances is 30,000 keys).
   */
  async getDeployment(template: string, signal?: AbortSignal): Promise<DeploymentRecord | undefined> {
    const kv = await this.readDeployment(template, signal);
    return kv ? decodeDeployment(kv.key, kv.value) : undefined;
  }

  /** {@link getDeployment}'s summary: no per-instance lists or revision texts (the stored runs are not expanded). */
  async getDeploymentSummary(template: string, signal?: AbortSignal): Promise<DeploymentSummary | undefined> {
    const kv = await this.readDeployment(template, signal);
    return kv ? decodeDeploymentSummary(kv.key, kv.value) : undefined;
  }

  /** The template's deployment key; throws when neither it nor the template is in the cluster. */
  private async readDeployment(template: string, signal?: AbortSignal): Promise<StoredKv | undefined> {
    const k = this.store.keys;
    const { results } = await this.store.rangeMany(
      `read the history of ${this.checkDeployable("read the history of", template)}`,
      [
        { prefix: k.unit(template), exact: true, keysOnly: true },
        { prefix: deploymentKey(k, template), exact: true },
      ],
      signal,
    );
    const [tpl = [], dep = []] = results;
    if (tpl.length === 0 && dep.length === 0) throw new DeployNotFoundError(`cannot read the history of ${template}: ${isTemplate(template) ? "the template" : "the unit"} is not in the cluster`);
    return dep[0];
  }

  async scale(template: string, req: ApiScaleRequest, signal?: AbortSignal): Promise<ApiScalePlan> {
    this.checkTemplate("scale", template);
    const want = req.instances;
    if (!Number.isInteger(want) || want < 0 || want > MAX_INSTANCES) throw new DeployInputError(`invalid instance count ${JSON.stringify(want)} for ${template}: use a whole number from 0 to ${MAX_INSTANCES}`);
    const view = await readTemplate(this.store, template, signal);
    const tpl = this.needTemplate("scale", view);
    this.refuseWhileRolling("scale", view);
    const numbered = [...view.instances.keys()].filter((n) => instanceNumber(n) !== undefined).sort(byInstance);
    const { prefix, suffix } = parseUnitName(template);
    const create: string[] = [];
    const have = new Set(numbered);
    for (let i = 1; have.size + create.length < want; i++) {
      const name = `${prefix}@${i}${suffix}`;
      if (!have.has(name)) create.push(name);
    }
    const destroy = numbered.length > want ? numbered.slice(want).reverse() : [];
    const plan: ApiScalePlan = { template, dryRun: req.dryRun === true, from: numbered.length, to: want, create, destroy };
    if (plan.dryRun || (create.length === 0 && destroy.length === 0)) return plan;
    const k = this.store.keys;
    const text = await this.bodyText(tpl.record.hash, template, signal);
    // Every transaction is guarded by the template's revision and its rollout; each instance by its
    // own key (create-only, or its revision to destroy it). etcd takes at most 128 compares per
    // transaction, so a scale by more than ~120 instances is several transactions: one that fails a
    // compare stops the scale there, and the error says how far it got.
    const guard: ICompare[] = [{ key: Buffer.from(k.unit(template)), target: "Mod", result: "Equal", mod_revision: tpl.modRevision }, this.deploymentGuard(view)];
    type Change = { compare: ICompare; op: IRequestOp };
    const changes: Change[] = [
      ...create.map((name): Change => {
        const record: UnitRecord = { name, hash: tpl.record.hash, desiredState: "launched", global: tpl.record.global };
        return { compare: { key: Buffer.from(k.unit(name)), target: "Version", result: "Equal", version: 0 }, op: { request_put: { key: Buffer.from(k.unit(name)), value: Buffer.from(JSON.stringify(record)) } } };
      }),
      ...destroy.map((name): Change => ({
        compare: { key: Buffer.from(k.unit(name)), target: "Mod", result: "Equal", mod_revision: view.instances.get(name)!.modRevision },
        op: { request_delete_range: { key: Buffer.from(k.unit(name)) } },
      })),
    ];
    const perTxn = DEFAULT_MAX_TXN_OPS - guard.length;
    for (let i = 0; i < changes.length; i += perTxn) {
      const chunk = changes.slice(i, i + perTxn);
      // The body goes with the first instances that use it (a scale down writes none).
      const body: IRequestOp[] = i === 0 && create.length > 0 ? [{ request_put: { key: Buffer.from(k.body(tpl.record.hash)), value: Buffer.from(text) } }] : [];
      const res = await this.store.txn(`scale ${template} to ${want}`, { compare: [...guard, ...chunk.map((c) => c.compare)], success: [...body, ...chunk.map((c) => c.op)] }, signal);
      if (!res.succeeded) {
        const so = i === 0 ? "" : `; ${create.length > 0 ? `${i} of ${create.length} instances were created` : `${i} of ${destroy.length} instances were destroyed`} before that`;
        throw new DeployConflictError(`cannot scale ${template}: it or its instances changed while scaling${so}; run the command again`);
      }
    }
    return plan;
  }

  async deploy(template: string, req: ApiDeployRequest, signal?: AbortSignal): Promise<ApiDeployPlan> {
    // A rollback (toRevision) is refused as a rollback, not as "cannot deploy".
    const what = req.toRevision !== undefined ? "roll back" : "deploy";
    this.checkDeployable(what, template);
    if (req.abort === true) return this.abort(template, req, signal);
    if (req.toRevision !== undefined && (req.options !== undefined || req.set !== undefined)) {
      throw new DeployInputError(`cannot deploy ${template}: a rollback (toRevision) takes no new body or --set`);
    }
    const deadlineMs = req.deadlineMs ?? DEFAULT_DEADLINE_MS;
    if (!Number.isFinite(deadlineMs) || deadlineMs < 1_000 || deadlineMs > 86_400_000) {
      throw new DeployInputError(`invalid deadline ${deadlineMs} ms for ${template}: use from 1 s to 24 h`);
    }
    const view = await readRolloutTarget(this.store, template, signal);
    const tpl = this.needTemplate(what, view);
    const global = !isTemplate(template);
    if (global && !tpl.record.global) {
      throw new DeployInputError(
        `cannot ${what} ${template}: it is neither a template nor a global unit; ${what} rolls the instances of a template (web@.service) or the machines of a global unit ([X-Fleet] Global=true); to change a single unit, use fleetctl start --replace`,
      );
    }
    // A retry of a request whose answer was lost: answer with the rollout it started, start nothing.
    const replay = req.dryRun === true || req.requestId === undefined ? undefined : replayedPlan(view.deployment?.record, req.requestId);
    if (replay) return replay;
    this.refuseWhileRolling(what, view);
    const currentText = await this.bodyText(tpl.record.hash, template, signal);
    const history = view.deployment?.record.revisions ?? [];
    let options: UnitOption[];
    let change: string;
    if (req.toRevision !== undefined) {
      const rev = history.find((r) => r.revision === req.toRevision);
      if (!rev) {
        const known = history.map((r) => r.revision).join(", ") || "none";
        throw new DeployInputError(`cannot roll back ${template} to revision ${req.toRevision}: no such revision (known: ${known}); see fleetctl history ${template}`);
      }
      options = parseUnitFile(rev.text);
      change = `rollback to ${rev.revision}`;
    } else {
      options = req.options ?? parseUnitFile(currentText);
      try {
        if (req.set) options = applySet(options, req.set);
      } catch (err) {
        if (err instanceof SetAssignmentError) throw new DeployInputError(`cannot deploy ${template}: ${err.message}`, { cause: err });
        throw err;
      }
      const sets = Object.entries(req.set ?? {}).map(([k, v]) => `${k}=${v}`);
      const newBody = req.options !== undefined && buildUnit(template, req.options).hash !== tpl.record.hash;
      change = `deploy${newBody ? " (new body)" : ""}${sets.length > 0 ? ` --set ${sets.join(" --set ")}` : ""}`;
    }
    // fleet's API refuses an empty unit too ("options field empty"); rolled out, it left every instance without a body.
    if (options.length === 0) throw new DeployInputError(`cannot deploy ${template}: the new body is empty (no [Section] and Key=Value lines); give the template's unit file`);
    let unit;
    try {
      unit = buildUnit(template, options);
    } catch (err) {
      throw new DeployInputError(`cannot ${what} ${template}: ${(err as Error).message}`, { cause: err });
    }
    const invalid = validateUnit(unit);
    if (invalid) throw new DeployInputError(`cannot ${what} ${template}: ${invalid.reason}`);
    if (global && !unit.requirements.global) {
      throw new DeployInputError(`cannot ${what} ${template}: the new body has no [X-Fleet] Global=true; a global unit stays global (destroy it and start the new unit to change that)`);
    }
    // A global unit's "instances" are its machines (IDs), rolled a few at a time like a template's.
    const noun = global ? "machine(s)" : "instance(s)";
    const targets = [...view.instances.values()].filter((f) => global || !isSurgeInstance(f.name)).sort((a, b) => byInstance(a.name, b.name));
    const instances = targets.filter((f) => f.record.hash !== unit.hash).map((f) => f.name);
    const unchanged = targets.filter((f) => f.record.hash === unit.hash).map((f) => f.name);
    if (instances.length === 0 && tpl.record.hash === unit.hash) {
      throw new DeployInputError(`nothing to deploy: ${template} and its ${targets.length} ${noun} already have this body (hash ${unit.hash.slice(0, 7)})`);
    }
    const n = targets.length;
    const maxUnavailableSpec = req.maxUnavailable ?? "1";
    const maxSurgeSpec = req.maxSurge ?? "0";
    if (global && resolveLimit("max-surge", maxSurgeSpec, n) > 0) {
      throw new DeployInputError(`cannot ${what} ${template}: max-surge does not apply to a global unit (it runs once on each machine, so there is no extra copy to start first); leave --max-surge out`);
    }
    const maxUnavailable = resolveLimit("max-unavailable", maxUnavailableSpec, n);
    const maxSurge = resolveLimit("max-surge", maxSurgeSpec, n);
    if (n > 0 && maxUnavailable === 0 && maxSurge === 0) {
      throw new DeployInputError(
        `cannot ${what} ${template}: max-unavailable ${maxUnavailableSpec} and max-surge ${maxSurgeSpec} allow no ${global ? "machine" : "instance"} to change with ${n} ${noun}; raise --max-unavailable or --max-surge to at least 1`,
      );
    }
    const last = history.at(-1)?.revision ?? 0;
    const revisions: RevisionRecord[] = [...history];
    const stamp = new Date(this.now()).toISOString();
    if (revisions.length === 0) revisions.push({ revision: 1, hash: tpl.record.hash, text: currentText, createdAt: stamp, change: "initial", outcome: "succeeded" });
    const revision = Math.max(last, revisions.at(-1)!.revision) + 1;
    revisions.push({ revision, hash: unit.hash, text: unit.text, createdAt: stamp, change, ...(req.requestId !== undefined ? { requestId: req.requestId } : {}) });
    const plan: ApiDeployPlan = {
      template,
      dryRun: req.dryRun === true,
      revision,
      fromRevision: fromRevisionOf({ revisions }, tpl.record.hash, revision),
      hash: unit.hash,
      change,
      instances,
      unchanged,
      maxUnavailable,
      maxSurge,
      deadlineMs,
      diff: diffLines(currentText, unit.text),
    };
    if (plan.dryRun) return plan;
    const previous = Object.fromEntries(targets.map((f) => [f.name, f.record.hash]));
    const bodies: Record<string, string> = {};
    for (const hash of new Set(Object.values(previous))) if (hash !== unit.hash) bodies[hash] = hash === tpl.record.hash ? currentText : await this.bodyText(hash, template, signal);
    const rollout: RolloutRecord = {
      revision,
      toHash: unit.hash,
      fromHash: tpl.record.hash,
      maxUnavailableSpec,
      maxSurgeSpec,
      maxUnavailable,
      maxSurge,
      deadlineMs,
      startedAt: stamp,
      phase: "rolling",
      instances: targets.map((f) => f.name),
      previous,
      bodies,
      pending: {},
      surge: [],
      maxUnavailableSeen: 0,
      message: `waiting for the leading engine to start rolling ${instances.length} ${noun}`,
      ...(req.requestId !== undefined ? { requestId: req.requestId } : {}),
    };
    const record = fitHistory({ template, revisions: revisions.slice(-MAX_REVISIONS), rollout }, unit.text);
    const k = this.store.keys;
    const res = await this.store.txn(
      `record the rollout of ${template} to revision ${revision}`,
      {
        compare: [{ key: Buffer.from(k.unit(template)), target: "Mod", result: "Equal", mod_revision: tpl.modRevision }, this.deploymentGuard(view)],
        success: [
          { request_put: { key: Buffer.from(deploymentKey(k, template)), value: Buffer.from(encodeDeployment(record)) } },
          { request_put: { key: Buffer.from(k.unit(template)), value: Buffer.from(JSON.stringify(startRecord(tpl.record, unit.hash, global ? previous : undefined))) } },
          { request_put: { key: Buffer.from(k.body(unit.hash)), value: Buffer.from(unit.text) } },
        ],
      },
      signal,
    );
    if (!res.succeeded) throw new DeployConflictError(`cannot ${what} ${template}: the template or its rollout changed while starting; run the command again`);
    return plan;
  }

  /**
   * Stops the running rollout (`abort`): marks it `aborted`, and the controller's next step rolls its
   * instances back as after a failure (`rollout-step.ts`). Guarded by the record's revision, which the
   * controller rewrites at each step, so a few attempts are made. Stopping one that already rolls
   * back (stopped, or failed) changes nothing and answers the same.
   */
  private async abort(template: string, req: ApiDeployRequest, signal?: AbortSignal): Promise<ApiDeployPlan> {
    if (req.options !== undefined || req.set !== undefined || req.toRevision !== undefined) {
      throw new DeployInputError(`cannot stop the rollout of ${template}: abort takes no new body, set or toRevision`);
    }
    const k = this.store.keys;
    for (let attempt = 1; ; attempt++) {
      const kv = await this.readDeployment(template, signal);
      const record = kv ? decodeDeployment(kv.key, kv.value) : undefined;
      if (!kv || !isRunning(record)) {
        const last = record?.rollout ? `the last one, to revision ${record.rollout.revision}, ended ${record.rollout.outcome ?? "done"}` : "it has never been deployed";
        throw new DeployConflictError(`cannot stop the rollout of ${template}: none is running (${last}); to redeploy an earlier revision: fleetctl rollback --to N ${template}`);
      }
      const plan: ApiDeployPlan = { ...planOfRollout(record, record.rollout), aborted: true };
      if (record.rollout.aborted !== undefined || record.rollout.phase === "rolling-back" || req.dryRun === true) return { ...plan, dryRun: req.dryRun === true };
      const stamp = new Date(this.now()).toISOString();
      const next: DeploymentRecord = { ...record, rollout: { ...record.rollout, aborted: stamp, message: "stopped by the operator: waiting for the leading engine to roll back" } };
      const res = await this.store.txn(
        `stop the rollout of ${template}`,
        {
          compare: [{ key: Buffer.from(kv.key), target: "Mod", result: "Equal", mod_revision: kv.modRevision }],
          success: [{ request_put: { key: Buffer.from(deploymentKey(k, template)), value: Buffer.from(encodeDeployment(next)) } }],
        },
        signal,
      );
      if (res.succeeded) return plan;
      if (attempt >= 5) throw new DeployConflictError(`cannot stop the rollout of ${template}: its record changed at each of ${attempt} attempts (the engine is stepping it); run the command again`);
    }
  }

  private checkTemplate(what: string, template: string): string {
    if (!isTemplate(template)) {
      throw new DeployInputError(`cannot ${what} ${template}: it is not a template; ${what} works on templates such as web@.service and their instances web@1.service, web@2.service …`);
    }
    return template;
  }

  /** Deploy, rollback and history take a template or a global unit (checked once read); not an instance. */
  private checkDeployable(what: string, name: string): string {
    if (!isInstance(name)) return name;
    const { prefix, suffix } = parseUnitName(name);
    throw new DeployInputError(`cannot ${what} ${name}: it is an instance; name its template (${prefix}@${suffix}), whose instances are rolled together`);
  }

  private needTemplate(what: string, view: TemplateView): NonNullable<TemplateView["templateRecord"]> {
    const noun = isTemplate(view.template) ? "the template" : "the unit";
    if (!view.templateRecord) throw new DeployNotFoundError(`cannot ${what} ${view.template}: ${noun} is not in the cluster; submit it first (fleetctl submit ${view.template})`);
    return view.templateRecord;
  }

  private refuseWhileRolling(what: string, view: TemplateView): void {
    const rec = view.deployment?.record;
    if (!isRunning(rec)) return;
    const r = rec.rollout;
    throw new DeployConflictError(
      `cannot ${what} ${view.template}: the rollout of revision ${r.revision} (started ${r.startedAt}) is still running (${r.message}); wait for it to finish (fleetctl history ${view.template}), or stop it and roll it back (fleetctl rollback ${view.template})`,
    );
  }

  /** The deployment record is as read (absent, or at the revision read). */
  private deploymentGuard(view: TemplateView): ICompare {
    const key = Buffer.from(deploymentKey(this.store.keys, view.template));
    return view.deployment ? { key, target: "Mod", result: "Equal", mod_revision: view.deployment.modRevision } : { key, target: "Version", result: "Equal", version: 0 };
  }

  private async bodyText(hash: string, template: string, signal?: AbortSignal): Promise<string> {
    const { kvs } = await this.store.range(`read body ${hash}`, this.store.keys.body(hash), { exact: true, ...(signal ? { signal } : {}) });
    const kv = kvs[0];
    if (!kv) throw new DeployConflictError(`cannot use the body ${hash} of ${template}: it is missing from etcd; submit the template again`);
    return kv.value.toString("utf8");
  }
}

/**
 * The unit record a deploy writes: the new hash; for a global unit, the machines that keep their body
 * until the deploy controller rolls them (all that run another body now), so nothing restarts at once.
 */
function startRecord(record: UnitRecord, hash: string, machines: Record<string, string> | undefined): UnitRecord {
  const { machineHashes: _old, ...rest } = record;
  const keep = Object.entries(machines ?? {}).filter(([, h]) => h !== hash);
  return keep.length > 0 ? { ...rest, hash, machineHashes: Object.fromEntries(keep) } : { ...rest, hash };
}

/** The plan of the rollout that request `requestId` started (a retry), or undefined: the request is new. */
function replayedPlan(record: DeploymentRecord | undefined, requestId: string): ApiDeployPlan | undefined {
  const r = rolloutOfRequest(record, requestId);
  return record && r ? { ...planOfRollout(record, r), replayed: true } : undefined;
}

export { diffLines };

/**
 * The deployment record is written with the template's new body (here), and with that body, the
 * bodies to roll back to and up to 100 instance records by each step of the deploy controller, in one
 * transaction each, which etcd refuses over `--max-request-bytes` (1.5 MiB). Keeps the newest
 * revisions for which that fits in {@link MAX_TXN_BYTES} (always the new one and the one before it, a
 * rollback's target), or refuses a body too large to roll out at all.
 */
function fitHistory(record: DeploymentRecord, body: string): DeploymentRecord {
  const STEP_ROOM = 64 * 1024; // a step's instance records, keys, protobuf framing
  const bodies = Buffer.byteLength(body) + Object.values(record.rollout?.bodies ?? {}).reduce((n, text) => n + Buffer.byteLength(text), 0);
  const bytes = (r: DeploymentRecord): number => Buffer.byteLength(encodeDeployment(r)) + bodies + STEP_ROOM;
  const revisions = [...record.revisions];
  while (revisions.length > 2 && bytes({ ...record, revisions }) > MAX_TXN_BYTES) revisions.shift();
  const fitted = { ...record, revisions };
  const size = bytes(fitted);
  if (size > ETCD_MAX_REQUEST_BYTES) {
    throw new DeployInputError(
      `cannot deploy ${record.template}: a step of its rollout (the record with the new and previous bodies, and the bodies written with it) would be a ${size}-byte etcd request, more than etcd accepts (${ETCD_MAX_REQUEST_BYTES}); use a smaller unit file`,
    );
  }
  return fitted;
}
