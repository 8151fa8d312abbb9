import { describe, expect, it } from "vitest";
import { EtcdError, GRPCInvalidArgumentError, GRPCUnknownError, GRPCUnavailableError } from "etcd3";
import { EtcdUnavailableError, RegistryError, isRetriable, translateEtcdError } from "./errors";

describe("translateEtcdError", () => {
  it("counts etcd's own deadline (gRPC UNKNOWN 'context deadline exceeded') and leader elections as etcd not answering in time", () => {
    for (const err of [
      new GRPCUnknownError("context deadline exceeded"),
      new EtcdError("etcdserver: request timed out"),
      new EtcdError("etcdserver: request timed out, possibly due to previous leader failure"),
      new EtcdError("etcdserver: leader changed"),
      new GRPCUnknownError("etcdserver: no leader"),
      new EtcdError("etcdserver: too many requests"),
      new GRPCUnavailableError("14 UNAVAILABLE: Connection dropped"),
    ]) {
      const t = translateEtcdError(err, "record the rollout of web@.service");
      expect(t, err.message).toBeInstanceOf(EtcdUnavailableError);
      expect(t.retriable).toBe(true);
      expect(t.message).toContain("Cannot record the rollout of web@.service: etcd is unreachable or did not answer in time");
      expect(t.cause).toBe(err);
    }
  });

  it("keeps requests etcd rejected on their merits final", () => {
    for (const err of [new GRPCInvalidArgumentError("etcdserver: too many operations in txn request"), new GRPCUnknownError("something else"), new EtcdError("etcdserver: key not found")]) {
      const t = translateEtcdError(err, "put unit a.service");
      expect(t, err.message).not.toBeInstanceOf(EtcdUnavailableError);
      expect(t).toBeInstanceOf(RegistryError);
      expect(isRetriable(err)).toBe(false);
      expect(t.message).toContain("Cannot put unit a.service: etcd rejected the request");
    }
  });
});
