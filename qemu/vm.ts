/**
 * Launches and controls one QEMU machine: direct kernel boot or UEFI disk boot, a qcow2 overlay on a
 * base image, extra drives (config drive), fw_cfg files, caller-provided network arguments, the
 * serial console in a log file and a QMP socket for ACPI power-down.
 *
 * QEMU always runs daemonized with a pid file, and everything needed to find it again is kept in
 * `<workDir>/vm.json`, so a machine started by one process (`qemu up`) can be stopped by another
 * (`qemu down`) with {@link Vm.attach}.
 */
import { copyFile, mkdir, readFile, rm, stat, writeFile, open } from "node:fs/promises";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createConnection } from "node:net";
import os from "node:os";
import path from "node:path";
import { run } from "../lib/process/run";
import { abortReason, delay } from "../lib/async/delay";
import { probeAcceleratorOnce, type Accelerator } from "./kvm-probe";

/** Boot the kernel and initramfs directly (fast; what tests and clusters use). */
export interface KernelBoot {
  kind: "kernel";
  kernel: string;
  initrd?: string;
  /** Kernel command line, e.g. the content of build/image/cmdline.txt plus extra options. */
  cmdline?: string;
}

/** Boot the disk through UEFI firmware (OVMF), as a cloud does. */
export interface UefiBoot {
  kind: "uefi";
  /** Default `/usr/share/OVMF/OVMF_CODE_4M.fd`. */
  firmwareCode?: string;
  /** Template copied to `<workDir>/OVMF_VARS.fd` on first launch. Default `/usr/share/OVMF/OVMF_VARS_4M.fd`. */
  firmwareVars?: string;
}

/** An extra drive, e.g. a config-drive ISO. */
export interface VmDrive {
  path: string;
  /** Default "raw". */
  format?: "raw" | "qcow2";
  /** Default true. */
  readOnly?: boolean;
}

/** A file the guest can read from /sys/firmware/qemu_fw_cfg (name like `opt/corefleet/user-data`). */
export type FwCfgEntry = { name: string; file: string } | { name: string; string: string };

