/**
 * Scopes etcd3's connection resets to the gRPC client that failed.
 *
 * etcd3 (1.1) answers every recoverable failure, a unary call's deadline or UNAVAILABLE as much as a
 * stream's error, by closing every gRPC client of the host (`Host.resetAllServices`): Watch, Lease
 * and KV alike. Each client has its own channel and, with a subchannel pool per channel, its own
 * connection, so the close shuts that connection down and kills every stream still on it ("14
 * UNAVAILABLE: Connection dropped"), and each of those streams' errors resets the host again,
 * closing the clients opened to replace the first ones. Under load this never settles: with 10,000
 * simulated agents on 4 shared clients the agents' watches were re-attached 335,000 times in 150 s
 * (etcd re-syncing them at 100-136 % of a core) and the launch stalled at 65 % of its units.
 *
 * Here a failure closes only the client the failing call or stream used, and only while that client
 * is still the host's current one: a stream that dies because an earlier reset closed its channel
 * finds a newer client in place and leaves it alone. The host's other clients are closed too only if
 * their channel is not connected (READY), which keeps what the wide reset was there for: after a
 * partition every stuck channel, a watch's included, starts again on a fresh connection (a new SYN)
 * instead of waiting out TCP's back-off, while healthy connections and their streams are left alone.
 */
import * as grpc from "@grpc/grpc-js";
import { isRecoverableError, type Etcd3 } from "etcd3";

/** What this module touches of etcd3's ConnectionPool and Host; checked at run time. */
interface ServiceClient {
  getChannel(): { getConnectivityState(tryToConnect: boolean): grpc.connectivityState };
  waitForReady(deadline: number, callback: () => void): void;
  close(): void;
}
interface Host {
  cachedServices: Record<string, ServiceClient | undefined>;
  faultHandling: unknown;
  closed: boolean;
  resetAllServices(): void;
  close(): void;
}
interface Connection {
  resource: Host | ScopedResource;
  client: ServiceClient;
  metadata: unknown;
}
interface Pool {
  hosts: Host[];
  withConnection(service: string, fn: (c: Connection) => unknown, shuffle?: unknown): Promise<unknown>;
}
/** Stands in for the Host that etcd3's streams report their errors to (`pool.markFailed(resource)`). */
interface ScopedResource {
  faultHandling: unknown;
  resetAllServices(): void;
}

function closeClient(client: ServiceClient): void {
  // As etcd3 does: closing a channel that is still connecting leaks it (grpc/grpc-node#1487).
  if (client.getChannel().getConnectivityState(false) === grpc.connectivityState.CONNECTING) {
    client.waitForReady(Date.now() + 1_000, () => setImmediate(() => client.close()));
  } else {
    client.close();
  }
}

/** Closes `failed` if it is still `service`'s client on `host`, and every other client not connected. */
function resetAfterFailure(host: Host, service: string, failed: ServiceClient): void {
  for (const [name, client] of Object.entries(host.cachedServices)) {
    if (!client) continue;
    const reset = name === service ? client === failed : client.getChannel().getConnectivityState(false) !== grpc.connectivityState.READY;
    if (!reset) continue;
    delete host.cachedServices[name];
    closeClient(client);
  }
}

/** Makes `client`'s connection pool reset only what failed (see the module comment). */
export function scopeConnectionResets(client: Etcd3): void {
  const pool = (client as unknown as { pool?: Pool }).pool;
  if (!pool || !Array.isArray(pool.hosts) || typeof pool.withConnection !== "function" || pool.hosts.some((h) => typeof h.resetAllServices !== "function" || typeof h.cachedServices !== "object")) {
    throw new Error("etcd3's connection pool is not the shape corefleet expects (pool.hosts[].resetAllServices, cachedServices); check the etcd3 version in package.json");
  }
  for (const host of pool.hosts) {
    const resetAll = host.resetAllServices.bind(host);
    // The wide reset stays for closing the client; failures go through resetAfterFailure instead.
    host.close = () => {
      resetAll();
      host.closed = true;
    };
    host.resetAllServices = () => {};
  }
  const withConnection = pool.withConnection.bind(pool);
  pool.withConnection = (service, fn, shuffle) =>
    withConnection(
      service,
      (c) => {
        const host = c.resource as Host;
        const onFailure = (e: unknown): never => {
          if (e instanceof Error && isRecoverableError(e)) resetAfterFailure(host, service, c.client);
          throw e;
        };
        const resource: ScopedResource = { faultHandling: host.faultHandling, resetAllServices: () => resetAfterFailure(host, service, c.client) };
        try {
          const result = fn({ ...c, resource });
          return result instanceof Promise ? result.catch(onFailure) : result;
        } catch (e) {
          return onFailure(e);
        }
      },
      shuffle,
    );
}
