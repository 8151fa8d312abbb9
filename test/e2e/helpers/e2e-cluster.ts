/**
 * The one cluster the end-to-end suite runs on: brought up once (3 machines, metadata for the
 * placement tests), driven through the real `dist/fleetctl.cjs --tunnel` and ssh like an operator,
 * health-checked after every test, console tails printed when a test fails, removed at the end
 * (unless COREFLEET_E2E_KEEP=1).
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { run, type RunResult } from "../../../lib/process/run";
import { repoRoot, runFleetctl } from "../../../qemu/cluster-fleetctl";
import { clusterPaths, clustersRoot, type ClusterPaths, type ClusterSpec, type MachineSpec } from "../../../qemu/cluster-layout";
import { downCluster } from "../../../qemu/cluster-down";
import { loadCluster } from "../../../qemu/cluster-store";
import { upCluster } from "../../../qemu/cluster-up";
import { checkMachine, consoleTail, describeHealth } from "../../../qemu/machine-health";
import { runOnMachine } from "../../../qemu/machine-ssh";
import { ensureImage } from "./image";

export { repoRoot };
/** Metadata of the suite's machines: core-2 is the only role=edge machine. */
export const E2E_METADATA = "1:zone=a;2:zone=b,role=edge;3:zone=b";
/** fleet agent_ttl of the suite's cluster, in seconds. */
export const AGENT_TTL_S = 30;

export class E2eCluster {
  /** Machines that are supposed to be running (a test that powers one off removes it). */
  readonly alive = new Set<number>();
  constructor(
    readonly root: string,
    readonly spec: ClusterSpec,
  ) {
    for (const m of spec.machines) this.alive.add(m.index);
  }

  get paths(): ClusterPaths {
    return clusterPaths(this.root, this.spec.name);
  }

  machine(index: number): MachineSpec {
    const m = this.spec.machines.find((x) => x.index === index);
    if (!m) throw new Error(`e2e cluster has no machine ${index}`);
    return m;
  }

  byId(machineId: string): MachineSpec | undefined {
    return this.spec.machines.find((m) => m.machineId === machineId);
  }

