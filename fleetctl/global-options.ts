/**
 * fleetctl's global options: flag > `FLEETCTL_<FLAG>` environment variable > default, as fleet.
 */
import { readFileSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { CliError } from "./cli-error";

/** Resolved global options. */
export interface GlobalOptions {
  /** API endpoint; default `unix:///var/run/fleet.sock`. */
  endpoint: string;
  /** `host[:port]` to tunnel API traffic through; "" for none. */
  tunnel: string;
  /** SSH user for tunnel, ssh, status, journal; default `core`. */
  sshUsername: string;
  /** Seconds allowed to set up an SSH connection; default 10. */
  sshTimeout: number;
  /** OpenSSH known_hosts file; default `~/.fleetctl/known_hosts`. */
  knownHostsFile: string;
  /** Verify SSH host keys; default true. */
  strictHostKeyChecking: boolean;
  /**
   * Seconds per API request, only when given (flag or env): like fleet's API client, requests have no
   * limit by default (a tunnel's first request waits for fleetctl to start on the remote host).
   */
  requestTimeout: number | undefined;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** Private key for SSH when no agent is used (our addition). */
  identityFile: string;
  /** Bearer token for fleetd's TCP listener (our addition). */
  apiToken: string;
  debug: boolean;
}

interface Spec {
  key: keyof GlobalOptions;
  flag: string;
  kind: "string" | "number" | "boolean";
  default: string;
}

const SPECS: Spec[] = [
  { key: "endpoint", flag: "endpoint", kind: "string", default: "unix:///var/run/fleet.sock" },
  { key: "tunnel", flag: "tunnel", kind: "string", default: "" },
  { key: "sshUsername", flag: "ssh-username", kind: "string", default: "core" },
  { key: "sshTimeout", flag: "ssh-timeout", kind: "number", default: "10.0" },
  { key: "knownHostsFile", flag: "known-hosts-file", kind: "string", default: "~/.fleetctl/known_hosts" },
  { key: "strictHostKeyChecking", flag: "strict-host-key-checking", kind: "boolean", default: "true" },
  { key: "requestTimeout", flag: "request-timeout", kind: "number", default: "" },
  { key: "caFile", flag: "ca-file", kind: "string", default: "" },
  { key: "certFile", flag: "cert-file", kind: "string", default: "" },
  { key: "keyFile", flag: "key-file", kind: "string", default: "" },
  { key: "identityFile", flag: "identity-file", kind: "string", default: "" },
  { key: "apiToken", flag: "api-token", kind: "string", default: "" },
  { key: "debug", flag: "debug", kind: "boolean", default: "false" },
];

/** The environment variable of a flag: `FLEETCTL_` + upper case, dashes → underscores. */
export function envName(flag: string): string {
  return `FLEETCTL_${flag.toUpperCase().replace(/-/g, "_")}`;
}

/** Home directory of `user` in an `/etc/passwd` text (`name:x:uid:gid:gecos:home:shell`), if listed. */
export function passwdHome(passwd: string, user: string): string | undefined {
  for (const line of passwd.split("\n")) {
    const fields = line.split(":");
    if (fields.length >= 7 && fields[0] === user && fields[5]) return fields[5];
  }
  return undefined;
}

/** The system's user database (`/etc/passwd`), or "" when it cannot be read. */
function readPasswd(): string {
  try {
    return readFileSync("/etc/passwd", "utf8");
  } catch {
    return "";
  }
}

/**
 * Expands `~` and `~user` at the start of a path as ssh does: `~` and `~/…` are the caller's home
 * (`HOME`, else the account's home directory), `~user` and `~user/…` that user's home directory from
 * the user database (it was `/home/user` whatever the account said, e.g. `/root` for root). An unknown
 * user is an error, as in ssh ("No such user"). `passwd` is the user database's text (tests).
 */
export function expandHome(path: string, env: NodeJS.ProcessEnv, passwd: () => string = readPasswd): string {
  if (!path.startsWith("~")) return path;
  const slash = path.indexOf("/");
  const user = slash < 0 ? path.slice(1) : path.slice(1, slash);
  const rest = slash < 0 ? "" : path.slice(slash);
  let home: string | undefined;
  if (user === "") home = env.HOME || homedir();
  else if (user === currentUserName()) home = passwdHome(passwd(), user) ?? homedir();
  else home = passwdHome(passwd(), user);
  if (home === undefined) throw new CliError(`Cannot expand "${path}": no such user "${user}" (use an absolute path or ~/ for your own home directory)`);
  // "/" as home: "~/x" is "/x", not "//x".
  return rest === "" ? home : `${home.replace(/\/+$/, "")}${rest}`;
}

/** The name of the user running fleetctl, or undefined (no passwd entry). */
function currentUserName(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

function parseBool(flag: string, text: string, from: string): boolean {
  const t = text.trim().toLowerCase();
  if (["1", "t", "true", "yes", "on"].includes(t)) return true;
  if (["0", "f", "false", "no", "off"].includes(t)) return false;
  throw new CliError(`Invalid value "${text}" for ${from} (--${flag}): use true or false`);
}

/**
 * Resolves the globals. `flags` are commander's parsed values (camelCase keys; undefined when not given).
 */
export function resolveGlobals(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): GlobalOptions {
  const out: Record<string, string | number | boolean> = {};
  for (const spec of SPECS) {
    const flagValue = flags[spec.key];
    const envValue = env[envName(spec.flag)];
    const from = flagValue !== undefined ? `--${spec.flag}` : envValue !== undefined ? envName(spec.flag) : "the default";
    const given = flagValue !== undefined ? flagValue : (envValue ?? spec.default);
    const raw = typeof given === "boolean" || typeof given === "number" ? given : typeof given === "string" ? given : JSON.stringify(given);
    if (spec.kind === "boolean") {
      out[spec.key] = typeof raw === "boolean" ? raw : parseBool(spec.flag, String(raw), from);
    } else if (spec.kind === "number") {
      if (raw === "") continue; // no default: unset
      const n = Number(raw);
      if (!Number.isFinite(n) || n < 0) throw new CliError(`Invalid value "${String(raw)}" for ${from}: expected a number of seconds`);
      out[spec.key] = n;
    } else {
      out[spec.key] = String(raw);
    }
  }
  const g = out as unknown as GlobalOptions;
  g.knownHostsFile = expandHome(g.knownHostsFile, env);
  if (g.identityFile) g.identityFile = expandHome(g.identityFile, env);
  return g;
}

/** Flag definitions for commander: `[flag, description]`. */
export const GLOBAL_FLAG_HELP: Record<string, string> = {
  endpoint: "fleet API endpoint: unix:///path or http(s)://host:port",
  tunnel: "Establish an SSH tunnel through the provided address (HOST[:PORT]) for all API traffic",
  "ssh-username": "Username to use when connecting to CoreOS instances",
  "ssh-timeout": "Amount of time in seconds to allow for SSH connection initialization before failing",
  "known-hosts-file": "File used to store remote machine fingerprints",
  "strict-host-key-checking": "Verify host keys presented by remote machines before initiating SSH connections (true|false)",
  "request-timeout": "Amount of time in seconds to allow a single API request before considering it failed (default: no limit; 60 through --tunnel; 0 = no limit)",
  "ca-file": "Path to a CA file for the https endpoint",
  "cert-file": "Path to a client certificate for the https endpoint",
  "key-file": "Path to the client key for the https endpoint",
  "identity-file": "Private key for SSH connections instead of the ssh-agent (SSH_AUTH_SOCK)",
  "api-token": "Bearer token for a fleetd TCP listener that requires one (fleetd's api_token)",
};

export { SPECS as GLOBAL_SPECS };