export interface VmOptions {
  /** Machine name (used in messages and as QEMU's -name). */
  name: string;
  /** Directory for the overlay, console log, pid file, QMP socket and vm.json. Created if missing. */
  workDir: string;
  boot: KernelBoot | UefiBoot;
  /**
   * The main disk: a qcow2 overlay `<workDir>/disk.qcow2` backed by `base` (created on first launch
   * and reused after). `sizeBytes` grows the overlay beyond the base (the image grows its state
   * partition to fill the disk on first boot).
   */
  disk?: { base: string; baseFormat?: "qcow2" | "raw"; sizeBytes?: number };
  /** Extra drives, attached as virtio disks after the main disk. */
  drives?: VmDrive[];
  fwCfg?: FwCfgEntry[];
  /** Network arguments passed as they are, e.g. ["-netdev", "tap,id=n0,...", "-device", "virtio-net-pci,netdev=n0,mac=..."]. */
  netArgs?: string[];
  /** Any further QEMU arguments, appended last. */
  extraArgs?: string[];
  /** Default 1024. */
  memoryMiB?: number;
  /** Default 1. */
  cpus?: number;
  /** QEMU -cpu model. Default "host" with KVM, "max" with TCG. */
  cpuModel?: string;
  /** Default: {@link probeAcceleratorOnce}'s choice (its notice is printed through `log`). */
  accelerator?: Accelerator;
  /** Prefix for the QEMU command, e.g. ["ip", "netns", "exec", "cf-dev"]. */
  commandPrefix?: string[];
  /** Default `qemu-system-x86_64`. */
  qemuBinary?: string;
  /** Where one-line notices go (default: stderr). */
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/** What vm.json holds: enough to find and control a running machine from another process. */
export interface VmRecord {
  name: string;
  workDir: string;
  pid: number;
  consoleLog: string;
  qmpSocket: string;
  accelerator: Accelerator;
  args: string[];
}

export interface WaitOptions {
  /** Give up after this many milliseconds (default: no limit besides the signal). */
  timeoutMs?: number;
  /** Only look at console output after this byte offset (e.g. a previous match's `offset`). */
  fromOffset?: number;
  signal?: AbortSignal;
}

/** A console pattern that was found, and where its match ends in the log. */
export interface ConsoleMatch {
  match: RegExpExecArray;
  offset: number;
}

const POLL_MS = 200;

/** Builds the QEMU argument list for a machine (exported for tests and for printing). */
export function qemuArgs(o: VmOptions, paths: { consoleLog: string; qmpSocket: string; pidFile: string; overlay?: string; varsFile?: string }, accel: Accelerator): string[] {
  const args = ["-name", o.name, "-machine", "q35", "-accel", accel, "-cpu", o.cpuModel ?? (accel === "kvm" ? "host" : "max"),
    "-m", String(o.memoryMiB ?? 1024), "-smp", String(o.cpus ?? 1), "-nodefaults", "-display", "none",
    "-serial", `file:${paths.consoleLog}`, "-qmp", `unix:${paths.qmpSocket},server=on,wait=off`,
    "-pidfile", paths.pidFile, "-daemonize", "-device", "virtio-rng-pci"];
  if (o.boot.kind === "kernel") {
    args.push("-kernel", o.boot.kernel);
    if (o.boot.initrd !== undefined) args.push("-initrd", o.boot.initrd);
    if (o.boot.cmdline !== undefined) args.push("-append", o.boot.cmdline);
  } else {
    args.push("-drive", `if=pflash,format=raw,unit=0,readonly=on,file=${o.boot.firmwareCode ?? "/usr/share/OVMF/OVMF_CODE_4M.fd"}`);
    args.push("-drive", `if=pflash,format=raw,unit=1,file=${paths.varsFile ?? ""}`);
  }
  if (paths.overlay !== undefined) args.push("-drive", `file=${paths.overlay},format=qcow2,if=virtio,discard=unmap`);
  for (const d of o.drives ?? []) {
    args.push("-drive", `file=${d.path},format=${d.format ?? "raw"},if=virtio,readonly=${d.readOnly === false ? "off" : "on"}`);
  }
  for (const f of o.fwCfg ?? []) {
    args.push("-fw_cfg", "file" in f ? `name=${f.name},file=${f.file}` : `name=${f.name},string=${f.string}`);
  }
  args.push(...(o.netArgs ?? []), ...(o.extraArgs ?? []));
  return args;
}

/** Creates a qcow2 overlay backed by `base` (never modifies the base). */
export async function createOverlay(base: string, overlay: string, options: { baseFormat?: "qcow2" | "raw"; sizeBytes?: number; signal?: AbortSignal } = {}): Promise<void> {
  const args = ["create", "-q", "-f", "qcow2", "-F", options.baseFormat ?? "qcow2", "-b", path.resolve(base), overlay];
  if (options.sizeBytes !== undefined) args.push(String(options.sizeBytes));
  await run("qemu-img", args, options.signal ? { signal: options.signal } : {});
}

/** A running (or stopped) QEMU machine. */
export class Vm {
  private constructor(readonly record: VmRecord) {}

  get name(): string { return this.record.name; }
  get pid(): number { return this.record.pid; }
  get consoleLog(): string { return this.record.consoleLog; }
  get accelerator(): Accelerator { return this.record.accelerator; }

