import { describe, expect, it } from "vitest";
import { Writable, PassThrough } from "node:stream";
import { bareBooleanFlags, createProgram, expandCommandPrefix, helpAlias, runFleetctl } from "./program";
import { blockAttempts, pollDelay } from "./wait-states";
import { parseEndpoint } from "../lib/api/client";
import { remoteRegistrars, sshTunnel } from "./ssh";

class Sink extends Writable {
  text = "";
  override _write(c: Buffer | string, _e: BufferEncoding, cb: () => void): void {
    this.text += c.toString();
    cb();
  }
}

function deps(): { stdout: Sink; stderr: Sink; stdin: PassThrough; env: NodeJS.ProcessEnv; version: string } {
  return { stdout: new Sink(), stderr: new Sink(), stdin: new PassThrough(), env: {}, version: "9.9.9" };
}

describe("fleetctl program", () => {
  it("expands an unambiguous command prefix after global options, like cobra", () => {
    const program = createProgram({ ...deps(), registrars: remoteRegistrars });
    expect(expandCommandPrefix(["--endpoint", "unix:///x", "list-m", "-l"], program)).toEqual(["--endpoint", "unix:///x", "list-machines", "-l"]);
    expect(expandCommandPrefix(["list-unit"], program)).toEqual(["list-unit"]); // list-units or list-unit-files
    expect(expandCommandPrefix(["--debug", "sta", "x"], program)).toEqual(["--debug", "sta", "x"]); // start or status
    expect(expandCommandPrefix(["--endpoint=unix:///x", "des", "x"], program)).toEqual(["--endpoint=unix:///x", "destroy", "x"]);
  });

  it("takes a bare --strict-host-key-checking as true, never the next word as its value (fleet's Go flags)", () => {
    expect(bareBooleanFlags(["--strict-host-key-checking", "list-units"])).toEqual(["--strict-host-key-checking=true", "list-units"]);
    expect(bareBooleanFlags(["--strict-host-key-checking=false", "list-units"])).toEqual(["--strict-host-key-checking=false", "list-units"]);
    expect(bareBooleanFlags(["ssh", "m1", "--", "--strict-host-key-checking"])).toEqual(["ssh", "m1", "--", "--strict-host-key-checking"]);
  });

  it("runs the command after a bare --strict-host-key-checking instead of printing the help", async () => {
    const d = deps();
    // No fleetd at this socket: the command runs and fails to connect (before: help, exit 0).
    expect(await runFleetctl(["--endpoint", "unix:///nonexistent/fleet.sock", "--strict-host-key-checking", "list-units"], d)).toBe(1);
    expect(d.stdout.text).not.toContain("Usage:");
    expect(d.stderr.text).toMatch(/nonexistent\/fleet\.sock|fleet\.sock/);
  });

  it("turns no-block and block attempts into fleet's attempt counts", () => {
    expect(blockAttempts({ block: false, blockAttempts: 5 })).toBe(-1);
    expect(blockAttempts({ blockAttempts: 3 })).toBe(3);
    expect(blockAttempts({ blockAttempts: -2 })).toBe(0);
    expect(blockAttempts({})).toBe(0);
    expect([0, 1, 2, 3, 9].map(pollDelay)).toEqual([50, 100, 200, 250, 250]);
  });

  it("validates endpoints like fleet", () => {
    expect(() => parseEndpoint("/var/run/fleet.sock")).toThrow("URL scheme undefined");
    expect(() => parseEndpoint("unix://var/run/fleet.sock")).toThrow('unable to connect to host "var" with scheme "unix"');
    expect(parseEndpoint("unix:///var/run/fleet.sock")).toMatchObject({ kind: "unix", socketPath: "/var/run/fleet.sock" });
    expect(parseEndpoint("http://10.0.0.1:49153,http://10.0.0.2:49153")).toMatchObject({ kind: "http", host: "10.0.0.1", port: 49153 });
  });

  it("names the commands an ambiguous prefix could mean (it said \"Unknown command\" as for a typo)", async () => {
    const d = deps();
    expect(await runFleetctl(["list-unit"], { ...d, registrars: remoteRegistrars })).toBe(1);
    expect(d.stderr.text).toBe('Ambiguous command "list-unit" for "fleetctl": it could be list-units or list-unit-files; type more of its name\n');
    const s = deps();
    expect(await runFleetctl(["sta", "x.service"], { ...s, registrars: remoteRegistrars })).toBe(1);
    expect(s.stderr.text).toBe('Ambiguous command "sta" for "fleetctl": it could be start or status; type more of its name\n');
    const t = deps();
    expect(await runFleetctl(["frobnicate"], t)).toBe(1);
    expect(t.stderr.text).toBe('Unknown command "frobnicate" for "fleetctl"; run "fleetctl help" for the list of commands\n');
  });

  it("refuses an --ssh-port out of range and a negative --lines before any connection", async () => {
    // 99999 reached ssh2, which threw its RangeError after arming a handshake timer: fleetctl never exited.
    const cases: [string[], string][] = [
      [["status", "--ssh-port", "99999", "x.service"], `error: option '--ssh-port <port>' argument '99999' is invalid. "99999" is not a port; use 1 to 65535\n`],
      [["ssh", "--ssh-port", "0", "m1"], `error: option '--ssh-port <port>' argument '0' is invalid. "0" is not a port; use 1 to 65535\n`],
      [["journal", "--ssh-port=-22", "x.service"], `error: option '--ssh-port <port>' argument '-22' is invalid. "-22" is not a port; use 1 to 65535\n`],
      [["journal", "--lines=-5", "x.service"], `error: option '--lines <n>' argument '-5' is invalid. "-5" is negative; use 0 or more.\n`],
    ];
    for (const [argv, message] of cases) {
      const d = deps();
      expect(await runFleetctl(["--endpoint", "unix:///nonexistent/fleet.sock", ...argv], { ...d, registrars: remoteRegistrars })).toBe(1);
      expect(d.stderr.text).toBe(message);
    }
  });

  it("names --tunnel when its address is malformed (it said only \"Invalid address\")", async () => {
    const cases: [string, string][] = [
      ["core-1:0", 'Invalid port in --tunnel (FLEETCTL_TUNNEL) address "core-1:0": use 1-65535\n'],
      ["a:b:c", 'Invalid --tunnel (FLEETCTL_TUNNEL) address "a:b:c": expected HOST[:PORT]\n'],
    ];
    for (const [tunnel, message] of cases) {
      const d = deps();
      expect(await runFleetctl(["--tunnel", tunnel, "list-units"], { ...d, tunnel: sshTunnel })).toBe(1);
      expect(d.stderr.text).toBe(message);
    }
  });

  it("refuses --sign with exit 2 and unknown drivers with exit 1", async () => {
    const d = deps();
    expect(await runFleetctl(["submit", "--sign", "x.service"], d)).toBe(2);
    expect(d.stderr.text).toBe("WARNING: The signed/verified units feature is DEPRECATED and cannot be used.\n");
    const v = deps();
    expect(await runFleetctl(["verify", "x.service"], v)).toBe(2);
    expect(v.stderr.text).toBe("WARNING: The signed/verified units feature is DEPRECATED and cannot be used.\n");
    const e = deps();
    expect(await runFleetctl(["--driver", "etcd", "list-units"], e)).toBe(1);
    expect(e.stderr.text).toContain('unrecognized driver "etcd"');
    // FLEETCTL_DRIVER=etcd was ignored: the API's requests went to the etcd URL ("404 page not found").
    const env = deps();
    expect(await runFleetctl(["list-units"], { ...env, env: { FLEETCTL_DRIVER: "etcd", FLEETCTL_ENDPOINT: "http://127.0.0.1:2379" } })).toBe(1);
    expect(env.stderr.text).toBe('Unable to initialize client: unrecognized driver "etcd" (from FLEETCTL_DRIVER): this fleetctl only speaks the fleet API\n');
  });

  it("takes fleet's --h as -h/--help, for the program and each command, not after --", async () => {
    for (const argv of [[], ["list-units"], ["start"], ["journal"]]) {
      const short = deps();
      const alias = deps();
      expect(await runFleetctl([...argv, "-h"], { ...short, registrars: remoteRegistrars })).toBe(0);
      expect(await runFleetctl([...argv, "--h"], { ...alias, registrars: remoteRegistrars })).toBe(0);
      expect(alias.stderr.text).toBe("");
      expect(alias.stdout.text).toBe(short.stdout.text);
      expect(alias.stdout.text).toMatch(/^Usage: fleetctl /);
    }
    expect(helpAlias(["ssh", "m1", "--", "ls", "--h"])).toEqual(["ssh", "m1", "--", "ls", "--h"]);
  });
});
