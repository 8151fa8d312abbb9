/**
 * `npm run bench:deploy`: how long a rolling deployment takes and how many instances are down at
 * once. A real etcd on loopback, M in-process fleetds (engine + agent + deploy controller, in-memory
 * unit managers whose services take --start-ms to start), the real API on a unix socket and fleetctl
 * in-process. Scales a template to N instances (timed: `scale_ms`), then for each --max-unavailable value deploys a new
 * body with `fleetctl deploy --set` and samples every 100 ms which instances run, then scales the template to 0
 * (blocking until no machine reports any of them: `scale_down_ms`). Last line: JSON.
 *
 * Flags: --instances N (default 10), --machines M (default 3), --start-ms S (default 400),
 * --limits list (default "1,25%,50%").
 * --global: a global unit (`[X-Fleet] Global=true`) started on the M machines instead of a template's
 * instances; each deploy rolls its machines, and "down" counts machines that do not run it (no scale).
 */
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startEtcd } from "../test/helpers/etcd";
import { FleetctlEnv } from "../test/integration/fleetctl-harness";

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const N = Number(flag("instances", "10"));
const M = Number(flag("machines", "3"));
const START_MS = Number(flag("start-ms", "400"));
const LIMITS = flag("limits", "1,25%,50%").split(",");
const GLOBAL = process.argv.includes("--global");

async function main(): Promise<void> {
  const etcd = await startEtcd();
  const ids = Array.from({ length: M }, (_, i) => `be${i}${"0".repeat(29)}`.slice(0, 32));
  const env = await FleetctlEnv.start(etcd, ids, Object.fromEntries(ids.map((id) => [id, { startDelayMs: START_MS }])));
  const results: { maxUnavailable: string; resolved: number; ms: number; maxDown: number; samples: number }[] = [];
  let scaleMs = 0;
  let scaleDownMs = 0;
  try {
    await writeFile(join(env.dir, "app@.service"), "[Service]\nEnvironment=image=v0\nExecStart=/bin/sleep infinity ${image}\n");
    const must = async (argv: string[]): Promise<string> => {
      const r = await env.run(argv);
      if (r.code !== 0) throw new Error(`fleetctl ${argv.join(" ")} failed: ${r.stderr}`);
      return r.stdout;
    };
    const target = GLOBAL ? "node.service" : "app@.service";
    const what = GLOBAL ? `the global ${target} on ${M} machines` : `${N} instances on ${M} machines`;
    const names = Array.from({ length: N }, (_, i) => `app@${i + 1}.service`);
    /** Instances (or, for the global unit, machines) that do not run it now. */
    const down = (): number => {
      const running = [...env.cluster.instances.values()].map((i) => new Set(i.manager.running()));
      return GLOBAL ? running.filter((r) => !r.has(target)).length : names.filter((n) => !running.some((r) => r.has(n))).length;
    };
    if (GLOBAL) {
      await writeFile(join(env.dir, target), "[Service]\nEnvironment=image=v0\nExecStart=/bin/sleep infinity ${image}\n\n[X-Fleet]\nGlobal=true\n");
      await must(["start", target]);
      // Rolled from the body in the cluster (the deploy would otherwise take the local file).
      await rm(join(env.dir, target));
      for (const started = Date.now(); down() > 0; ) {
        if (Date.now() - started > 60_000) throw new Error(`${target} did not start on all ${M} machines`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } else {
      await must(["submit", "app@.service"]);
      const scaleStarted = performance.now();
      await must(["scale", `app@.service=${N}`]);
      scaleMs = Math.round(performance.now() - scaleStarted);
      console.log(`scale app@.service from 0 to ${N} instances on ${M} machines (fleetctl scale, blocking until launched), start ${START_MS} ms: ${scaleMs} ms`);
    }
    for (const [k, limit] of LIMITS.entries()) {
      let maxDown = 0;
      let samples = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          maxDown = Math.max(maxDown, down());
          samples++;
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const started = performance.now();
      const out = await must(["deploy", "--set", `image=v${k + 1}`, "--max-unavailable", limit, target]);
      const ms = Math.round(performance.now() - started);
      sampling = false;
      await sampler;
      const resolved = Number(/max unavailable (\d+)/.exec(out)?.[1] ?? NaN);
      results.push({ maxUnavailable: limit, resolved, ms, maxDown, samples });
      console.log(`deploy of ${what}, --max-unavailable ${limit} (= ${resolved}), start ${START_MS} ms: ${ms} ms, most down at once ${maxDown} (${samples} samples)`);
    }
    if (!GLOBAL) {
      const downStarted = performance.now();
      await must(["scale", "app@.service=0"]);
      scaleDownMs = Math.round(performance.now() - downStarted);
      console.log(`scale app@.service from ${N} to 0 instances (fleetctl scale, blocking until no machine reports them): ${scaleDownMs} ms`);
    }
  } finally {
    await env.close();
    await etcd.cleanup();
  }
  console.log(JSON.stringify({ bench: "deploy", global: GLOBAL, instances: GLOBAL ? M : N, machines: M, startMs: START_MS, ...(GLOBAL ? {} : { scale_ms: scaleMs, scale_down_ms: scaleDownMs }), results }));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
