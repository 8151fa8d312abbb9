/**
 * Decides which QEMU accelerator to use. `/dev/kvm` existing is not enough: on some hosts (nested
 * virtualisation, sandboxes) a KVM guest hangs on its first instruction. So the probe really boots
 * a Linux kernel under KVM with no root file system and waits, with a short timeout, for the panic it
 * prints on the serial console (~0.5 s with working KVM). If it arrives, KVM works; otherwise we fall
 * back to TCG (software emulation). A real-mode boot sector is not enough: on this kind of host it
 * runs fine and the hang only starts once the guest enters protected mode.
 */
import { access } from "node:fs/promises";
import { constants } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ProcessError, run, type RunResult } from "../lib/process/run";

/** The accelerators corefleet knows how to use. */
export type Accelerator = "kvm" | "tcg";

/** What the probe decided and why. */
export interface ProbeResult {
  accelerator: Accelerator;
  /** Why this accelerator was chosen (one sentence, for logs). */
  reason: string;
  /** A one-line notice to print when falling back to TCG; undefined when KVM works. */
  notice?: string;
}

export interface ProbeOptions {
  /** How long the KVM test guest may take to panic (default 6000 ms; with working KVM it takes < 1 s). */
  timeoutMs?: number;
  /**
   * The Linux kernel to boot. Default: the first that exists of `build/image/vmlinuz` (relative to
   * the working directory) and `/boot/vmlinuz-$(uname -r)`. Without one the probe picks TCG.
   */
  kernel?: string;
  /** QEMU binary (default `qemu-system-x86_64`). */
  qemuBinary?: string;
  /** The device to check before starting QEMU (default `/dev/kvm`). */
  kvmDevice?: string;
  /**
   * Environment to read `COREFLEET_ACCEL` (`kvm` or `tcg`) from; it skips the probe. Default
   * `process.env`.
   */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

let cached: Promise<ProbeResult> | undefined;

/** Like {@link probeAccelerator} but runs the probe once per process. */
export function probeAcceleratorOnce(options: ProbeOptions = {}): Promise<ProbeResult> {
  cached ??= probeAccelerator(options).catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

/** Boots the probe guest under KVM and reports whether it ran; never throws for a broken KVM. */
export async function probeAccelerator(options: ProbeOptions = {}): Promise<ProbeResult> {
  const env = options.env ?? process.env;
  const forced = env["COREFLEET_ACCEL"];
  if (forced === "kvm" || forced === "tcg") {
    return withNotice({ accelerator: forced, reason: `COREFLEET_ACCEL=${forced} is set` });
  }
  if (forced !== undefined && forced !== "") {
    throw new Error(`Cannot use COREFLEET_ACCEL="${forced}": it must be "kvm" or "tcg"; unset it to probe`);
  }
  const device = options.kvmDevice ?? "/dev/kvm";
  try {
    await access(device, constants.R_OK | constants.W_OK);
  } catch {
    return withNotice({ accelerator: "tcg", reason: `${device} is missing or not accessible` });
  }
  const kernel = await findKernel(options.kernel);
  if (kernel === undefined) {
    return withNotice({ accelerator: "tcg", reason: "no Linux kernel was found to test KVM with (build the image first)" });
  }
  const timeoutMs = options.timeoutMs ?? 6000;
  const stop = new AbortController();
  const onOuterAbort = (): void => stop.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onOuterAbort, { once: true });
  let output = "";
  let panicked = false;
  const started = Date.now();
  let exited: RunResult | undefined;
  try {
    exited = await run(
      options.qemuBinary ?? "qemu-system-x86_64",
      ["-accel", "kvm", "-cpu", "host", "-machine", "q35", "-m", "128", "-nodefaults", "-display", "none",
        "-no-reboot", "-kernel", kernel, "-append", "console=ttyS0 panic=-1", "-serial", "stdio", "-monitor", "none"],
      {
        timeoutMs,
        signal: stop.signal,
        allowFailure: true,
        onStdout: (chunk) => {
          output += chunk;
          if (!panicked && output.includes("Kernel panic")) {
            panicked = true;
            stop.abort(new Error("probe guest reached its panic"));
          }
        },
      },
    ).catch((err: unknown) => {
      if (!panicked) throw err;
      return undefined;
    });
    // QEMU that ends by itself before the timeout (no KVM for it, a bad option) failed to run the guest.
    if (!panicked && exited !== undefined && !exited.timedOut && exited.exitCode !== 0) throw new ProcessError(exited);
  } catch (err) {
    if (options.signal?.aborted) throw err;
    return withNotice({ accelerator: "tcg", reason: `the KVM probe guest failed: ${(err as Error).message.split("\n")[0] ?? ""}` });
  } finally {
    options.signal?.removeEventListener("abort", onOuterAbort);
  }
  if (panicked) {
    return { accelerator: "kvm", reason: `a KVM guest booted a kernel in ${Date.now() - started} ms` };
  }
  const detail = output.trim().split("\n").slice(-1)[0]?.trim();
  return withNotice({
    accelerator: "tcg",
    reason: `a KVM guest did not boot a kernel within ${timeoutMs} ms${detail ? ` (last console output: "${detail.slice(0, 120)}")` : ""}`,
  });
}

async function findKernel(explicit: string | undefined): Promise<string | undefined> {
  const candidates = explicit !== undefined
    ? [explicit]
    : [path.resolve("build/image/vmlinuz"), `/boot/vmlinuz-${os.release()}`];
  for (const c of candidates) {
    try {
      await access(c, constants.R_OK);
      return c;
    } catch {
      if (explicit !== undefined) throw new Error(`Cannot probe KVM with kernel "${explicit}": it does not exist or is not readable`);
    }
  }
  return undefined;
}

function withNotice(r: ProbeResult): ProbeResult {
  if (r.accelerator === "kvm") return r;
  return { ...r, notice: `notice: using TCG software emulation (slow) because ${r.reason}` };
}
