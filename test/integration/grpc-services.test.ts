/**
 * The gRPC services the fleetd bundle builds for etcd3 (fleetd/registry/grpc-services.ts, swapped in for
 * @grpc/proto-loader by scripts/bundle.mjs) against proto-loader's own, and against a real etcd.
 */
import * as grpc from "@grpc/grpc-js";
import { fromJSON } from "@grpc/proto-loader";
import { describe, expect, it } from "vitest";
import { servicesFromJSON, type MethodDefinition } from "../../fleetd/registry/grpc-services";
import { etcdProtoJSON } from "../../scripts/etcd-proto.mjs";
import { etcdFixture } from "../helpers/fleet-fixture";

// etcd3's options (node_modules/etcd3/lib/connection-pool.js).
const OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };
const json = etcdProtoJSON();
const ours = servicesFromJSON(json, OPTIONS);
const theirs = fromJSON(json, OPTIONS) as unknown as Record<string, Record<string, MethodDefinition> | { format: string }>;
const theirServices = Object.entries(theirs).filter(([, v]) => !("format" in v)) as [string, Record<string, MethodDefinition>][];
const theirDefs = Object.fromEntries(theirServices);

const method = (defs: Record<string, Record<string, MethodDefinition>>, service: string, name: string): MethodDefinition => {
  const m = defs[service]?.[name];
  if (!m) throw new Error(`no method ${service}.${name}`);
  return m;
};

describe("etcd's gRPC services for the fleetd bundle", () => {
  it("has every service and method proto-loader has, with the same paths, streaming and names", () => {
    expect(theirServices.length).toBeGreaterThan(5);
    expect(Object.keys(ours).sort()).toEqual(theirServices.map(([name]) => name).sort());
    for (const [service, methods] of theirServices) {
      expect(Object.keys(ours[service] ?? {}).sort(), service).toEqual(Object.keys(methods).sort());
      for (const [name, m] of Object.entries(methods)) {
        const o = method(ours, service, name);
        expect({ path: o.path, requestStream: o.requestStream, responseStream: o.responseStream, originalName: o.originalName }, `${service}.${name}`).toEqual({
          path: m.path, requestStream: m.requestStream, responseStream: m.responseStream, originalName: m.originalName,
        });
      }
    }
  });

  it("encodes requests and decodes responses byte for byte and field for field like proto-loader", () => {
    const requests: [string, string, object][] = [
      ["etcdserverpb.KV", "Range", { key: Buffer.from("/fleet/machines/"), range_end: Buffer.from("/fleet/machines0"), limit: "10", sort_order: "DESCEND", keys_only: true }],
      ["etcdserverpb.KV", "Txn", {
        compare: [{ key: Buffer.from("k"), target: "Version", result: "Equal", version: "0" }],
        success: [{ request_put: { key: Buffer.from("k"), value: Buffer.from("v"), lease: "7587868843163711000" } }],
        failure: [{ request_range: { key: Buffer.from("k") } }],
      }],
      ["etcdserverpb.Lease", "LeaseGrant", { TTL: "30", ID: "0" }],
      ["etcdserverpb.Watch", "Watch", { create_request: { key: Buffer.from("/a/"), range_end: Buffer.from("/a0"), start_revision: "42", prev_kv: true } }],
    ];
    for (const [service, name, value] of requests) {
      const o = method(ours, service, name);
      const t = method(theirDefs, service, name);
      expect(o.requestSerialize(value).equals(t.requestSerialize(value)), `${service}.${name} request`).toBe(true);
    }
    const rangeResponse = {
      header: { cluster_id: "14841639068965178418", member_id: "10276657743932975437", revision: "12", raft_term: "3" },
      kvs: [{ key: Buffer.from("/fleet/machines/m1"), value: Buffer.from("{}"), create_revision: "5", mod_revision: "9", version: "2", lease: "7587868843163711000" }],
      more: false,
      count: "1",
    };
    const t = method(theirDefs, "etcdserverpb.KV", "Range");
    const bytes = t.responseSerialize(rangeResponse);
    expect(method(ours, "etcdserverpb.KV", "Range").responseDeserialize(bytes)).toEqual(t.responseDeserialize(bytes));
  });

  describe("against a real etcd", () => {
    const etcd = etcdFixture();

    it("puts and reads a key through a grpc-js client built from these services", async () => {
      const pkg = grpc.loadPackageDefinition(ours) as unknown as {
        etcdserverpb: { KV: new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client & Record<string, (req: object, cb: (err: Error | null, res: unknown) => void) => void> };
      };
      const kv = new pkg.etcdserverpb.KV(`127.0.0.1:${etcd().clientPort}`, grpc.credentials.createInsecure());
      const call = <T>(name: string, req: object): Promise<T> =>
        new Promise((resolve, reject) => kv[name]?.(req, (err, res) => (err ? reject(err) : resolve(res as T))));
      try {
        await call("put", { key: Buffer.from("/grpc-services/k"), value: Buffer.from("v1") });
        const res = await call<{ kvs: { key: Buffer; value: Buffer; version: string }[]; count: string }>("range", { key: Buffer.from("/grpc-services/k") });
        expect(res.count).toBe("1");
        expect(res.kvs[0]?.value.toString()).toBe("v1");
        expect(res.kvs[0]?.version).toBe("1");
      } finally {
        kv.close();
      }
    });
  });
});
