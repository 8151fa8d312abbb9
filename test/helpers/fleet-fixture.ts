/**
 * The fixture of the fleetd integration suites: one real etcd per describe block (started before its
 * tests, removed after them) and FleetClusters on it that are closed after each test, even a failed
 * one. Call inside describe(); call the returned functions inside tests.
 */
import { afterAll, afterEach, beforeAll } from "vitest";
import { startEtcd, type EtcdInstance } from "./etcd";
import { FleetCluster } from "./fleet-cluster";

export interface FleetFixture {
  /** The describe block's etcd. */
  etcd(): EtcdInstance;
  /** A new cluster on that etcd (a fresh key prefix unless given), closed after the test. */
  cluster(prefix?: string): FleetCluster;
}

export function fleetFixture(): FleetFixture {
  let etcd: EtcdInstance | undefined;
  const open: FleetCluster[] = [];
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await etcd?.cleanup();
  });
  const started = (): EtcdInstance => {
    if (!etcd) throw new Error("fleetFixture: etcd is not started (call the fixture inside describe(), use it inside tests)");
    return etcd;
  };
  return {
    etcd: started,
    cluster: (prefix) => {
      const c = new FleetCluster(started(), prefix);
      open.push(c);
      return c;
    },
  };
}
