/**
 * `PATCH /machines` is all or nothing: every operation of a patch is written in one etcd transaction,
 * so an operation that cannot be written leaves none written, and concurrent patches never interleave.
 * Real etcd, real EtcdRegistry, real HTTP API.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Etcd3, IPutRequest, ITxnRequest } from "etcd3";
import { startApiOnSocket, type ApiOnSocket } from "../helpers/api-on-socket";
import { etcdFixture } from "../helpers/fleet-fixture";
import { socketCall } from "../helpers/socket-request";

const ID = "00112233445566778899aabbccddeeff";
const PREFIX = "/fleet-patch/";

const op = (key: string, value: string | null, id = ID) =>
  value === null ? { op: "remove", path: `/${id}/metadata/${key}` } : { op: "add", path: `/${id}/metadata/${key}`, value: { value } };

describe("PATCH /machines is all or nothing", () => {
  const etcd = etcdFixture();
  let fleet: ApiOnSocket;
  let client: Etcd3;
  let socketPath: string;
  /** The etcd client's own put and txn, restored after each test that wraps them. */
  let realPut: Etcd3["kv"]["put"];
  let realTxn: Etcd3["kv"]["txn"];

  beforeAll(async () => {
    fleet = await startApiOnSocket(etcd().endpoint, { prefix: PREFIX, machineId: ID });
    ({ client, socketPath } = fleet);
    realPut = client.kv.put.bind(client.kv);
    realTxn = client.kv.txn.bind(client.kv);
  });

  afterEach(async () => {
    client.kv.put = realPut;
    client.kv.txn = realTxn;
    await client.delete().prefix(`${PREFIX}metadata/`);
  });

  afterAll(async () => {
    await fleet?.close();
  });

  const patch = (ops: unknown[]) => socketCall(socketPath, "PATCH", "/fleet/v1/machines", { body: JSON.stringify(ops) });
  const stored = async (): Promise<Record<string, string>> => {
    const all = await client.getAll().prefix(`${PREFIX}metadata/${ID}/`).strings();
    return Object.fromEntries(Object.entries(all).map(([k, v]) => [k.slice(`${PREFIX}metadata/${ID}/`.length), v]));
  };
  const writes = (req: IPutRequest | ITxnRequest): string[] =>
    "success" in req ? (req.success ?? []).flatMap((o) => (o.request_put?.key ? [o.request_put.key.toString()] : [])) : "key" in req ? [req.key.toString()] : [];

  it("writes nothing when one operation cannot be written", async () => {
    // etcd fails any write of the key `broken` (as it would a refused request): the other keys of
    // the patch must not be written either (they were, one put per operation, before the fix).
    const fail = (req: IPutRequest | ITxnRequest) => writes(req).some((k) => k.endsWith("/broken"));
    client.kv.put = (req, opts) => (fail(req) ? Promise.reject(new Error("refused by the test")) : realPut(req, opts));
    client.kv.txn = (req, opts) => (fail(req) ? Promise.reject(new Error("refused by the test")) : realTxn(req, opts));
    const res = await patch([op("zone", "a"), op("role", null), op("broken", "x"), op("rack", "7")]);
    expect(res.status).toBe(500);
    expect(await stored()).toEqual({});
  });

  it("refuses a patch that cannot fit one etcd request with a 400, before writing anything", async () => {
    // A 1.6 MB machine ID: etcd refuses the request (over --max-request-bytes). Before, the first
    // operation was written and the client got a 500.
    const res = await patch([op("zone", "a"), op("k", "v", "m".repeat(1_600_000))]);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({
      error: { code: 400, message: expect.stringMatching(/^patch too large: \d+ bytes of machine IDs, keys and values; at most 1048576 fit in one etcd transaction .*split it into several requests$/) as unknown },
    });
    expect(await stored()).toEqual({});
    const many = await patch(Array.from({ length: 129 }, (_, i) => op(`k${i}`, "v")));
    expect(many.status).toBe(400);
    expect(JSON.parse(many.body)).toMatchObject({ error: { message: expect.stringContaining("it changes 129 metadata keys; at most 128") as unknown } });
    expect(await stored()).toEqual({});
  });

  it("applies the operations of one key in order and several keys at once", async () => {
    expect((await patch([op("zone", "a"), op("zone", "b"), op("role", null), op("rack", "1"), op("rack", null)])).status).toBe(204);
    expect(await stored()).toEqual({ zone: "b", role: "", rack: "" });
    const machines = JSON.parse((await socketCall(socketPath, "GET", "/fleet/v1/machines")).body) as { machines: { metadata?: unknown }[] };
    expect(machines.machines[0]!.metadata).toEqual({ zone: "b" });
  });

  it("never leaves concurrent patches interleaved", async () => {
    const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
    const results = await Promise.all(Array.from({ length: 12 }, (_, p) => patch(keys.map((k) => op(k, `p${p}`)))));
    expect(results.map((r) => r.status)).toEqual(results.map(() => 204));
    const values = new Set(Object.values(await stored()));
    expect(values.size).toBe(1);
  });
});