  /** Starts a machine; resolves once QEMU runs (not when the guest has booted: see {@link waitForConsole}). */
  static async launch(o: VmOptions): Promise<Vm> {
    const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    const workDir = path.resolve(o.workDir);
    await mkdir(workDir, { recursive: true });
    let accel = o.accelerator;
    if (accel === undefined) {
      const probe = await probeAcceleratorOnce(o.signal ? { signal: o.signal } : {});
      if (probe.notice !== undefined) log(probe.notice);
      accel = probe.accelerator;
    }
    const consoleLog = path.join(workDir, "console.log");
    const pidFile = path.join(workDir, "qemu.pid");
    const qmpSocket = socketPath(workDir);
    const paths: Parameters<typeof qemuArgs>[1] = { consoleLog, qmpSocket, pidFile };
    if (o.disk !== undefined) {
      paths.overlay = path.join(workDir, "disk.qcow2");
      if (!(await exists(paths.overlay))) await createOverlay(o.disk.base, paths.overlay, { ...o.disk, ...(o.signal ? { signal: o.signal } : {}) });
    }
    if (o.boot.kind === "uefi") {
      paths.varsFile = path.join(workDir, "OVMF_VARS.fd");
      if (!(await exists(paths.varsFile))) await copyFile(o.boot.firmwareVars ?? "/usr/share/OVMF/OVMF_VARS_4M.fd", paths.varsFile);
    }
    const existing = await Vm.find(workDir);
    if (existing?.isRunning()) {
      throw new Error(`Cannot launch VM "${o.name}": it is already running as pid ${existing.pid} (workDir ${workDir}); stop it first`);
    }
    await rm(pidFile, { force: true });
    await rm(qmpSocket, { force: true });
    await writeFile(consoleLog, "");
    const args = qemuArgs(o, paths, accel);
    const [cmd, ...prefixArgs] = [...(o.commandPrefix ?? []), o.qemuBinary ?? "qemu-system-x86_64"];
    try {
      await run(cmd ?? "qemu-system-x86_64", [...prefixArgs, ...args], { timeoutMs: 60_000, ...(o.signal ? { signal: o.signal } : {}) });
    } catch (err) {
      throw new Error(`Cannot launch VM "${o.name}": QEMU refused to start; check the arguments and files it names`, { cause: err });
    }
    const pid = Number((await readFile(pidFile, "utf8")).trim());
    const record: VmRecord = { name: o.name, workDir, pid, consoleLog, qmpSocket, accelerator: accel, args };
    await writeFile(path.join(workDir, "vm.json"), `${JSON.stringify(record, null, 2)}\n`);
    return new Vm(record);
  }

  /** Finds a machine launched earlier (possibly by another process) from its workDir. */
  static async attach(workDir: string): Promise<Vm> {
    const vm = await Vm.find(workDir);
    if (!vm) throw new Error(`Cannot attach to the VM in ${path.resolve(workDir)}: it has no vm.json (it was never launched there)`);
    return vm;
  }

