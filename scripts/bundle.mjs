// Builds the single-file bundles that the host image ships: dist/fleetd.cjs and dist/fleetctl.cjs.
// They target Node 18 (Debian bookworm's nodejs) and need nothing beside them.
//
// etcd3 reads its .proto files from disk when it is imported; a single-file bundle has no such files,
// so the plugin below parses them once at build time and inlines the result (proto-loader's fromJSON).
import { build } from "esbuild";
import { createRequire } from "node:module";
import { readFile, mkdir, rename } from "node:fs/promises";
import path from "node:path";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

const inlineEtcdProtos = {
  name: "inline-etcd3-protos",
  setup(b) {
    b.onLoad({ filter: /etcd3[\\/]lib[\\/]connection-pool\.js$/ }, async (args) => {
      const protobuf = require("protobufjs");
      const protoFile = path.join(path.dirname(args.path), "..", "proto", "rpc.proto");
      const rootNs = new protobuf.Root();
      rootNs.resolvePath = (origin, target) =>
        path.isAbsolute(target) ? target : path.join(path.dirname(protoFile), path.basename(target));
      rootNs.loadSync(protoFile, { keepCase: true });
      const json = JSON.stringify(rootNs.toJSON());
      const source = await readFile(args.path, "utf8");
      const pattern = /\(0, proto_loader_1\.loadSync\)\(`\$\{__dirname\}\/\.\.\/proto\/rpc\.proto`, \{/;
      if (!pattern.test(source)) {
        throw new Error(`etcd3's connection-pool.js no longer loads rpc.proto the way this plugin expects; update ${path.relative(root, new URL(import.meta.url).pathname)}`);
      }
      return { contents: source.replace(pattern, `(0, proto_loader_1.fromJSON)(${json}, {`), loader: "js" };
    });
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
    plugins: [inlineEtcdProtos],
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
