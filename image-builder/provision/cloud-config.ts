/**
 * CoreOS cloud-config (the subset in image-builder/CLOUD-CONFIG.md): parsed from YAML and validated
 * as a whole, so a bad document is rejected before anything of it is applied.
 */
import { isScalar, parseDocument } from "yaml";

export interface UserSpec {
  name: string;
  groups: string[];
  sshAuthorizedKeys: string[];
  sudo: boolean;
  shell?: string;
  primaryGroup?: string;
  passwd?: string;
}

export interface WriteFile { path: string; content: Buffer; permissions: number; owner?: string }

export interface UnitSpec {
  name: string;
  content?: string;
  command?: "start" | "restart" | "stop" | "reload" | "try-restart";
  enable: boolean;
  runtime: boolean;
  dropIns: { name: string; content: string }[];
}

export interface InterfaceSpec {
  matchMac?: string;
  matchName?: string;
  addresses: string[];
  gateway?: string;
  dns: string[];
}

/** One line of /etc/hosts (corefleet extension `hosts`). */
export interface HostsEntry { address: string; names: string[] }

export interface CloudConfig {
  hostname?: string;
  machineId?: string;
  sshAuthorizedKeys: string[];
  users: UserSpec[];
  writeFiles: WriteFile[];
  /** coreos.etcd as key → value (keys as written, e.g. initial_cluster). */
  etcd?: Record<string, string>;
  fleet?: Record<string, string>;
  units: UnitSpec[];
  network?: { interfaces: InterfaceSpec[] };
  /** Extra /etc/hosts entries (e.g. the cluster registry's stable name). */
  hosts: HostsEntry[];
  /** Unknown keys, reported as warnings. */
  warnings: string[];
}

