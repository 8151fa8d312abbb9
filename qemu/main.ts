/**
 * The qemu cluster tool: `npx tsx qemu/main.ts up --size 3`, `down`, `status`, `ssh INDEX [cmd]`,
 * `console INDEX`, `env`. One exit point: commands throw, `main` prints and sets the exit code.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Command, Option } from "commander";
import { envLines } from "./cluster-env";
import { clusterPaths, clustersRoot, isClusterName, validateClusterName } from "./cluster-layout";
import { downCluster } from "./cluster-down";
import { clusterStatus, formatStatus } from "./cluster-status";
import { listClusters, machineAt, requireCluster } from "./cluster-store";
import { UP_LIMITS, upCluster } from "./cluster-up";
import { sshArgs } from "./machine-ssh";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/**
 * The cluster name a command acts on, validated: `--name`, else COREFLEET_CLUSTER, else "default".
 * Every command goes through this, so an empty or path-like name (``, `..`, `a/b`) never reaches
 * the code that builds and removes `clusters/NAME`.
 */
function checkedName(name: string, env: NodeJS.ProcessEnv): string {
  if (isClusterName(name)) return name;
  if (env.COREFLEET_CLUSTER !== undefined && name === env.COREFLEET_CLUSTER) {
    throw new Error(`Invalid cluster name "${name}" from COREFLEET_CLUSTER: use 1-20 lower-case letters, digits or "-", starting with a letter or digit; fix or unset COREFLEET_CLUSTER, or pass --name`);
  }
  return validateClusterName(name);
}

function intArg(what: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new Error(`Invalid ${what} "${v}": expected a whole number`);
    return Number(v);
  };
}

const range = ([min, max]: readonly [number, number]): string => `${min}-${max}`;

function spawnInteractive(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: "inherit" });
    child.on("error", reject);
    child.on("exit", (code, sig) => resolve(code ?? (sig ? 128 : 1)));
  });
}

