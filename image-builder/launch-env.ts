/**
 * What image-builder/launcher.ts (run in the guest as /usr/lib/corefleet/launch.cjs) and the image
 * build (image-builder/code-cache.ts) agree on. No imports: launch.cjs must not load modules that
 * node 18 cannot put in a start-up snapshot (child_process, http, tls ...).
 */

/** Environment variable that switches launch.cjs to writing or requiring the code cache. */
export const CODE_CACHE_ENV = "COREFLEET_CODE_CACHE";
/** launch.cjs's exit status when the code cache is required but missing or rejected (EX_SOFTWARE). */
export const CACHE_UNUSABLE_EXIT = 70;
/** Environment variable that makes launch.cjs print its timing line. */
export const TRACE_ENV = "COREFLEET_LAUNCH_TRACE";

/**
 * Built-in modules initialised in the start-up snapshot: those the bundles load that node 18 can
 * snapshot. Left out: child_process, http, http2, tls, dgram (node 18 cannot snapshot them), and
 * crypto, dns and zlib, whose native state (random pools, resolvers, streams) should begin in the
 * process that uses it.
 */
export const SNAPSHOT_BUILTINS = ["assert", "buffer", "events", "fs", "fs/promises", "net", "os", "path", "perf_hooks", "querystring",
  "readline", "stream", "stream/promises", "string_decoder", "timers", "url", "util"];
