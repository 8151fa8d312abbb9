/**
 * Starts the image's Node programs (fleetd, fleetctl, provisioning) fast in a slow guest. Debian's
 * node 18 is built without a start-up snapshot and without a code cache for its own JavaScript, so
 * every process compiles node's bootstrap and each built-in module from source: 2.0 s for
 * `node -e 0` in a TCG guest. Two things made at image-build time by the image's own node
 * (image-builder/code-cache.ts) remove most of that:
 *
 * - a start-up snapshot (/usr/lib/corefleet/launch.blob) of node's bootstrap with this file loaded
 *   and the built-in modules the bundles use (those node 18 can snapshot) already initialised:
 *   `node --snapshot-blob launch.blob BUNDLE [ARGS...]` deserialises it and runs `launch(BUNDLE)`
 *   (node's own start 2.0 → 0.7 s in a TCG guest);
 * - a V8 code cache per bundle (BUNDLE.cache, next to it on the read-only /usr), so the bundle is
 *   not parsed and compiled either.
 *
 * Without the snapshot, `node launch.cjs BUNDLE [ARGS...]` does the same with only the code cache.
 * A missing or rejected code cache is never fatal: V8 compiles the source as usual. Environment:
 *   COREFLEET_CODE_CACHE=write    compile the whole bundle eagerly and write BUNDLE.cache when the process exits
 *   COREFLEET_CODE_CACHE=require  exit 70 before running the bundle if the cache is missing or rejected
 *   COREFLEET_LAUNCH_TRACE=1      print to stderr how long node took to start and the bundle to compile
 *                                 and load (the image sets it for provisioning and fleetd: boot timing)
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
// node 18 warns, while it builds the snapshot, that module and vm are "not yet supported in user
// snapshots"; loaded then, both work when the snapshot is deserialised (the tests run bundles through
// them), whereas loading them afterwards would print that warning in every process.
import Module from "node:module";
import path from "node:path";
import v8 from "node:v8";
import vm from "node:vm";
import { CACHE_UNUSABLE_EXIT, CODE_CACHE_ENV, SNAPSHOT_BUILTINS, TRACE_ENV } from "./launch-env";

/** Runs BUNDLE as node would run it as its main module, with its code cache. */
function launch(bundle: string | undefined): void {
  // Milliseconds since the process started: node's own start-up, before any of our code ran.
  const startedAt = performance.now();
  if (bundle === undefined) {
    process.stderr.write("usage: node [--snapshot-blob launch.blob] launch.cjs BUNDLE.cjs [ARGS...]\n");
    process.exit(64);
  }
  const file = path.resolve(bundle);
  const mode = process.env[CODE_CACHE_ENV];

  // A shebang line is not JavaScript; blank it without moving line numbers in stack traces.
  const source = readFileSync(file, "utf8").replace(/^#!.*/, "");
  let cachedData: Buffer | undefined;
  try {
    // Writing starts from the source: an old cache would only hold what it held.
    cachedData = mode === "write" ? undefined : readFileSync(`${file}.cache`);
  } catch {
    cachedData = undefined;
  }
  // Writing: compile every function now (not only those that run during `--version`), so that the
  // cache also covers the code a daemon runs later: fleetd reached "registered" ~2 s sooner in a TCG
  // guest with such a cache. Back to lazy before anything else compiles: a cache records V8's flags,
  // and the guest runs with the defaults.
  if (mode === "write") v8.setFlagsFromString("--no-lazy");
  const script = new vm.Script(Module.wrap(source), { filename: file, ...(cachedData ? { cachedData } : {}) });
  if (mode === "write") v8.setFlagsFromString("--lazy");
  if (mode === "require" && (cachedData === undefined || script.cachedDataRejected === true)) {
    process.stderr.write(`launch: the code cache of ${file} is ${cachedData === undefined ? "missing" : "rejected by this node"}\n`);
    process.exit(CACHE_UNUSABLE_EXIT);
  }
  if (mode === "write") {
    process.on("exit", () => {
      const tmp = `${file}.cache.tmp`;
      writeFileSync(tmp, script.createCachedData());
      renameSync(tmp, `${file}.cache`);
    });
  }
  const compiled = performance.now();

  const mod = new Module(file);
  mod.filename = file;
  mod.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(path.dirname(file));
  (process as { mainModule?: NodeModule }).mainModule = mod;
  const wrapper = script.runInThisContext() as (exports: unknown, require: NodeRequire, module: unknown, filename: string, dirname: string) => void;
  wrapper.call(mod.exports, mod.exports, Module.createRequire(file), mod, file, path.dirname(file));
  mod.loaded = true;
  if (process.env[TRACE_ENV] === "1") {
    const cache = cachedData === undefined ? "no code cache" : script.cachedDataRejected === true ? "code cache rejected" : "code cache used";
    const snapshot = v8.startupSnapshot === undefined ? "" : ` from ${startedFromSnapshot ? "the start-up snapshot" : "source"}`;
    process.stderr.write(`launch: ${path.basename(file)}: node started${snapshot} in ${Math.round(startedAt)} ms, compiled in ${Math.round(compiled - startedAt)} ms (${cache}), loaded in ${Math.round(performance.now() - compiled)} ms\n`);
  }
}

let startedFromSnapshot = false;
// Truthy, not `true`: node 20 answers 1.
if (v8.startupSnapshot?.isBuildingSnapshot()) {
  // `node --snapshot-blob launch.blob --build-snapshot launch.cjs`: initialise the built-in modules
  // now, so that the processes started from the snapshot find them ready.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  for (const name of SNAPSHOT_BUILTINS) require(name);
  v8.startupSnapshot.setDeserializeMainFunction(() => {
    startedFromSnapshot = true;
    // node puts the first argument after its options where a script would go: [node, BUNDLE, ARGS...].
    launch(process.argv[1]);
  });
} else {
  // `node launch.cjs BUNDLE [ARGS...]`: the bundle sees [node, BUNDLE, ARGS...] as if run directly.
  const bundle = process.argv[2];
  if (bundle !== undefined) process.argv.splice(1, 2, path.resolve(bundle));
  launch(bundle);
}
