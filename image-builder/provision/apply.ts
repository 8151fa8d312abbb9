/**
 * Applies a validated cloud-config to a root directory ("/" on a host, a temp dir in tests). Files
 * are written here; everything that touches the running system (host name, users, systemd,
 * networkd) goes through the `SystemActions` interface.
 */
import { appendFile, chmod, chown, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import type { CloudConfig } from "./cloud-config";

/** What provisioning does to the running system besides writing files. */
export interface SystemActions {
  setHostname(name: string): Promise<void>;
  /** Runs a command (useradd, chown, systemctl). */
  run(command: string, args: string[]): Promise<void>;
}

/** The etcd environment file for coreos.etcd (see CLOUD-CONFIG.md). */
export function etcdEnv(etcd: Record<string, string>): string {
  const lines = ["# Written by corefleet-provision from cloud-config coreos.etcd"];
  if (etcdIsProxy(etcd)) {
    const endpoints = etcd["endpoints"] ?? clientUrlsFromCluster(etcd["initial_cluster"] ?? "");
    if (endpoints === "") throw new Error('Cannot configure the etcd proxy: coreos.etcd has "proxy: on" but neither "endpoints" nor "initial_cluster"; add one of them');
    lines.push("COREFLEET_ETCD_MODE=proxy", `COREFLEET_ETCD_ENDPOINTS=${endpoints}`);
    return `${lines.join("\n")}\n`;
  }
  for (const [k, v] of Object.entries(etcd).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (k === "proxy" || k === "endpoints") continue;
    lines.push(`ETCD_${k.toUpperCase().replace(/-/g, "_")}=${v}`);
  }
  return `${lines.join("\n")}\n`;
}

/** "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380" → "10.0.0.1:2379,10.0.0.2:2379" (peer → client port). */
export function clientUrlsFromCluster(cluster: string): string {
  return cluster.split(",").map((m) => m.split("=")[1] ?? "").filter(Boolean)
    .map((u) => u.replace(/^https?:\/\//, "").replace(/:2380$/, ":2379")).join(",");
}

/** Whether coreos.etcd makes this host's local etcd a gRPC proxy (see {@link etcdEnv}). */
export function etcdIsProxy(etcd: Record<string, string> | undefined): boolean {
  const proxy = etcd?.["proxy"];
  return proxy !== undefined && proxy !== "off";
}

/**
 * fleet.conf for coreos.fleet: `key="value"` lines. On a proxy host fleetd sends no keepalive pings
 * unless coreos.fleet says otherwise: etcd 3.4's gRPC proxy closes connections that ping.
 */
export function fleetConf(fleet: Record<string, string>, localEtcdIsProxy = false): string {
  const options = localEtcdIsProxy && fleet["etcd_keepalive_interval"] === undefined ? { ...fleet, etcd_keepalive_interval: "0" } : fleet;
  return ["# Written by corefleet-provision from cloud-config coreos.fleet",
    ...Object.entries(options).map(([k, v]) => `${k}=${JSON.stringify(v)}`)].join("\n") + "\n";
}

/** A systemd-networkd .network file for one interface entry. */
export function networkFile(i: NonNullable<CloudConfig["network"]>["interfaces"][number]): string {
  const match = i.matchMac !== undefined ? `MACAddress=${i.matchMac}` : `Name=${i.matchName ?? ""}`;
  const lines = ["# Written by corefleet-provision from cloud-config network", "[Match]", match, "", "[Network]", "DHCP=no", "LinkLocalAddressing=no"];
  for (const a of i.addresses) lines.push(`Address=${a}`);
  if (i.gateway !== undefined) lines.push(`Gateway=${i.gateway}`);
  for (const d of i.dns) lines.push(`DNS=${d}`);
  return `${lines.join("\n")}\n`;
}

/** Writes `content` atomically (temp file + rename); falls back to in-place for bind-mounted files. */
async function writeAtomic(file: string, content: string | Buffer, mode = 0o644): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.corefleet-tmp`;
  await writeFile(tmp, content, { mode });
  await chmod(tmp, mode);
  try {
    await rename(tmp, file);
  } catch (err) {
    // /etc/machine-id may be a mount point (systemd bind-mounts it on first boot): write through it.
    if ((err as NodeJS.ErrnoException).code !== "EBUSY") throw err;
    await writeFile(file, content);
    // Best effort: the content is already written through the mount; a leftover temporary file is harmless.
    await rename(tmp, `${tmp}.unused`).catch(() => undefined);
  }
}

async function passwdEntry(root: string, user: string): Promise<{ uid: number; gid: number; home: string } | undefined> {
  const text = await readFile(path.join(root, "etc/passwd"), "utf8").catch(() => "");
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f[0] === user && f[2] !== undefined && f[3] !== undefined && f[5] !== undefined) return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] };
  }
  return undefined;
}

async function addKeys(root: string, user: string, keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  const pw = await passwdEntry(root, user);
  if (pw === undefined) throw new Error(`Cannot add SSH keys for user "${user}": the user does not exist`);
  const dir = path.join(root, pw.home, ".ssh");
  const file = path.join(dir, "authorized_keys");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const existing = new Set((await readFile(file, "utf8").catch(() => "")).split("\n").map((l) => l.trim()));
  const fresh = keys.map((k) => k.trim()).filter((k) => !existing.has(k));
  if (fresh.length > 0) await appendFile(file, `${fresh.join("\n")}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  await chown(dir, pw.uid, pw.gid);
  await chown(file, pw.uid, pw.gid);
}

/** Marks the /etc/hosts lines written from cloud-config `hosts`. */
export const HOSTS_MARK = "# cloud-config hosts";

/** Applies `cc` under `root`; returns one line per thing done. Problems are collected, not thrown, after validation. */
export async function applyCloudConfig(cc: CloudConfig, root: string, actions: SystemActions): Promise<{ done: string[]; errors: string[] }> {
  const done: string[] = [];
  const errors: string[] = [];
  const attempt = async (what: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
      done.push(what);
    } catch (err) {
      errors.push(`${what}: ${(err as Error).message}`);
    }
  };
  const r = (p: string): string => path.join(root, p);

  if (cc.machineId !== undefined) {
    const id = cc.machineId;
    await attempt(`machine ID ${id}`, () => writeAtomic(r("etc/machine-id"), `${id}\n`, 0o444));
  }
  if (cc.hostname !== undefined) {
    const h = cc.hostname;
    await attempt(`host name ${h}`, async () => {
      await writeAtomic(r("etc/hostname"), `${h}\n`);
      // sudo and others resolve the host name; there is no DNS on a fleet network.
      const hosts = (await readFile(r("etc/hosts"), "utf8").catch(() => "")).split("\n").filter((l) => !l.startsWith("127.0.1.1") && l !== "");
      await writeAtomic(r("etc/hosts"), `${[...hosts, `127.0.1.1\t${h}`].join("\n")}\n`);
      await actions.setHostname(h);
    });
  }
  if (cc.hosts.length > 0) {
    const entries = cc.hosts;
    await attempt(`${entries.length} /etc/hosts entr${entries.length === 1 ? "y" : "ies"}`, async () => {
      // Ours are marked, so a reboot with changed user data replaces them instead of adding more.
      const kept = (await readFile(r("etc/hosts"), "utf8").catch(() => "")).split("\n").filter((l) => !l.endsWith(HOSTS_MARK) && l !== "");
      await writeAtomic(r("etc/hosts"), `${[...kept, ...entries.map((e) => `${e.address}\t${e.names.join(" ")}\t${HOSTS_MARK}`)].join("\n")}\n`);
    });
  }
  for (const u of cc.users) {
    await attempt(`user ${u.name}`, async () => {
      if ((await passwdEntry(root, u.name)) === undefined) {
        const args = ["--create-home", "--shell", u.shell ?? "/bin/bash"];
        if (u.primaryGroup !== undefined) args.push("--gid", u.primaryGroup);
        else args.push("--user-group");
        if (u.groups.length > 0) args.push("--groups", u.groups.join(","));
        if (u.passwd !== undefined) args.push("--password", u.passwd);
        await actions.run("useradd", [...args, u.name]);
      }
      if (u.sudo) await writeAtomic(r(`etc/sudoers.d/90-cloud-config-${u.name}`), `${u.name} ALL=(ALL) NOPASSWD:ALL\n`, 0o440);
      await addKeys(root, u.name, u.sshAuthorizedKeys);
    });
  }
  if (cc.sshAuthorizedKeys.length > 0) {
    await attempt(`${cc.sshAuthorizedKeys.length} SSH key(s) for core`, () => addKeys(root, "core", cc.sshAuthorizedKeys));
  }
  for (const f of cc.writeFiles) {
    await attempt(`file ${f.path}`, async () => {
      await writeAtomic(r(f.path), f.content, f.permissions);
      if (f.owner !== undefined) await actions.run("chown", [f.owner, r(f.path)]);
    });
  }
  if (cc.etcd !== undefined) {
    const etcd = cc.etcd;
    await attempt("etcd settings /etc/corefleet/etcd.env", () => writeAtomic(r("etc/corefleet/etcd.env"), etcdEnv(etcd)));
  }
  if (cc.fleet !== undefined) {
    const fleet = cc.fleet;
    await attempt("fleet settings /etc/fleet/fleet.conf", () => writeAtomic(r("etc/fleet/fleet.conf"), fleetConf(fleet, etcdIsProxy(cc.etcd))));
  }
  if (cc.network !== undefined) {
    const ifaces = cc.network.interfaces;
    await attempt(`static network for ${ifaces.length} interface(s)`, async () => {
      for (const [i, spec] of ifaces.entries()) await writeAtomic(r(`etc/systemd/network/10-corefleet-${i}.network`), networkFile(spec));
      // networkd reads these files when it starts. If it already runs (with the DHCP fallback), it is
      // restarted through PID 1: `networkctl reload` would need the D-Bus daemon, which is not up yet
      // this early in boot, and it hung for its whole timeout in TCG guests.
      await actions.run("systemctl", ["--no-block", "try-restart", "systemd-networkd.service"]);
    });
  }
  if (cc.units.length > 0) {
    for (const u of cc.units) {
      const dir = u.runtime ? "run/systemd/system" : "etc/systemd/system";
      await attempt(`unit ${u.name} written`, async () => {
        if (u.content !== undefined) await writeAtomic(r(`${dir}/${u.name}`), u.content);
        for (const d of u.dropIns) await writeAtomic(r(`${dir}/${u.name}.d/${d.name}`), d.content);
      });
    }
    await attempt("systemd daemon-reload", () => actions.run("systemctl", ["daemon-reload"]));
    for (const u of cc.units) {
      if (u.enable) await attempt(`unit ${u.name} enabled`, () => actions.run("systemctl", ["enable", ...(u.runtime ? ["--runtime"] : []), u.name]));
      const command = u.command;
      if (command !== undefined) await attempt(`unit ${u.name} ${command}`, () => actions.run("systemctl", ["--no-block", command, u.name]));
    }
  }
  return { done, errors };
}
