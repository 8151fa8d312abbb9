/**
 * etcd's limits on one transaction, and what fleetd packs against them. etcd refuses a transaction
 * with more than `--max-txn-ops` compares or operations (default 128) and a request larger than
 * `--max-request-bytes` (default 1.5 MiB): "etcdserver: request is too large", for the whole
 * transaction. Batching packs many units into one transaction, so it counts bytes as well as
 * operations; a single write larger than the budget still goes, alone.
 */
import type { ICompare, IRequestOp } from "etcd3";

/** etcd's default limit of operations per transaction (`--max-txn-ops`). */
export const DEFAULT_MAX_TXN_OPS = 128;

/** etcd's default `--max-request-bytes` (the host image does not change it): larger requests are refused whole. */
export const ETCD_MAX_REQUEST_BYTES = 1536 * 1024;

/**
 * Bytes of keys and values packed into one transaction: etcd's default request limit (1.5 MiB)
 * less room for the encoding (a few bytes per operation) and for one write larger than the rest.
 */
export const MAX_TXN_BYTES = 1024 * 1024;

const size = (b: Buffer | string | undefined): number => (b === undefined ? 0 : typeof b === "string" ? Buffer.byteLength(b) : b.length);

/** Key and value bytes of one transaction operation. */
export function opBytes(op: IRequestOp): number {
  if (op.request_put) return size(op.request_put.key) + size(op.request_put.value);
  if (op.request_delete_range) return size(op.request_delete_range.key) + size(op.request_delete_range.range_end);
  if (op.request_range) return size(op.request_range.key) + size(op.request_range.range_end);
  return 0;
}

/** Key and value bytes of one compare. */
export function compareBytes(c: ICompare): number {
  return size(c.key) + size(c.value) + size(c.range_end);
}