export function createProgram(root = clustersRoot(), env: NodeJS.ProcessEnv = process.env): Command {
  const nameOption = (): Option => new Option("--name <name>", "cluster name (env COREFLEET_CLUSTER)").default(env.COREFLEET_CLUSTER ?? "default");
  const program = new Command("qemu").description("Boot local corefleet clusters of the image under QEMU").showHelpAfterError();
  program
    .command("up")
    .description("start a cluster of N machines and wait until every one is up")
    .requiredOption("--size <n>", `number of machines, ${range(UP_LIMITS.size)} (required)`, intArg("--size"))
    .addOption(nameOption())
    .option("--image <dir>", "image folder", path.join(repo, "build", "image"))
    .option("--memory <MiB>", `guest memory in MiB, ${range(UP_LIMITS.memoryMiB)}`, intArg("--memory"), 1024)
    .option("--cpus <n>", `vCPUs per guest, ${range(UP_LIMITS.cpus)}`, intArg("--cpus"), 1)
    .option("--metadata <spec>", 'fleet metadata per machine, e.g. "1:zone=a,role=web;2:zone=b"')
    .option("--agent-ttl <ttl>", "fleet agent_ttl, a Go duration of at least 1s", "30s")
    .option("--timeout <s>", `seconds to wait for all machines, ${range(UP_LIMITS.timeoutS)} (default 900 TCG / 240 KVM)`, intArg("--timeout"))
    .option("--stagger <ms>", `milliseconds between two machine starts, ${range(UP_LIMITS.staggerMs)}`, intArg("--stagger"), 0)
    .option("--public-key <file>", "authorise this OpenSSH public key (.pub file) instead of a generated one")
    .action(async (o: { size: number; name: string; image: string; memory: number; cpus: number; metadata?: string; agentTtl: string; timeout?: number; stagger: number; publicKey?: string }) => {
      const started = Date.now();
      const spec = await upCluster({
        root, name: checkedName(o.name, env), size: o.size, imageDir: o.image, memoryMiB: o.memory, cpus: o.cpus, agentTtl: o.agentTtl, staggerMs: o.stagger,
        ...(o.metadata ? { metadata: o.metadata } : {}),
        ...(o.timeout !== undefined ? { timeoutS: o.timeout } : {}),
        ...(o.publicKey ? { publicKeyFile: o.publicKey } : {}),
        log: (l) => process.stderr.write(`${l}\n`),
      });
      process.stdout.write(`cluster ${spec.name} is up (${spec.machines.length} machines in ${((Date.now() - started) / 1000).toFixed(0)} s). For fleetctl:\n${envLines(root, spec).join("\n")}\n`);
    });
  program
    .command("down")
    .description("stop a cluster and remove everything it created")
    .addOption(nameOption())
    .action(async (o: { name: string }) => {
      const name = checkedName(o.name, env);
      const existed = await downCluster(root, name, (l) => process.stderr.write(`${l}\n`));
      process.stdout.write(existed ? `cluster ${name} removed\n` : `no cluster ${name}; removed its leftovers if any\n`);
    });
  program
    .command("status")
    .description("machines of one cluster (or of every cluster) with their health")
    .option("--name <name>", "only this cluster (default: COREFLEET_CLUSTER if set, else every cluster)")
    .option("--all", "every cluster, even when COREFLEET_CLUSTER is set")
    .action(async (o: { name?: string; all?: boolean }) => {
      const one = o.all ? undefined : (o.name ?? env.COREFLEET_CLUSTER);
      if (one !== undefined) {
        const spec = await requireCluster(root, checkedName(one, env));
        process.stdout.write(`cluster ${spec.name} (${spec.netns})\n${formatStatus(await clusterStatus(root, spec))}\n`);
        return;
      }
      // Every cluster, each in its own row: one unreadable cluster.json must not hide the others.
      const names = await listClusters(root);
      if (names.length === 0) process.stdout.write("no clusters\n");
      for (const n of names) {
        try {
          const spec = await requireCluster(root, n);
          process.stdout.write(`cluster ${n} (${spec.netns})\n${formatStatus(await clusterStatus(root, spec))}\n`);
        } catch (err) {
          const reason = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err instanceof Error ? err.message : err);
          process.stdout.write(`cluster ${n}: unreadable: ${reason} (${clusterPaths(root, n).spec}); "status --name ${n}" fails, "down --name ${n}" removes it\n`);
        }
      }
    });
  program
    .command("ssh")
    .description("ssh to machine INDEX (1-based), optionally running a command")
    .argument("<index>", "machine index", intArg("machine index"))
    .argument("[command...]", "remote command")
    .addOption(nameOption())
    .action(async (index: number, command: string[], o: { name: string }) => {
      const spec = await requireCluster(root, checkedName(o.name, env));
      const m = machineAt(spec, index);
      const tty = command.length === 0 && process.stdin.isTTY;
      const code = await spawnInteractive("ssh", [...sshArgs(clusterPaths(root, spec.name), m, { tty }), ...(command.length ? [command.join(" ")] : [])]);
      process.exitCode = code;
    });
  program
    .command("console")
    .description("print the serial console log of machine INDEX")
    .argument("<index>", "machine index", intArg("machine index"))
    .addOption(nameOption())
    .action(async (index: number, o: { name: string }) => {
      const spec = await requireCluster(root, checkedName(o.name, env));
      machineAt(spec, index);
      process.stdout.write(await readFile(clusterPaths(root, spec.name).machine(index).console, "utf8"));
    });
  program
    .command("env")
    .description("print FLEETCTL_* settings for this cluster (eval \"$(... env)\")")
    .addOption(nameOption())
    .action(async (o: { name: string }) => {
      process.stdout.write(`${envLines(root, await requireCluster(root, checkedName(o.name, env))).join("\n")}\n`);
    });
  return program;
}

async function main(): Promise<void> {
  try {
    await createProgram().parseAsync(process.argv);
  } catch (err) {
    process.stderr.write(`qemu: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) void main();
