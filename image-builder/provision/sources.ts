/**
 * Where user data comes from, in order: a config drive (ISO9660/FAT labelled config-2 or cidata),
 * QEMU fw_cfg (opt/corefleet/user-data), the EC2 instance metadata service (IMDSv2).
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { run } from "../../lib/process/run";
import { delay } from "../../lib/async/delay";

/** Found user data and where from. */
export interface UserData { source: string; text: string }

/** One place user data may come from; `undefined` = nothing there. */
export interface UserDataSource {
  name: string;
  read(signal?: AbortSignal): Promise<UserData | undefined>;
}

/** Parses `blkid -o export` output into devices with LABEL and TYPE. */
export function parseBlkidExport(text: string): { devname: string; label?: string; type?: string }[] {
  const out: { devname: string; label?: string; type?: string }[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const f = new Map(block.split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as const));
    const devname = f.get("DEVNAME");
    if (devname === undefined || devname === "") continue;
    const d: { devname: string; label?: string; type?: string } = { devname };
    const label = f.get("LABEL");
    const type = f.get("TYPE");
    if (label !== undefined) d.label = label;
    if (type !== undefined) d.type = type;
    out.push(d);
  }
  return out;
}

/** The file holding user data on a config drive with this label, or undefined if the label is not one. */
export function configDrivePath(label: string): string | undefined {
  const l = label.toLowerCase();
  if (l === "config-2") return "openstack/latest/user_data";
  if (l === "cidata") return "user-data";
  return undefined;
}

/** Reads one file from a config drive: by mounting it (on a host), or with xorriso/mtools in user space. */
export type ConfigDriveReader = (drive: { devname: string; type: string }, file: string, signal?: AbortSignal) => Promise<string | undefined>;

/** Mounts the drive read-only (the image's way: the kernel has iso9660 and vfat). */
export const mountReader: ConfigDriveReader = async (drive, file, signal) => {
  const sig = signal ? { signal } : {};
  const dir = await mkdtemp(path.join(os.tmpdir(), "corefleet-config-drive-"));
  try {
    const isBlock = drive.devname.startsWith("/dev/");
    await run("mount", ["-o", isBlock ? "ro" : "ro,loop", "-t", drive.type, drive.devname, dir], sig);
    try {
      return await readFile(path.join(dir, file), "utf8").catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") return undefined;
        throw err;
      });
    } finally {
      await run("umount", [dir], { allowFailure: true });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

/** Extracts with xorriso (ISO9660) or mcopy (FAT): for build hosts whose kernel lacks those file systems. */
export const userspaceReader: ConfigDriveReader = async (drive, file, signal) => {
  const sig = signal ? { signal } : {};
  const dir = await mkdtemp(path.join(os.tmpdir(), "corefleet-config-drive-"));
  const out = path.join(dir, "user-data");
  try {
    const r = drive.type === "iso9660"
      ? await run("xorriso", ["-osirrox", "on", "-indev", drive.devname, "-extract", `/${file}`, out], { ...sig, allowFailure: true })
      : await run("mcopy", ["-n", "-i", drive.devname, `::${file}`, out], { ...sig, allowFailure: true, env: { ...process.env, MTOOLS_SKIP_CHECK: "1" } });
    if (r.exitCode !== 0) return undefined;
    return await readFile(out, "utf8");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

/**
 * Config drive: scans block devices (or the `devices` given, e.g. an image file in tests) with
 * blkid and reads the user data of the first one labelled config-2/cidata.
 */
export function configDriveSource(options: { devices?: string[]; reader?: ConfigDriveReader } = {}): UserDataSource {
  return {
    name: "config drive",
    async read(signal) {
      const sig = signal ? { signal } : {};
      const r = await run("blkid", ["-o", "export", ...(options.devices ?? [])], { ...sig, allowFailure: true });
      const drive = parseBlkidExport(r.stdout).find((d) => d.label !== undefined && configDrivePath(d.label) !== undefined && (d.type === "iso9660" || d.type === "vfat"));
      if (drive?.label === undefined) return undefined;
      const rel = configDrivePath(drive.label) ?? "";
      const text = await (options.reader ?? mountReader)({ devname: drive.devname, type: drive.type ?? "auto" }, rel, signal);
      if (text === undefined) throw new Error(`config drive ${drive.devname} (label ${drive.label}) has no ${rel}`);
      return { source: `config drive ${drive.devname} (${drive.label}:/${rel})`, text };
    },
  };
}

/** QEMU fw_cfg entry `opt/corefleet/user-data` (needs the qemu_fw_cfg module, loaded here). */
export function fwCfgSource(options: { sysfs?: string; name?: string } = {}): UserDataSource {
  const name = options.name ?? "opt/corefleet/user-data";
  return {
    name: "fw_cfg",
    async read(signal) {
      if (options.sysfs === undefined) await run("modprobe", ["qemu_fw_cfg"], { allowFailure: true, ...(signal ? { signal } : {}) });
      const file = path.join(options.sysfs ?? "/sys/firmware/qemu_fw_cfg", "by_name", name, "raw");
      const text = await readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") return undefined;
        throw err;
      });
      return text === undefined ? undefined : { source: `fw_cfg ${name}`, text };
    },
  };
}

/**
 * EC2 instance metadata, IMDSv2: PUT /latest/api/token, then GET /latest/user-data with the token.
 * Retries while the network comes up, for `timeoutMs` (default 30 s). A 404 means no user data.
 */
export function imdsSource(options: { baseUrl?: string; timeoutMs?: number } = {}): UserDataSource {
  const base = options.baseUrl ?? "http://169.254.169.254";
  return {
    name: "EC2 instance metadata",
    async read(signal) {
      const deadline = Date.now() + (options.timeoutMs ?? 30_000);
      let lastError = "";
      while (Date.now() < deadline) {
        try {
          const tokenRes = await fetch(`${base}/latest/api/token`, {
            method: "PUT", headers: { "X-aws-ec2-metadata-token-ttl-seconds": "300" }, signal: AbortSignal.timeout(2000),
          });
          if (!tokenRes.ok) throw new Error(`token request answered HTTP ${tokenRes.status}`);
          const token = await tokenRes.text();
          const res = await fetch(`${base}/latest/user-data`, { headers: { "X-aws-ec2-metadata-token": token }, signal: AbortSignal.timeout(2000) });
          if (res.status === 404) return undefined;
          if (!res.ok) throw new Error(`user-data request answered HTTP ${res.status}`);
          return { source: `EC2 instance metadata ${base}`, text: await res.text() };
        } catch (err) {
          lastError = (err as Error).message;
          if ((err as Error).message.startsWith("user-data request") || (err as Error).message.startsWith("token request")) throw err;
        }
        await delay(500, signal);
      }
      throw new Error(`no answer from the instance metadata service at ${base} within ${options.timeoutMs ?? 30_000} ms (${lastError})`);
    },
  };
}

/** Tries the sources in order; returns the first user data found and notes from sources that failed. */
export async function findUserData(sources: UserDataSource[], signal?: AbortSignal): Promise<{ data?: UserData; notes: string[] }> {
  const notes: string[] = [];
  for (const s of sources) {
    try {
      const data = await s.read(signal);
      if (data !== undefined) return { data, notes };
      notes.push(`${s.name}: none`);
    } catch (err) {
      notes.push(`${s.name}: ${(err as Error).message}`);
    }
  }
  return { notes };
}
