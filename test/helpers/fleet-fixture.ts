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

/** One real etcd for the describe block it is called in: started before its tests, removed after. */
export function etcdFixture(): () => EtcdInstance {
  let etcd: EtcdInstance | undefined;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.cleanup();
  });
  return () => {
    if (!etcd) throw new Error("etcdFixture: etcd is not started (call the fixture inside describe(), use it inside tests)");
    return etcd;
  };
}

export function fleetFixture(): FleetFixture {
  const started = etcdFixture();
  const open: FleetCluster[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()));
  });
  return {
    etcd: started,
    cluster: (prefix) => {
      const c = new FleetCluster(started(), prefix);
      open.push(c);
      return c;
    },
  };
}
