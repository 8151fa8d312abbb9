import { describe, expect, it } from "vitest";
import { PassThrough, Writable } from "node:stream";
import { envName, expandHome, resolveGlobals } from "./global-options";
import { runFleetctl } from "./program";

class Sink extends Writable {
  text = "";
  override _write(c: Buffer | string, _e: BufferEncoding, cb: () => void): void {
    this.text += c.toString();
    cb();
  }
}

describe("global options", () => {
  it("take the flag over FLEETCTL_* over the default", () => {
    const env = { FLEETCTL_ENDPOINT: "unix:///env.sock", FLEETCTL_SSH_USERNAME: "envuser", HOME: "/home/me" };
    const g = resolveGlobals({ endpoint: "http://127.0.0.1:1" }, env);
    expect(g.endpoint).toBe("http://127.0.0.1:1");
    expect(g.sshUsername).toBe("envuser");
    expect(g.tunnel).toBe("");
    expect(g.sshTimeout).toBe(10);
    expect(g.requestTimeout).toBeUndefined();
    expect(resolveGlobals({}, { FLEETCTL_REQUEST_TIMEOUT: "2.5" }).requestTimeout).toBe(2.5);
    expect(g.strictHostKeyChecking).toBe(true);
    expect(g.knownHostsFile).toBe("/home/me/.fleetctl/known_hosts");
  });

  it("parse booleans like Go's strconv.ParseBool and name the source of a bad value", () => {
    expect(resolveGlobals({}, { FLEETCTL_STRICT_HOST_KEY_CHECKING: "false" }).strictHostKeyChecking).toBe(false);
    expect(resolveGlobals({ strictHostKeyChecking: "0" }, {}).strictHostKeyChecking).toBe(false);
    expect(() => resolveGlobals({}, { FLEETCTL_STRICT_HOST_KEY_CHECKING: "maybe" })).toThrow(
      'Invalid value "maybe" for FLEETCTL_STRICT_HOST_KEY_CHECKING (--strict-host-key-checking): use true or false',
    );
    expect(() => resolveGlobals({ sshTimeout: "soon" }, {})).toThrow('Invalid value "soon" for --ssh-timeout: expected a number of seconds');
  });

  it("name environment variables as fleet did", () => {
    expect(envName("known-hosts-file")).toBe("FLEETCTL_KNOWN_HOSTS_FILE");
    expect(expandHome("~/x", { HOME: "/root" })).toBe("/root/x");
    expect(expandHome("/abs", {})).toBe("/abs");
  });

  it("expand ~user from the user database and ~/ from HOME, as ssh does", () => {
    const passwd = () => "root:x:0:0:root:/root:/bin/bash\ncore:x:500:500:CoreOS Admin:/home/core:/bin/bash\nsvc:x:900:900::/var/lib/svc:/usr/sbin/nologin\n";
    expect(expandHome("~core/x", {}, passwd)).toBe("/home/core/x");
    // Not /home/root/... nor /home/svc/...: the account's own home directory.
    expect(expandHome("~root/.fleetctl/known_hosts", {}, passwd)).toBe("/root/.fleetctl/known_hosts");
    expect(expandHome("~svc", {}, passwd)).toBe("/var/lib/svc");
    expect(expandHome("~", { HOME: "/home/me" }, passwd)).toBe("/home/me");
    expect(expandHome("~/.fleetctl/known_hosts", { HOME: "/home/me" }, passwd)).toBe("/home/me/.fleetctl/known_hosts");
    expect(() => expandHome("~nosuchuser/known_hosts", {}, passwd)).toThrow('Cannot expand "~nosuchuser/known_hosts": no such user "nosuchuser"');
    // The real user database: root's home is /root.
    expect(resolveGlobals({ knownHostsFile: "~root/kh" }, {}).knownHostsFile).toBe("/root/kh");
    expect(resolveGlobals({ knownHostsFile: "~/kh" }, { HOME: "/home/me" }).knownHostsFile).toBe("/home/me/kh");
  });

  it("expands --known-hosts-file ~user/... from the user database and refuses an unknown user", async () => {
    const d = { stdout: new Sink(), stderr: new Sink(), stdin: new PassThrough(), env: {}, version: "9.9.9" };
    expect(await runFleetctl(["--known-hosts-file", "~nosuchuser-fleetctl/known_hosts", "--endpoint", "unix:///nonexistent/fleet.sock", "list-units"], d)).toBe(1);
    expect(d.stderr.text).toBe('Cannot expand "~nosuchuser-fleetctl/known_hosts": no such user "nosuchuser-fleetctl" (use an absolute path or ~/ for your own home directory)\n');
  });
});
