/**
 * A fix to etcd3 1.1.2's watch manager, installed once by `./etcd-store`.
 *
 * etcd3 multiplexes a client's watches on one gRPC stream and throws ("Failed to find watcher for
 * IWatchResponse") from the stream's data handler when a response names a watch it no longer holds.
 * etcd sends such responses in a normal race: a watch whose revision was compacted is cancelled by
 * etcd (etcd3 drops it), and the cancel request its owner sent meanwhile is answered once more. The
 * exception escapes into grpc-js, which then delivers nothing more on that stream: every watch of the
 * client goes silent and every later watch creation or cancel waits forever (a dashboard feed that
 * re-read the cluster after a compaction never sent its new snapshot). A response for a watch that is
 * gone carries nothing anyone waits for, so it is ignored.
 * Test: test/integration/etcd-watch-close.test.ts.
 */
import { WatchManager } from "etcd3/lib/watch";

interface WatchResponseLike {
  watch_id: string;
}
interface ManagerInternals {
  watchers: { id: string | null }[];
  handleResponse: (this: ManagerInternals, res: WatchResponseLike) => void;
}

let installed = false;

export function installEtcd3WatchFix(): void {
  if (installed) return;
  installed = true;
  const proto = WatchManager.prototype as unknown as ManagerInternals;
  const original = proto.handleResponse;
  proto.handleResponse = function (this: ManagerInternals, res: WatchResponseLike): void {
    if (!this.watchers.some((w) => w.id === res.watch_id)) return;
    original.call(this, res);
  };
}
