/**
 * A rollout step larger than one etcd transaction is written in several (`fleetd/deploy/step-transactions.ts`);
 * only the last carries the rollout record. When a later one fails (a unit changed under the step,
 * leadership lost), the earlier ones stay applied: those instances are on their new body and the
 * record does not know it yet. The next step must pick them up (done when active, otherwise pending
 * with a fresh deadline) and the rollout must end as if nothing happened. Real etcd and fleetds; the
 * test drives the deploy controller itself, through a store whose chosen transaction is not sent.
 */
import type { ITxnRequest, ITxnResponse } from "etcd3";
import { describe, expect, it } from "vitest";
import { DeployController } from "../../fleetd/deploy/deploy-controller";
import { DeployOperations } from "../../fleetd/deploy/deploy-operations";
import { LeaderElection } from "../../fleetd/engine/leader-election";
import { EtcdStore } from "../../fleetd/registry/etcd-store";
import { parseUnitFile } from "../../lib/unit";
import { unitTable, waitFor } from "../helpers/fleet-cluster";
import { fleetFixture } from "../helpers/fleet-fixture";

/** An EtcdStore whose `failAt`-th rollout transaction (1-based) answers "compare failed" without being sent. */
class StepFailingStore extends EtcdStore {
  failAt = 0;
  sent = 0;
  override async txn(operation: string, req: ITxnRequest, signal?: AbortSignal): Promise<ITxnResponse> {
    if (operation.startsWith("advance the rollout") && ++this.sent === this.failAt) return { succeeded: false, responses: [], header: { cluster_id: "0", member_id: "0", revision: "0", raft_term: "0" } };
    return super.txn(operation, req, signal);
  }
}

describe("a rollout step whose later transaction fails (real etcd and fleetds)", () => {
  const fx = fleetFixture();

  it("keeps the instances an earlier transaction switched, marks them in the next step and rolls all 300", async () => {
    const cluster = fx.cluster();
    // Services take 1 s to start: the instances switched by the first transaction are not active yet at the next step.
    await Promise.all(["m1", "m2"].map((id) => cluster.add(id, { deployController: false, startDelayMs: 1_000 })));
    await cluster.waitMachines();
    await cluster.registry.createUnit({ name: "app@.service", options: parseUnitFile("[Service]\nEnvironment=image=v0\nExecStart=/bin/sleep infinity ${image}\n"), desiredState: "inactive" });
    const store = new StepFailingStore(cluster.client, { prefix: cluster.prefix });
    const ops = new DeployOperations(store);
    /** Each instance's hash as etcd holds it (`P/units/app@N.service`). */
    const hashes = async (): Promise<Map<string, string>> => {
      const { kvs } = await store.range("read the instances", store.keys.unit("app@"));
      return new Map(kvs.map((kv) => [kv.key.slice(store.keys.units.length), (JSON.parse(kv.value.toString()) as { hash: string }).hash] as [string, string]).filter(([n]) => /^app@\d+\.service$/.test(n)));
    };
    await ops.scale("app@.service", { instances: 300 });
    const launched = async (): Promise<number> => Object.entries(await unitTable(cluster)).filter(([n, v]) => /^app@\d+\.service$/.test(n) && v.startsWith("launched@")).length;
    await waitFor("300 instances launched", async () => (await launched()) === 300, { timeoutMs: 30_000, describe: () => cluster.describe() });
    const before = await hashes();
    const oldHash = [...before.values()][0]!;

    const leader = await waitFor("a leading engine", () => [...cluster.instances.values()].find((i) => i.server.engine?.isLeader));
    const session = leader.server.engine!.session;
    if (!(session instanceof LeaderElection)) throw new Error("the engine's session is not a LeaderElection");
    const controller = new DeployController({ store, leadership: session });
    const plan = await ops.deploy("app@.service", { set: { image: "v1" }, maxUnavailable: "100%" });
    expect(plan.instances.length).toBe(300);

    // Step 1: 300 updates are three transactions (126 + 126 + 48 and the record); the second fails.
    store.failAt = 2;
    expect(await controller.tick()).toBe(true);
    const after1 = await hashes();
    const switched = [...after1].filter(([, h]) => h === plan.hash).map(([n]) => n);
    expect(switched.length).toBe(126);
    expect([...after1.values()].filter((h) => h === oldHash).length).toBe(174);
    const record1 = (await ops.getDeployment("app@.service"))!.rollout!;
    expect(record1.phase).toBe("rolling");
    expect(record1.pending).toEqual({}); // the record was not written: it does not know the 126 yet

    // Next step, nothing failing: the other 174 are switched, and the 126 (not active yet) are marked pending.
    store.failAt = 0;
    expect(await controller.tick()).toBe(true);
    const record2 = (await ops.getDeployment("app@.service"))!.rollout!;
    for (const name of switched) expect(record2.pending[name], name).toBeGreaterThan(0);
    expect(Object.keys(record2.pending).length).toBe(300);
    expect(new Set((await hashes()).values())).toEqual(new Set([plan.hash]));

    // Then it ends as any rollout does.
    const r = await waitFor(
      "the rollout done",
      async () => {
        await controller.tick();
        const ro = (await ops.getDeployment("app@.service"))!.rollout!;
        return ro.phase === "done" ? ro : undefined;
      },
      { timeoutMs: 30_000, describe: () => cluster.describe() },
    );
    expect(r.outcome).toBe("succeeded");
    expect(r.message).toBe("all 300 instances active on revision 2");
    expect(new Set((await hashes()).values())).toEqual(new Set([plan.hash]));
    await waitFor("300 instances launched on the new body", async () => (await launched()) === 300, { timeoutMs: 30_000, describe: () => cluster.describe() });
  });
});
