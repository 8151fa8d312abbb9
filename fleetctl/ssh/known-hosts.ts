/**
 * OpenSSH known_hosts files: lookup of a host's keys (plain and hashed `|1|salt|hash` patterns,
 * comma-separated patterns, `[host]:port` for non-22 ports, negation `!`, wildcards) and appending
 * a new entry in OpenSSH format. `@cert-authority`/`@revoked` lines are skipped (not supported).
 */
import { createHash, createHmac } from "node:crypto";
import { appendFile, mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";

/** The name of a host in known_hosts: bare for port 22, else `[host]:port`. */
export function knownHostsAddress(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** A key's type from its wire blob (the first SSH string), e.g. `ssh-ed25519`. */
export function keyType(blob: Buffer): string {
  if (blob.length < 4) return "unknown";
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString("latin1");
}

/** fleet's algorithm label in prompts: RSA, DSA, ECDSA, ED25519. */
export function keyAlgorithmLabel(type: string): string {
  if (type === "ssh-rsa") return "RSA";
  if (type === "ssh-dss") return "DSA";
  if (type.startsWith("ecdsa-")) return "ECDSA";
  if (type === "ssh-ed25519") return "ED25519";
  return type.toUpperCase();
}

/** MD5 fingerprint with colons (fleet's prompt) . */
export function md5Fingerprint(blob: Buffer): string {
  return createHash("md5").update(blob).digest("hex").replace(/(..)(?!$)/g, "$1:");
}

/** SHA256 fingerprint as OpenSSH prints it today. */
export function sha256Fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

function globToRegExp(pattern: string): RegExp {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "i");
}

function hashedMatches(pattern: string, address: string): boolean {
  const parts = pattern.split("|"); // ["", "1", salt, hash]
  if (parts.length !== 4 || parts[1] !== "1") return false;
  const salt = Buffer.from(parts[2]!, "base64");
  return createHmac("sha1", salt).update(address).digest("base64") === parts[3];
}

/** Whether a comma-separated host pattern list names `address` (a negated match wins). */
export function hostPatternMatches(patterns: string, address: string): boolean {
  if (patterns.startsWith("|")) return hashedMatches(patterns, address);
  let matched = false;
  for (const p of patterns.split(",")) {
    const negated = p.startsWith("!");
    const pattern = negated ? p.slice(1) : p;
    if (globToRegExp(pattern).test(address)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** One key line that names the host. */
export interface KnownKey {
  type: string;
  blob: Buffer;
  /** 1-based line number, for the "Offending key" message. */
  line: number;
}

/** The keys a known_hosts file lists for `address` (empty when the file does not exist). */
export async function knownKeysFor(file: string, address: string): Promise<KnownKey[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new Error(`Cannot read known hosts file "${file}": ${(err as Error).message}`, { cause: err });
  }
  const out: KnownKey[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith("@")) return;
    const [hosts, type, key] = line.split(/\s+/);
    if (!hosts || !type || !key) return;
    if (!hostPatternMatches(hosts, address)) return;
    out.push({ type, blob: Buffer.from(key, "base64"), line: i + 1 });
  });
  return out;
}

/** Appends `<address> <type> <base64>` (creating the file and its directory). */
export async function addKnownHost(file: string, address: string, blob: Buffer): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  let prefix = "";
  try {
    const existing = await readFile(file, "utf8");
    if (existing.length > 0 && !existing.endsWith("\n")) prefix = "\n";
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  await appendFile(file, `${prefix}${address} ${keyType(blob)} ${blob.toString("base64")}\n`, { mode: 0o600 });
}
