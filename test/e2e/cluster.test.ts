/**
 * The end-to-end suite: one 3-machine QEMU cluster of our image, brought up once, driven through the
 * real fleetctl bundle over an SSH tunnel. Health checks after every test; console tails of every
 * machine on failure. Order matters: the failure tests come last (the final one powers a machine off).
 */
import { afterAll, afterEach, beforeAll, describe } from "vitest";
import { startE2eCluster, stopE2eCluster, type E2eCluster } from "./helpers/e2e-cluster";
import { batchScenario } from "./scenarios/batch";
import { dbusUnitManagerScenario } from "./scenarios/dbus-unit-manager";
import { failureScenario } from "./scenarios/failures";
import { newImageScenario, registryScenario } from "./scenarios/images";
import { placementScenario } from "./scenarios/placement";
import { rolloutScenario } from "./scenarios/rollouts";
import { webScenario } from "./scenarios/web";

let cluster: E2eCluster | undefined;
const get = (): E2eCluster => {
  if (!cluster) throw new Error("The e2e cluster did not come up (see the beforeAll error above)");
  return cluster;
};

describe.sequential("corefleet on a 3-machine QEMU cluster", () => {
  beforeAll(async () => {
    cluster = await startE2eCluster();
  });
  afterAll(async () => {
    await stopE2eCluster(cluster);
  });
  afterEach(async (ctx) => {
    if (!cluster) return;
    if (ctx.task.result?.state === "fail") process.stderr.write(`[e2e] "${ctx.task.name}" failed; console tails:\n${await cluster.consoleTails()}\n`);
    await cluster.assertHealthy();
  });

  describe("D-Bus unit manager on real systemd", () => dbusUnitManagerScenario(get));
  describe("cluster registry: build here, push through the tunnel", () => registryScenario(get));
  describe("web@1..3 through fleetctl --tunnel", () => webScenario(get));
  describe("rolling deploy and scale of the web template", () => rolloutScenario(get));
  describe("deploy on a new image, pull errors", () => newImageScenario(get));
  describe("placement on real hosts", () => placementScenario(get));
  describe("batch units", () => batchScenario(get));
  describe("failures", () => failureScenario(get));
});
