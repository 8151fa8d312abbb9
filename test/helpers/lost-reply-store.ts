/**
 * An EtcdStore that plays two kinds of trouble of a loaded etcd, for tests on a real etcd. Every
 * request is carried out for real except:
 * - `loseNextTxnReply`: the next `txn` is carried out by etcd but answered with a timeout (its reply
 *   missed the deadline);
 * - `expiredLease`: etcd has expired this lease without revoking it yet (etcd 3.4 revokes at most
 *   1,000 expired leases a second, so after a mass expiry keys outlive their leases for seconds): a put
 *   on that lease fails as etcd's "requested lease not found" does through `EtcdStore.txn` and
 *   `EtcdStore.write`, a look-up answers TTL -1, and its keys are still there. Keepalives are not touched, so a LeaseKeeper on the
 *   lease does not notice by itself (as when its stream is stuck on a saturated connection).
 */
import { EtcdLeaseInvalidError, type IRequestOp, type ITxnRequest, type ITxnResponse } from "etcd3";
import { EtcdUnavailableError, translateEtcdError } from "../../fleetd/registry/errors";
import { EtcdStore } from "../../fleetd/registry/etcd-store";

export class LostReplyStore extends EtcdStore {
  loseNextTxnReply = false;
  expiredLease: string | undefined;
  /** How many requests failed on `expiredLease`. */
  refusedOnExpiredLease = 0;

  override async txn(operation: string, req: ITxnRequest, signal?: AbortSignal): Promise<ITxnResponse> {
    this.refuseOnExpiredLease(operation, req.success ?? []);
    const res = await super.txn(operation, req, signal);
    if (!this.loseNextTxnReply) return res;
    this.loseNextTxnReply = false;
    throw new EtcdUnavailableError(operation, { cause: new Error("4 DEADLINE_EXCEEDED: the reply was lost (test)") });
  }

  override async write(operation: string, ops: readonly IRequestOp[], signal?: AbortSignal): Promise<void> {
    this.refuseOnExpiredLease(operation, ops);
    await super.write(operation, ops, signal);
  }

  /** A put on `expiredLease` fails as etcd's "requested lease not found" does. */
  private refuseOnExpiredLease(operation: string, ops: readonly IRequestOp[]): void {
    if (this.expiredLease === undefined || !ops.some((op) => op.request_put?.lease === this.expiredLease)) return;
    this.refusedOnExpiredLease++;
    throw translateEtcdError(new EtcdLeaseInvalidError("etcdserver: requested lease not found (test)"), operation);
  }

  override async call<T>(operation: string, fn: (opts: { deadline: Date }) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.expiredLease !== undefined && operation === `look up lease ${this.expiredLease}`) return { ID: this.expiredLease, TTL: "-1" } as T;
    return super.call(operation, fn, signal);
  }
}