  /** The real fleetctl bundle through an SSH tunnel to the first machine still running. */
  fleetctl(args: readonly string[], options: { allowFailure?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
    const via = this.machine(Math.min(...this.alive));
    return runFleetctl(this.root, this.spec, via, args, { timeoutMs: options.timeoutMs ?? 180_000, allowFailure: options.allowFailure ?? false });
  }

  ssh(index: number, command: string, options: { allowFailure?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
    return runOnMachine(this.paths, this.machine(index), command, { timeoutMs: options.timeoutMs ?? 120_000, allowFailure: options.allowFailure ?? false });
  }

  /** HTTP GET from inside the cluster's namespace (the machines' addresses exist only there), with Node's fetch. */
  httpGet(ip: string, port = 80): Promise<RunResult> {
    const script = `fetch("http://${ip}:${port}/",{signal:AbortSignal.timeout(10000)}).then(async r=>{process.stdout.write(await r.text());process.exit(r.ok?0:1)}).catch(e=>{console.error(e.cause?.message??e.message);process.exit(1)})`;
    return run("ip", ["netns", "exec", this.spec.netns, process.execPath, "-e", script], { timeoutMs: 30_000, allowFailure: true });
  }

  /**
   * Samples HTTP from every address in parallel about once a second until `stop`, from one process
   * in the cluster's namespace (a process per request, as `httpGet`, costs the host ~0.1 s of CPU
   * each, which the TCG guests then miss). Every request opens a new connection and waits up to 10 s;
   * `stop` returns the most addresses that failed in one round and the number of rounds.
   */
  sampleHttp(ips: readonly string[], port = 80): { stop: () => Promise<{ maxDown: number; samples: number }> } {
    const script = [
      `const http=require("http");const ips=${JSON.stringify(ips)};let on=true;`,
      `process.stdin.on("end",()=>{on=false});process.stdin.resume();`,
      `const get=(ip)=>new Promise((done)=>{const q=http.get({host:ip,port:${port},path:"/",agent:false,timeout:10000},(r)=>{r.resume();r.on("end",()=>done(r.statusCode>=200&&r.statusCode<300));r.on("error",()=>done(false))});q.on("timeout",()=>q.destroy(new Error("timeout")));q.on("error",()=>done(false))});`,
      `(async()=>{while(on){const t=Date.now();const ok=await Promise.all(ips.map(get));`,
      `process.stdout.write(JSON.stringify({down:ok.filter((x)=>!x).length})+"\\n");`,
      `await new Promise((s)=>setTimeout(s,Math.max(0,1000-(Date.now()-t))))}process.exit(0)})();`,
    ].join("");
    const child = spawn("ip", ["netns", "exec", this.spec.netns, process.execPath, "-e", script], { stdio: ["pipe", "pipe", "inherit"] });
    const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
    let maxDown = 0;
    let samples = 0;
    createInterface({ input: child.stdout }).on("line", (line) => {
      const down = (JSON.parse(line) as { down: number }).down;
      maxDown = Math.max(maxDown, down);
      samples++;
    });
    return {
      stop: async () => {
        child.stdin.end();
        await exited;
        if (samples === 0) throw new Error("the HTTP sampler printed no sample (see its stderr above)");
        return { maxDown, samples };
      },
    };
  }

  /** Health of every machine that should be running; throws with all problems and console tails. */
  async assertHealthy(): Promise<void> {
    const problems: string[] = [];
    for (const index of [...this.alive].sort()) {
      const m = this.machine(index);
      const report = await checkMachine(this.paths, m);
      if (!report.healthy) problems.push(`${describeHealth(report)}\n--- console tail of ${m.hostname} ---\n${await consoleTail(this.paths, index, 30)}`);
    }
    if (problems.length) throw new Error(`Health check after the test failed:\n${problems.join("\n")}`);
  }

  /** Console tails of every machine, for a failed test's output. */
  async consoleTails(lines = 30): Promise<string> {
    const parts: string[] = [];
    for (const m of this.spec.machines) parts.push(`--- console tail of ${m.hostname} ---\n${await consoleTail(this.paths, m.index, lines)}`);
    return parts.join("\n");
  }
}

/**
 * Removes a leftover cluster of the same name, then brings the suite's cluster up. With
 * COREFLEET_E2E_REUSE=1 a healthy leftover (kept by COREFLEET_E2E_KEEP=1) is used as it is, to iterate
 * on tests without a boot each time.
 */
export async function startE2eCluster(name = "e2e"): Promise<E2eCluster> {
  const root = clustersRoot();
  const leftover = await loadCluster(root, name);
  if (leftover && process.env.COREFLEET_E2E_REUSE === "1") {
    const reused = new E2eCluster(root, leftover);
    try {
      await reused.assertHealthy();
      process.stderr.write(`[e2e cluster] reusing the healthy cluster "${name}" (COREFLEET_E2E_REUSE=1)\n`);
      return reused;
    } catch (err) {
      process.stderr.write(`[e2e cluster] not reusing "${name}": ${err instanceof Error ? err.message.split("\n")[1] : String(err)}\n`);
    }
  }
  await downCluster(root, name);
  const imageDir = await ensureImage((l) => process.stderr.write(`[e2e cluster] ${l}\n`));
  const spec = await upCluster({
    root,
    name,
    size: 3,
    imageDir,
    metadata: E2E_METADATA,
    agentTtl: `${AGENT_TTL_S}s`,
    memoryMiB: 896,
    log: (l) => process.stderr.write(`[e2e cluster] ${l}\n`),
  });
  return new E2eCluster(root, spec);
}

export async function stopE2eCluster(cluster: E2eCluster | undefined, name = "e2e"): Promise<void> {
  if (process.env.COREFLEET_E2E_KEEP === "1") {
    process.stderr.write(`[e2e cluster] kept (COREFLEET_E2E_KEEP=1); remove with: npx tsx qemu/main.ts down --name ${name}\n`);
    return;
  }
  await downCluster(cluster?.root ?? clustersRoot(), name);
}