  /**
   * The VM recorded in `workDir`, or undefined when nothing was ever launched there (no vm.json).
   * A vm.json that cannot be read or parsed is an error naming the file, never "no VM".
   */
  static async find(workDir: string): Promise<Vm | undefined> {
    const file = path.join(path.resolve(workDir), "vm.json");
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new Error(`Cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
    let record: VmRecord;
    try {
      record = JSON.parse(text) as VmRecord;
    } catch (err) {
      throw new Error(`Cannot read ${file}: it is not valid JSON (${(err as Error).message}); remove the machine's directory or run the cluster's down command`, { cause: err });
    }
    if (typeof record !== "object" || record === null || typeof record.pid !== "number" || typeof record.name !== "string") {
      throw new Error(`Cannot read ${file}: it is not a VM record (no name and pid); remove the machine's directory or run the cluster's down command`);
    }
    return new Vm(record);
  }

  /** True while the QEMU process exists (a zombie counts as gone). */
  isRunning(): boolean {
    return processAlive(this.record.pid);
  }

  /** Waits until `pattern` appears on the serial console; rejects with the console tail on timeout or exit. */
  async waitForConsole(pattern: RegExp | string, options: WaitOptions = {}): Promise<ConsoleMatch> {
    const re = typeof pattern === "string" ? new RegExp(escapeRegExp(pattern)) : new RegExp(pattern.source, pattern.flags.replace("g", ""));
    const deadline = options.timeoutMs !== undefined ? Date.now() + options.timeoutMs : Infinity;
    const from = options.fromOffset ?? 0;
    for (;;) {
      const text = await this.consoleText(from);
      const m = re.exec(text);
      if (m) return { match: m, offset: from + Buffer.byteLength(text.slice(0, m.index + m[0].length)) };
      if (options.signal?.aborted) throw abortReason(options.signal);
      const what = `Waiting for ${String(re)} on the console of VM "${this.name}"`;
      if (!this.isRunning()) {
        throw new Error(`${what} failed: QEMU exited. Console tail:\n${await this.consoleTail()}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`${what} timed out after ${options.timeoutMs} ms. Console tail:\n${await this.consoleTail()}`);
      }
      await delay(POLL_MS, options.signal);
    }
  }

  /** The console log from byte `fromOffset` (default: all of it). */
  async consoleText(fromOffset = 0): Promise<string> {
    const fh = await openIfExists(this.record.consoleLog);
    if (fh === undefined) return "";
    try {
      const size = (await fh.stat()).size;
      const buf = Buffer.alloc(Math.max(0, size - fromOffset));
      await fh.read(buf, 0, buf.length, fromOffset);
      return buf.toString("utf8");
    } finally {
      await fh.close();
    }
  }

  /** The last `lines` lines of the console (for error messages). */
  async consoleTail(lines = 40): Promise<string> {
    const text = await this.consoleText();
    return text.replace(/\r/g, "").split("\n").slice(-lines).join("\n");
  }

  /** Sends one QMP command and returns its result. */
  async qmp(command: string, args?: Record<string, unknown>): Promise<unknown> {
    return qmpCommand(this.record.qmpSocket, command, args);
  }

  /** Presses the ACPI power button (the guest shuts down cleanly if it listens). */
  async powerdown(): Promise<void> {
    await this.qmp("system_powerdown");
  }

  /** Clean stop: ACPI power-down, wait up to `timeoutMs` (default 60 s), then kill. */
  async stop(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    if (!this.isRunning()) return;
    try {
      await this.powerdown();
      if (await this.waitForExit({ timeoutMs: options.timeoutMs ?? 60_000, ...(options.signal ? { signal: options.signal } : {}) })) return;
    } catch (err) {
      if (options.signal?.aborted) throw err;
      // QMP unreachable (QEMU wedged or exiting): fall through to the kill.
    }
    await this.kill();
  }

  /** Hard power-off: SIGKILL to QEMU, as pulling the plug. */
  async kill(): Promise<void> {
    if (!this.isRunning()) return;
    try {
      process.kill(this.record.pid, "SIGKILL");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
    }
    if (!(await this.waitForExit({ timeoutMs: 10_000 }))) {
      throw new Error(`Cannot kill VM "${this.name}": pid ${this.pid} is still there 10 s after SIGKILL; check it with ps`);
    }
  }

  /** Resolves true once QEMU has exited, false when `timeoutMs` passes first. */
  async waitForExit(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<boolean> {
    const deadline = Date.now() + (options.timeoutMs ?? Infinity);
    while (this.isRunning()) {
      if (Date.now() > deadline) return false;
      await delay(POLL_MS, options.signal);
    }
    return true;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // Daemonized QEMU is reparented to PID 1, which may not reap it: a zombie has exited.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** unix socket paths are limited to 107 bytes; long workDirs get a hashed path under the temp dir. */
function socketPath(workDir: string): string {
  const p = path.join(workDir, "qmp.sock");
  if (Buffer.byteLength(p) < 100) return p;
  return path.join(os.tmpdir(), `corefleet-qmp-${createHash("sha256").update(workDir).digest("hex").slice(0, 16)}.sock`);
}

/** Opens `file` for reading, or undefined when it does not exist yet (QEMU creates it when it starts). */
export async function openIfExists(file: string): Promise<import("node:fs/promises").FileHandle | undefined> {
  try {
    return await open(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`Cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Minimal QMP client: greeting, qmp_capabilities, one command, its answer. */
function qmpCommand(socket: string, command: string, args?: Record<string, unknown>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    let buf = "";
    let stage = 0;
    const fail = (why: string): void => {
      conn.destroy();
      reject(new Error(`QMP command "${command}" on ${socket} failed: ${why}`));
    };
    conn.setTimeout(10_000, () => fail("no answer within 10 s"));
    conn.on("error", (err) => fail(err.message));
    conn.on("data", (chunk) => {
      buf += chunk.toString("utf8");
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === "") continue;
        const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc?: string }; event?: string };
        if (msg.event !== undefined) continue;
        if (msg.error !== undefined) return fail(msg.error.desc ?? JSON.stringify(msg.error));
        if (stage === 0 && msg.QMP !== undefined) {
          stage = 1;
          conn.write(`${JSON.stringify({ execute: "qmp_capabilities" })}\n`);
        } else if (stage === 1 && "return" in msg) {
          stage = 2;
          conn.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
        } else if (stage === 2 && "return" in msg) {
          conn.end();
          resolve(msg.return);
        }
      }
    });
  });
}
