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

/**
 * Config drive: scans block devices (or the `devices` given, e.g. an image file in tests) with
 * blkid, mounts the first labelled config-2/cidata read-only and reads its user data.
 */
export function configDriveSource(options: { devices?: string[] } = {}): UserDataSource {
  return {
    name: "config drive",
    async read(signal) {
      const sig = signal ? { signal } : {};
      const r = await run("blkid", ["-o", "export", ...(options.devices ?? [])], { ...sig, allowFailure: true });
      const drive = parseBlkidExport(r.stdout).find((d) => d.label !== undefined && configDrivePath(d.label) !== undefined && (d.type === "iso9660" || d.type === "vfat"));
      if (drive?.label === undefined) return undefined;
      const rel = configDrivePath(drive.label) ?? "";
      const dir = await mkdtemp(path.join(os.tmpdir(), "corefleet-config-drive-"));
      try {
        await run("mount", ["-o", options.devices ? "ro,loop" : "ro", "-t", drive.type ?? "auto", drive.devname, dir], sig);
        try {
          const text = await readFile(path.join(dir, rel), "utf8").catch((err: NodeJS.ErrnoException) => {
            if (err.code === "ENOENT") throw new Error(`config drive ${drive.devname} (label ${drive.label}) has no ${rel}`);
            throw err;
          });
          return { source: `config drive ${drive.devname} (${drive.label}:/${rel})`, text };
        } finally {
          await run("umount", [dir], { allowFailure: true });
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
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
 * Retries while the network comes up, for `timeoutMs` (default 10 s). A 404 means no user data.
 */
export function imdsSource(options: { baseUrl?: string; timeoutMs?: number } = {}): UserDataSource {
  const base = options.baseUrl ?? "http://169.254.169.254";
  return {
    name: "EC2 instance metadata",
    async read(signal) {
      const deadline = Date.now() + (options.timeoutMs ?? 10_000);
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
      throw new Error(`no answer from the instance metadata service at ${base} within ${options.timeoutMs ?? 10_000} ms (${lastError})`);
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
