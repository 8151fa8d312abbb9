// etcd's API (etcd3's rpc.proto and the files it imports) as protobufjs Root JSON, parsed at build time:
// a single-file bundle has no .proto files to read, and parsing them at start-up costs time.
// Used by scripts/bundle.mjs and by the test that checks the fleetd bundle's gRPC services.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);

/** The directory of etcd3's own connection-pool.js and proto files. */
export function etcd3LibDir() {
  return path.dirname(require.resolve("etcd3/lib/connection-pool.js"));
}

export function etcdProtoJSON() {
  const protobuf = require("protobufjs");
  const protoFile = path.join(etcd3LibDir(), "..", "proto", "rpc.proto");
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => (path.isAbsolute(target) ? target : path.join(path.dirname(protoFile), path.basename(target)));
  root.loadSync(protoFile, { keepCase: true });
  return root.toJSON();
}