/** A cloud-config that cannot be applied; the message names the key and the bad value. */
export class CloudConfigError extends Error {
  override readonly name = "CloudConfigError";
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Parses and validates a cloud-config document. */
export function parseCloudConfig(text: string): CloudConfig {
  const first = text.split("\n", 1)[0]?.trim();
  if (first !== "#cloud-config") {
    throw new CloudConfigError(`Cannot use the user data: its first line is ${JSON.stringify(first ?? "")}, not "#cloud-config" (only CoreOS cloud-config is supported)`);
  }
  let doc: unknown;
  let machineIdSource: string | undefined;
  try {
    const parsed = parseDocument(text, { prettyErrors: false });
    if (parsed.errors[0] !== undefined) throw parsed.errors[0];
    doc = parsed.toJS();
    // An unquoted all-digit machine ID would become a number and lose its leading zeros: keep the text.
    const node = parsed.get("machine_id", true);
    if (isScalar(node) && typeof node.source === "string") machineIdSource = node.source;
  } catch (err) {
    throw new CloudConfigError(`Cannot parse the cloud-config: ${(err as Error).message.split("\n")[0] ?? ""}; fix the YAML`, { cause: err });
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isObj(doc)) throw new CloudConfigError("Cannot use the cloud-config: its top level must be a mapping of keys");
  const fail = (key: string, why: string, v: unknown): never => {
    throw new CloudConfigError(`Invalid cloud-config: "${key}" ${why}, got ${JSON.stringify(v)}`);
  };
  const str = (key: string, v: unknown): string => (typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : fail(key, "must be a string", v));
  const strList = (key: string, v: unknown): string[] => {
    if (v === undefined || v === null) return [];
    if (typeof v === "string") return v.split(",").map((s) => s.trim()).filter(Boolean);
    if (!Array.isArray(v)) return fail(key, "must be a list of strings", v);
    return v.map((x, i) => str(`${key}[${i}]`, x));
  };
  const list = (key: string, v: unknown): Obj[] => {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) return fail(key, "must be a list", v);
    return v.map((x, i) => (isObj(x) ? x : fail(`${key}[${i}]`, "must be a mapping", x)));
  };
  const flat = (key: string, v: unknown): Record<string, string> => {
    if (!isObj(v)) return fail(key, "must be a mapping", v);
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(v)) {
      if (!/^[a-z0-9_-]+$/i.test(k)) fail(`${key}.${k}`, "is not a valid option name", k);
      out[k] = str(`${key}.${k}`, x);
    }
    return out;
  };

  const known = new Set(["hostname", "machine_id", "ssh_authorized_keys", "users", "write_files", "coreos", "network", "hosts", "manage_etc_hosts"]);
  const cc: CloudConfig = { sshAuthorizedKeys: [], users: [], writeFiles: [], units: [], hosts: [], warnings: [] };
  for (const k of Object.keys(doc)) if (!known.has(k)) cc.warnings.push(`unknown key "${k}" ignored`);

  if (doc["hostname"] !== undefined) {
    const h = str("hostname", doc["hostname"]);
    if (!/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9-]{1,63})*$/.test(h)) fail("hostname", "must be a valid host name", h);
    cc.hostname = h;
  }
  if (doc["machine_id"] !== undefined) {
    const id = typeof doc["machine_id"] === "number" && machineIdSource !== undefined ? machineIdSource : str("machine_id", doc["machine_id"]);
    if (!/^[0-9a-f]{32}$/.test(id)) fail("machine_id", "must be 32 lowercase hex digits", id);
    cc.machineId = id;
  }
  cc.sshAuthorizedKeys = strList("ssh_authorized_keys", doc["ssh_authorized_keys"]);
  cc.users = list("users", doc["users"]).map((u, i) => {
    const k = `users[${i}]`;
    const name = str(`${k}.name`, u["name"]);
    if (!/^[a-z_][a-z0-9_-]*$/.test(name)) fail(`${k}.name`, "must be a valid user name", name);
    const spec: UserSpec = { name, groups: strList(`${k}.groups`, u["groups"]), sshAuthorizedKeys: strList(`${k}.ssh_authorized_keys`, u["ssh_authorized_keys"]), sudo: u["sudo"] !== undefined && u["sudo"] !== false && u["sudo"] !== null };
    if (u["shell"] !== undefined) spec.shell = str(`${k}.shell`, u["shell"]);
    if (u["primary_group"] !== undefined) spec.primaryGroup = str(`${k}.primary_group`, u["primary_group"]);
    if (u["passwd"] !== undefined) spec.passwd = str(`${k}.passwd`, u["passwd"]);
    return spec;
  });
  cc.writeFiles = list("write_files", doc["write_files"]).map((f, i) => {
    const k = `write_files[${i}]`;
    const p = str(`${k}.path`, f["path"]);
    if (!p.startsWith("/") || p.split("/").includes("..")) fail(`${k}.path`, "must be an absolute path without ..", p);
    const enc = f["encoding"] === undefined ? "" : str(`${k}.encoding`, f["encoding"]);
    if (!["", "b64", "base64", "text/plain"].includes(enc)) fail(`${k}.encoding`, 'must be "b64", "base64" or absent', enc);
    const raw = f["content"] === undefined ? "" : str(`${k}.content`, f["content"]);
    const perm = f["permissions"] === undefined ? "0644" : str(`${k}.permissions`, f["permissions"]);
    if (!/^0?[0-7]{3,4}$/.test(perm)) fail(`${k}.permissions`, 'must be an octal string like "0644"', perm);
    const wf: WriteFile = { path: p, content: enc === "b64" || enc === "base64" ? Buffer.from(raw, "base64") : Buffer.from(raw), permissions: parseInt(perm, 8) };
    if (f["owner"] !== undefined) wf.owner = str(`${k}.owner`, f["owner"]);
    return wf;
  });

  if (doc["coreos"] !== undefined) {
    const c = doc["coreos"];
    if (!isObj(c)) return fail("coreos", "must be a mapping", c);
    for (const k of Object.keys(c)) if (!["etcd", "etcd2", "fleet", "units", "update", "locksmith"].includes(k)) cc.warnings.push(`unknown key "coreos.${k}" ignored`);
    const etcd = c["etcd"] ?? c["etcd2"];
    if (etcd !== undefined) cc.etcd = flat(c["etcd"] !== undefined ? "coreos.etcd" : "coreos.etcd2", etcd);
    if (c["fleet"] !== undefined) cc.fleet = flat("coreos.fleet", c["fleet"]);
    cc.units = list("coreos.units", c["units"]).map((u, i) => {
      const k = `coreos.units[${i}]`;
      const name = str(`${k}.name`, u["name"]);
      if (!/^[a-zA-Z0-9:_.@-]+\.(service|socket|timer|path|mount|target|network|netdev|link)$/.test(name)) fail(`${k}.name`, "must be a unit name such as hello.service", name);
      const spec: UnitSpec = { name, enable: u["enable"] === true, runtime: u["runtime"] === true, dropIns: list(`${k}.drop_ins`, u["drop_ins"]).map((d, j) => ({ name: str(`${k}.drop_ins[${j}].name`, d["name"]), content: str(`${k}.drop_ins[${j}].content`, d["content"]) })) };
      if (u["content"] !== undefined) spec.content = str(`${k}.content`, u["content"]);
      if (u["command"] !== undefined) {
        const cmd = str(`${k}.command`, u["command"]);
        if (!["start", "restart", "stop", "reload", "try-restart"].includes(cmd)) fail(`${k}.command`, "must be start, restart, stop, reload or try-restart", cmd);
        spec.command = cmd as NonNullable<UnitSpec["command"]>;
      }
      return spec;
    });
  }

  if (doc["network"] !== undefined) {
    const n = doc["network"];
    if (!isObj(n)) return fail("network", "must be a mapping", n);
    cc.network = {
      interfaces: list("network.interfaces", n["interfaces"]).map((x, i) => {
        const k = `network.interfaces[${i}]`;
        const spec: InterfaceSpec = { addresses: strList(`${k}.address`, x["address"] ?? x["addresses"]), dns: strList(`${k}.dns`, x["dns"]) };
        if (x["match_mac"] !== undefined) {
          const mac = str(`${k}.match_mac`, x["match_mac"]).toLowerCase();
          if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) fail(`${k}.match_mac`, "must be a MAC address like 52:54:00:00:00:11", mac);
          spec.matchMac = mac;
        }
        if (x["match_name"] !== undefined) spec.matchName = str(`${k}.match_name`, x["match_name"]);
        if (spec.matchMac === undefined && spec.matchName === undefined) fail(k, "needs match_mac or match_name", x);
        for (const a of spec.addresses) if (!/^[0-9a-f.:]+\/\d{1,3}$/i.test(a)) fail(`${k}.address`, "must be an address with prefix length like 10.77.0.11/24", a);
        if (x["gateway"] !== undefined) spec.gateway = str(`${k}.gateway`, x["gateway"]);
        return spec;
      }),
    };
  }
  cc.hosts = list("hosts", doc["hosts"]).map((h, i) => {
    const k = `hosts[${i}]`;
    const address = str(`${k}.address`, h["address"]);
    if (!/^([0-9]{1,3}\.){3}[0-9]{1,3}$|^[0-9a-f:]+$/i.test(address)) fail(`${k}.address`, "must be an IPv4 or IPv6 address", address);
    const names = strList(`${k}.names`, h["names"]);
    if (names.length === 0) fail(`${k}.names`, "must name at least one host", h["names"]);
    for (const n of names) if (!/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9-]{1,63})*$/.test(n)) fail(`${k}.names`, "must be valid host names", n);
    return { address, names };
  });
  return cc;
}
