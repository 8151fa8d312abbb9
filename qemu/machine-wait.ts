/**
 * Waits for one machine of a cluster to come up, phase by phase, reporting each phase as it is
 * reached: booting → ssh → etcd healthy → fleetd registered → healthy (machine-health.ts). A machine
 * whose QEMU exits or whose console shows a failure pattern fails at once, with its console tail.
 */
import { ETCD_ANSWERS_MARKER, fleetdRegisteredMarker } from "../image-builder/ready-markers";
import { delay } from "../lib/async/delay";
import type { ClusterPaths, MachineSpec } from "./cluster-layout";
import { checkMachine, consoleTail, ConsoleScanner, describeHealth } from "./machine-health";
import { runOnMachine } from "./machine-ssh";
import { Vm } from "./vm";

export type MachinePhase = "booting" | "ssh" | "etcd healthy" | "fleetd registered" | "healthy";

export interface WaitMachineOptions {
  /** Absolute deadline (Date.now() based). */
  deadline: number;
  /** The timeout as the operator gave it, for messages. */
  timeoutS: number;
  onPhase?: (machine: MachineSpec, phase: MachinePhase, elapsedMs: number) => void;
  signal?: AbortSignal;
  /** Poll interval; default 3000 ms. */
  pollMs?: number;
}

/** Thrown when a machine does not come up; carries the console tail. */
export class MachineNotUpError extends Error {
  override readonly name = "MachineNotUpError";
  constructor(readonly machine: string, why: string, readonly tail: string) {
    super(`Machine ${machine} did not come up: ${why}. Console tail:\n${tail}`);
  }
}

export async function waitForMachine(paths: ClusterPaths, machine: MachineSpec, options: WaitMachineOptions): Promise<void> {
  const started = Date.now();
  const pollMs = options.pollMs ?? 3_000;
  const vm = await Vm.attach(paths.machine(machine.index).dir);
  const sig = options.signal ? { signal: options.signal } : {};
  options.onPhase?.(machine, "booting", 0);
  const scanner = new ConsoleScanner(paths.machine(machine.index).console);

  const fail = async (why: string): Promise<never> => {
    throw new MachineNotUpError(machine.hostname, why, await consoleTail(paths, machine.index, 40));
  };
  const until = async (what: MachinePhase, probe: () => Promise<boolean>): Promise<void> => {
    for (;;) {
      options.signal?.throwIfAborted();
      if (!vm.isRunning()) await fail(`its QEMU process (pid ${vm.pid}) exited while waiting for "${what}"`);
      const problems = await scanner.scan();
      if (problems.length) await fail(`its console shows ${problems.map((p) => `${p.name} ("${p.line}")`).join(", ")}`);
      if (await probe()) {
        options.onPhase?.(machine, what, Date.now() - started);
        return;
      }
      if (Date.now() > options.deadline) await fail(`"${what}" not reached within the ${options.timeoutS} s timeout`);
      await delay(pollMs, options.signal);
    }
  };
  const ok = async (command: string): Promise<boolean> => {
    const r = await runOnMachine(paths, machine, command, { allowFailure: true, timeoutMs: 60_000, ...sig });
    return r.exitCode === 0;
  };

  await until("ssh", () => ok("true"));
  // The image reports both on its console (corefleet-ready), checked inside the guest for member and
  // proxy hosts alike: no SSH round trip, no Node start-up in a slow guest.
  const onConsole = async (line: string): Promise<boolean> => (await vm.consoleText()).includes(line);
  await until("etcd healthy", () => onConsole(ETCD_ANSWERS_MARKER));
  await until("fleetd registered", () => onConsole(fleetdRegisteredMarker(machine.machineId)));
  let last = "";
  await until("healthy", async () => {
    const report = await checkMachine(paths, machine, options.signal);
    last = describeHealth(report);
    // "starting" is normal for a while after fleetd registers; only a settled verdict counts.
    return report.healthy;
  }).catch(async (err: unknown) => {
    if (err instanceof MachineNotUpError && last) throw new MachineNotUpError(machine.hostname, `${last}`, err.tail);
    throw err;
  });
}
