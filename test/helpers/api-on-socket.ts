/**
 * fleetd's HTTP API as the API suites drive it: `createApiServer` over a real `EtcdRegistry` (and the
 * deploy operations) on a unix socket, against the test's etcd, with one machine registered. What the
 * API passed to `onError` (fleetd logs it as an error) is kept in `errors`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Etcd3 } from "etcd3";
import { createApiServer, operationsBackend, registryBackend, type ApiServer } from "../../fleetd/api";
import { DeployOperations } from "../../fleetd/deploy/deploy-operations";
import { createEtcdClient, EtcdStore } from "../../fleetd/registry/etcd-store";
import { EtcdRegistry } from "../../fleetd/registry/etcd-registry";
import { MachineSession } from "../../fleetd/registry/machine-session";

export interface ApiOnSocket {
  client: Etcd3;
  registry: EtcdRegistry;
  api: ApiServer;
  socketPath: string;
  errors: string[];
  close(): Promise<void>;
}

export async function startApiOnSocket(endpoint: string, o: { prefix: string; machineId: string; metadata?: Record<string, string> }): Promise<ApiOnSocket> {
  const dir = await mkdtemp(join(tmpdir(), "api-socket-"));
  const client = createEtcdClient({ endpoints: [endpoint] });
  const store = new EtcdStore(client, { prefix: o.prefix });
  const registry = new EtcdRegistry(store, { isRegistered: () => true });
  const session = new MachineSession(store, { machine: { id: o.machineId, publicIP: "10.0.0.3", metadata: o.metadata ?? { role: "web" }, version: "0.1.0", disableEngine: false }, ttlSeconds: 10 });
  await session.register();
  const errors: string[] = [];
  const api = createApiServer({
    backend: registryBackend(registry),
    operations: operationsBackend(new DeployOperations(store)),
    version: "0.1.0",
    onError: (err, req) => errors.push(`${req.method ?? "?"} ${req.url ?? "?"}: ${(err as Error).message}`),
  });
  const socketPath = join(dir, "fleet.sock");
  await api.listen({ kind: "unix", path: socketPath });
  return {
    client,
    registry,
    api,
    socketPath,
    errors,
    async close() {
      await api.close();
      await session.leave().catch(() => undefined);
      client.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
