// Builds the single-file bundles that the host image ships: dist/fleetd.cjs and dist/fleetctl.cjs.
// They target Node 18 (Debian bookworm's nodejs) and need nothing beside them.
//
// etcd3 reads its .proto files from disk when it is imported and builds its gRPC services with
// @grpc/proto-loader. The plugin below inlines the parsed protos (scripts/etcd-proto.mjs) and swaps
// proto-loader for fleetd/registry/grpc-services.ts, which builds the same services without the
// reflection descriptors proto-loader encodes (a quarter of fleetd's start-up).
import { build } from "esbuild";
import { readFile, mkdir, rename } from "node:fs/promises";
import path from "node:path";
import { etcdProtoJSON } from "./etcd-proto.mjs";
import { buildDashboardAssets } from "./dashboard-assets.mjs";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const grpcServices = path.join(root, "fleetd/registry/grpc-services.ts");
const inlineEtcdProtos = {
  name: "inline-etcd3-protos",
  setup(b) {
    b.onLoad({ filter: /etcd3[\\/]lib[\\/]connection-pool\.js$/ }, async (args) => {
      const json = JSON.stringify(etcdProtoJSON());
      let source = await readFile(args.path, "utf8");
      const edits = [
        [/const proto_loader_1 = require\("@grpc\/proto-loader"\);/, `const proto_loader_1 = require(${JSON.stringify(grpcServices)});`],
        [/\(0, proto_loader_1\.loadSync\)\(`\$\{__dirname\}\/\.\.\/proto\/rpc\.proto`, \{/, `(0, proto_loader_1.servicesFromJSON)(${json}, {`],
      ];
      for (const [pattern, replacement] of edits) {
        if (!pattern.test(source)) {
          throw new Error(`etcd3's connection-pool.js no longer loads its protos the way this plugin expects (${pattern}); update ${path.relative(root, new URL(import.meta.url).pathname)}`);
        }
        source = source.replace(pattern, () => replacement);
      }
      return { contents: source, loader: "js" };
    });
  },
};

// fleetd run from source builds the dashboard's browser files on first use (fleetd/dashboard/assets.ts);
// the bundle gets them built here, as strings, so dist/fleetd.cjs needs neither esbuild nor web/.
const dashboardAssets = await buildDashboardAssets();
const inlineDashboardAssets = {
  name: "inline-dashboard-assets",
  setup(b) {
    b.onLoad({ filter: /fleetd[\\/]dashboard[\\/]assets\.ts$/ }, () => ({
      contents: `export function loadDashboardAssets() { return Promise.resolve(${JSON.stringify(dashboardAssets)}); }`,
      loader: "ts",
    }));
  },
};

const targets = [
  { entry: "fleetd/main.ts", out: "dist/fleetd.cjs" },
  { entry: "fleetctl/main.ts", out: "dist/fleetctl.cjs" },
];

await mkdir(path.join(root, "dist"), { recursive: true });
for (const t of targets) {
  const outfile = path.join(root, t.out);
  const tmp = `${outfile}.tmp`;
  const started = Date.now();
  const result = await build({
    entryPoints: [path.join(root, t.entry)],
    outfile: tmp,
    bundle: true,
    platform: "node",
    target: "node18",
    format: "cjs",
    banner: { js: "#!/usr/bin/env node" },
    plugins: [inlineEtcdProtos, inlineDashboardAssets],
    // ssh2's optional native crypto and cpu-features are tried in try/catch and have JS fallbacks.
    // dbus-next requires "x11" lazily, only to find a session bus through X11 (never on a host).
    external: ["cpu-features", "*.node", "x11"],
    logLevel: "warning",
    metafile: true,
    legalComments: "none",
  });
  await rename(tmp, outfile);
  const bytes = Object.values(result.metafile.outputs)[0]?.bytes ?? 0;
  console.log(`bundle: ${t.out} ${(bytes / 1024).toFixed(0)} KiB in ${Date.now() - started} ms`);
}
