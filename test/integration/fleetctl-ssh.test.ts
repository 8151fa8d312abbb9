/**
 * fleetctl's SSH features against a real SSH server on loopback (ssh2's server, see
 * fleetctl-ssh-server.ts): known_hosts prompt/accept/refuse/mismatch, identity file and ssh-agent keys,
 * remote exit codes for ssh/status/journal, and --tunnel to the API's unix socket (via the real
 * `fleetctl fd-forward` run by the server) and to a TCP endpoint (direct-tcpip).
 */
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../lib/process/run";
import { delay } from "../../lib/async/delay";
import { md5Fingerprint } from "../../fleetctl/ssh/known-hosts";
import { waitFor } from "../helpers/fleet-cluster";
import { etcdFixture } from "../helpers/fleet-fixture";
import { FleetctlEnv, type RunOptions } from "./fleetctl-harness";
import { ed25519KeyPair, startSshServer, writeClientKey, type TestSshServer } from "./fleetctl-ssh-server";

const M1 = "a1b2c3d4e5f60718293a4b5c6d7e8f91";
const MAIN_TS = fileURLToPath(new URL("../../fleetctl/main.ts", import.meta.url));

describe("fleetctl over SSH", () => {
  const etcd = etcdFixture();
  let env: FleetctlEnv;
  let server: TestSshServer;
  let binDir: string;
  let identity: string;
  let knownHosts: string;
  let ssh: (argv: string[], opts?: RunOptions) => ReturnType<FleetctlEnv["run"]>;

  beforeAll(async () => {
    env = await FleetctlEnv.start(etcd(), [M1], { [M1]: { extra: { public_ip: "127.0.0.1" } } });
    binDir = join(env.dir, "bin");
    await mkdir(binDir);
    const script = async (name: string, body: string): Promise<void> => {
      await writeFile(join(binDir, name), `#!/bin/sh\n${body}\n`);
      await chmod(join(binDir, name), 0o755);
    };
    // Like systemctl status: 3 for a unit that is not active; "ok" units pass.
    await script("systemctl", 'echo "systemctl $*"\ncase "$*" in *ok*) exit 0;; esac\nexit 3');
    await script("journalctl", 'echo "journalctl $*"');
    await script("fleetctl", `exec node --import tsx ${MAIN_TS} "$@"`);
    const key = await writeClientKey(env.dir);
    identity = key.identity;
    server = await startSshServer({ clientPublicKey: key.publicKey, binDir });
    knownHosts = join(env.dir, "known_hosts");
    ssh = (argv, opts = {}) =>
      env.run(["--identity-file", identity, "--known-hosts-file", knownHosts, ...argv], {
        ...opts,
        env: { PATH: `${binDir}:${process.env.PATH ?? ""}`, ...opts.env },
      });
    await writeFile(join(env.dir, "hello.service"), "[Service]\nExecStart=/bin/sleep infinity\n");
    await writeFile(join(env.dir, "ok.service"), "[Service]\nExecStart=/bin/sleep 1000\n");
    expect((await env.run(["start", "hello.service", "ok.service"])).code).toBe(0);
  });

  afterAll(async () => {
    await server?.close();
    await env?.close();
  });

  const address = (): string => `[127.0.0.1]:${server.port}`;
  const fingerprint = (): string => md5Fingerprint(Buffer.from(server.hostPublicKey.split(" ")[1]!, "base64"));

  it("asks about an unknown host and refuses on anything but yes", async () => {
    const r = await ssh(["ssh", "--ssh-port", String(server.port), "a1b2", "--", "echo", "hi"], { stdin: "no\n" });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      `The authenticity of host '${address()}' can't be established.\nED25519 key fingerprint is ${fingerprint()}.\nAre you sure you want to continue connecting (yes/no)? Host key verification failed.\n`,
    );
    await expect(readFile(knownHosts, "utf8")).rejects.toThrow(/ENOENT/);
  });

  it("saves the key on yes, runs the command, and does not ask again", async () => {
    const r = await ssh(["ssh", "--ssh-port", String(server.port), "a1b2", "--", "echo", "hi"], { stdin: "yes\n" });
    expect(r.stdout).toBe("hi\n");
    expect(r.stderr).toContain(`Warning: Permanently added '${address()}' (ED25519) to the list of known hosts.\n`);
    expect(r.code).toBe(0);
    expect(await readFile(knownHosts, "utf8")).toBe(`${address()} ${server.hostPublicKey}\n`);
    const again = await ssh(["ssh", "--ssh-port", String(server.port), "--machine", "a1b2c3", "echo", "again"]);
    expect(again).toEqual({ code: 0, stdout: "again\n", stderr: "" });
  });

  it("exits with the remote command's exit code", async () => {
    const r = await ssh(["ssh", "--ssh-port", String(server.port), "--unit", "hello", "--", "echo out; echo err >&2; exit 7"]);
    expect(r).toEqual({ code: 7, stdout: "out\n", stderr: "err\n" });
  });

  it("runs systemctl status on the unit's machine and passes its exit code through", async () => {
    const r = await ssh(["status", "--ssh-port", String(server.port), "hello"]);
    expect(r).toEqual({ code: 3, stdout: "systemctl status -l hello.service\n", stderr: "" });
    expect(server.commands).toContain("systemctl status -l hello.service");
  });

  it("separates several status outputs with a blank line and stops at the first failure", async () => {
    const r = await ssh(["status", "--ssh-port", String(server.port), "ok", "hello", "ok"]);
    expect(r).toEqual({ code: 3, stdout: "systemctl status -l ok.service\n\nsystemctl status -l hello.service\n", stderr: "" });
  });

  it("runs status locally when the unit's machine is this machine", async () => {
    const idFile = join(env.dir, "machine-id");
    await writeFile(idFile, `${M1}\n`);
    const before = server.commands.length;
    const r = await ssh(["status", "hello"], { machineIdFile: idFile });
    expect(r).toEqual({ code: 3, stdout: "systemctl status -l hello.service\n", stderr: "" });
    expect(server.commands.length).toBe(before);
  });

  it("stops a remote command on Ctrl-C and exits 130", async () => {
    const interrupt = new AbortController();
    const started = ssh(["ssh", "--ssh-port", String(server.port), "a1b2", "--", "echo started; sleep 30"], { signal: interrupt.signal });
    await waitFor("remote command running", () => server.commands.includes("echo started; sleep 30"));
    await delay(200);
    interrupt.abort();
    const r = await started;
    expect(r).toEqual({ code: 130, stdout: "started\n", stderr: "" });
  });

  it("runs journalctl with fleet's arguments", async () => {
    const r = await ssh(["journal", "--ssh-port", String(server.port), "--lines", "5", "-f", "hello"]);
    expect(r).toEqual({ code: 0, stdout: "journalctl --unit hello.service --no-pager -n 5 --output short -f\n", stderr: "" });
    // fleet's own spelling (its -f was a long flag): "unknown option '--f'", exit 1.
    expect(await ssh(["journal", "--ssh-port", String(server.port), "--lines", "5", "--f", "hello"])).toEqual(r);
    expect(await ssh(["journal", "ghost"])).toEqual({ code: 1, stdout: "", stderr: "Unit ghost.service does not exist.\n" });
  });

  it("refuses a changed host key with OpenSSH's warning, unless checking is off", async () => {
    const other = ed25519KeyPair().public;
    const wrongFile = join(env.dir, "known_hosts_wrong");
    await writeFile(wrongFile, `# comment\n${address()} ${other}\n`);
    const r = await ssh(["--known-hosts-file", wrongFile, "ssh", "--ssh-port", String(server.port), "a1b2", "true"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n");
    expect(r.stderr).toContain(`Offending key in ${wrongFile}:2\n`);
    const off = await ssh(["--known-hosts-file", wrongFile, "--strict-host-key-checking=false", "ssh", "--ssh-port", String(server.port), "a1b2", "true"]);
    expect(off).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  it("tunnels API traffic to the unix socket through fleetctl fd-forward on the tunnel host", async () => {
    const r = await ssh(["--tunnel", `127.0.0.1:${server.port}`, "list-machines", "--no-legend", "--full"]);
    expect(r).toEqual({ code: 0, stdout: `${M1}\t127.0.0.1\t-\n`, stderr: "" });
    expect(server.commands).toContain(`fleetctl fd-forward ${env.socket}`);
  });

  it("tunnels API traffic to a TCP endpoint through a direct-tcpip channel", async () => {
    const tcp = await env.api.listen({ kind: "tcp", host: "127.0.0.1", port: 0, token: "tok" });
    const r = await ssh(["--tunnel", `127.0.0.1:${server.port}`, "--endpoint", tcp.address, "--api-token", "tok", "list-units", "--no-legend", "--fields", "unit,active"]);
    expect(r).toEqual({ code: 0, stdout: "hello.service\tactive\nok.service\tactive\n", stderr: "" });
    const denied = await ssh(["--tunnel", `127.0.0.1:${server.port}`, "--endpoint", tcp.address, "list-units"]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("missing or wrong credentials");
  });

  it("opens a shell (no PTY when stdin is not a terminal) and returns its exit code", async () => {
    const r = await ssh(["ssh", "--ssh-port", String(server.port), "a1b2"], { stdin: "echo from-shell\nexit 4\n" });
    expect(r).toEqual({ code: 4, stdout: "from-shell\n", stderr: "" });
    expect(server.commands).toContain("(shell)");
  });

  it("asks for an xterm-256color PTY and raw mode when stdin is a terminal", async () => {
    const modes: boolean[] = [];
    const r = await ssh(["ssh", "--ssh-port", String(server.port), "a1b2"], { stdin: "exit 5\n", tty: modes });
    expect(r.code).toBe(5);
    expect(server.ptys).toEqual(["xterm-256color 80x24"]);
    expect(modes).toEqual([true, false]);
  });

  it("reaches a machine through the --tunnel host with a nested SSH connection", async () => {
    const before = server.commands.length;
    const r = await ssh(["--tunnel", `127.0.0.1:${server.port}`, "ssh", "--ssh-port", String(server.port), "a1b2", "--", "echo", "nested"]);
    expect(r).toEqual({ code: 0, stdout: "nested\n", stderr: "" });
    // The API lookups went through the tunnel too (fd-forward), then the nested connection ran the command.
    expect(server.commands.slice(before)).toEqual([`fleetctl fd-forward ${env.socket}`, "echo nested"]);
  });

  it("gives up when the SSH handshake does not finish within --ssh-timeout", async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      const r = await ssh(["--ssh-timeout", "0.5", "ssh", "--ssh-port", String(port), "a1b2", "true"]);
      expect(r).toEqual({
        code: 1,
        stdout: "",
        stderr: `Unable to connect to core@127.0.0.1:${port}: timed out while initiating SSH connection (after 0.5 s; see --ssh-timeout)\n`,
      });
    } finally {
      silent.close();
    }
  });

  it("refuses ambiguous or unknown ssh targets with fleet's messages", async () => {
    expect(await ssh(["ssh", "nothing-like-this", "true"])).toEqual({ code: 1, stdout: "", stderr: "could not find matching unit or machine\n" });
    expect(await ssh(["ssh", "--machine", "a", "--unit", "b"])).toEqual({
      code: 1,
      stdout: "",
      stderr: "Both machine and unit flags provided, please specify only one.\n",
    });
    expect(await ssh(["status", "ghost"])).toEqual({ code: 1, stdout: "", stderr: "Unit ghost.service does not exist.\n" });
  });

  it("says why a unit that exists has no machine to ssh to, and names what was not found", async () => {
    await writeFile(join(env.dir, "everywhere.service"), "[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\n");
    await writeFile(join(env.dir, "nowhere.service"), "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nMachineID=ffffffffffffffffffffffffffffffff\n");
    expect((await env.run(["start", "--no-block", "everywhere.service", "nowhere.service"])).code).toBe(0);
    // Both said "could not find matching unit or machine", as if the name were a typo.
    expect(await ssh(["ssh", "everywhere", "true"])).toEqual({
      code: 1,
      stdout: "",
      stderr: 'global units unsupported: everywhere.service runs on every machine that matches it; pick one with "fleetctl ssh --machine ID" ("fleetctl list-units" shows where it runs)\n',
    });
    expect(await ssh(["ssh", "nowhere.service", "true"])).toEqual({ code: 1, stdout: "", stderr: 'unit nowhere.service is not scheduled on any machine; "fleetctl status nowhere.service" says why\n' });
    expect(await ssh(["ssh", "--unit", "ghost", "true"])).toEqual({
      code: 1,
      stdout: "",
      stderr: 'unit does not exist: no unit ghost.service in the cluster ("fleetctl list-unit-files" lists them)\n',
    });
    expect(await ssh(["ssh", "--machine", "ffff", "true"])).toEqual({ code: 1, stdout: "", stderr: 'machine does not exist: no machine ID starts with "ffff" ("fleetctl list-machines" lists them)\n' });
  });

  it("authenticates with keys from ssh-agent, and says what to do without one", async () => {
    const agentSock = join(env.dir, "agent.sock");
    const stop = new AbortController();
    const agent = run("ssh-agent", ["-D", "-a", agentSock], { signal: stop.signal, allowFailure: true }).catch(() => undefined);
    try {
      for (let i = 0; i < 50; i++) {
        if (await readFile(agentSock).then(() => true, (e: NodeJS.ErrnoException) => e.code !== "ENOENT")) break;
        await delay(50);
      }
      await run("ssh-add", [identity], { env: { ...process.env, SSH_AUTH_SOCK: agentSock } });
      const r = await env.run(["--known-hosts-file", knownHosts, "ssh", "--ssh-port", String(server.port), "a1b2", "echo", "agent"], {
        env: { SSH_AUTH_SOCK: agentSock },
      });
      expect(r).toEqual({ code: 0, stdout: "agent\n", stderr: "" });
      const forwarded = await ssh(["ssh", "-A", "--ssh-port", String(server.port), "a1b2", "echo", "fwd"], { env: { SSH_AUTH_SOCK: agentSock } });
      expect(forwarded).toEqual({ code: 0, stdout: "fwd\n", stderr: "" });
      expect(server.commands.slice(-2)).toEqual(["(auth-agent)", "echo fwd"]);
    } finally {
      stop.abort();
      await agent;
    }
    const noAgent = await ssh(["ssh", "-A", "--ssh-port", String(server.port), "a1b2", "true"]);
    expect(noAgent).toEqual({ code: 1, stdout: "", stderr: "Cannot forward the SSH agent (-A): SSH_AUTH_SOCK is not set; start ssh-agent and add your key\n" });
    // fleet's spelling (its -A was a long flag) was taken for the target: "could not find matching unit or machine".
    expect(await ssh(["ssh", "--A", "--ssh-port", String(server.port), "a1b2", "true"])).toEqual(noAgent);
    const none = await env.run(["ssh", "a1b2", "true"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^SSH_AUTH_SOCK environment variable is not set\./);
  });
});
