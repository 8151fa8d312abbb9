import { describe, expect, it } from "vitest";
import { envName, expandHome, resolveGlobals } from "./global-options";

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
    expect(expandHome("~core/x", {})).toBe("/home/core/x");
    expect(expandHome("/abs", {})).toBe("/abs");
  });
});
