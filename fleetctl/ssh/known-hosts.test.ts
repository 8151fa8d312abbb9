import { createHmac } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { addKnownHost, hostPatternMatches, keyType, knownHostsAddress, knownKeysFor, md5Fingerprint } from "./known-hosts";

const blob = (type: string, body: string): Buffer => {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, Buffer.from(body)]);
};

describe("known_hosts", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("names hosts like OpenSSH: bare for port 22, [host]:port otherwise", () => {
    expect(knownHostsAddress("10.0.0.1", 22)).toBe("10.0.0.1");
    expect(knownHostsAddress("10.0.0.1", 2222)).toBe("[10.0.0.1]:2222");
  });

  it("matches patterns, negations, wildcards and hashed hosts", () => {
    expect(hostPatternMatches("a.example,10.0.0.1", "10.0.0.1")).toBe(true);
    expect(hostPatternMatches("10.0.0.*", "10.0.0.7")).toBe(true);
    expect(hostPatternMatches("10.0.0.*,!10.0.0.7", "10.0.0.7")).toBe(false);
    expect(hostPatternMatches("10.0.0.?", "10.0.0.17")).toBe(false);
    const salt = Buffer.from("0123456789abcdefghij");
    const hash = createHmac("sha1", salt).update("[127.0.0.1]:2222").digest("base64");
    expect(hostPatternMatches(`|1|${salt.toString("base64")}|${hash}`, "[127.0.0.1]:2222")).toBe(true);
    expect(hostPatternMatches(`|1|${salt.toString("base64")}|${hash}`, "127.0.0.1")).toBe(false);
  });

  it("reads keys for a host with line numbers and appends new ones", async () => {
    dir = await mkdtemp(join(tmpdir(), "kh-"));
    const file = join(dir, "sub", "known_hosts");
    expect(await knownKeysFor(file, "h")).toEqual([]);
    const k1 = blob("ssh-ed25519", "one");
    await addKnownHost(file, "h", k1);
    await writeFile(file, `${await readFile(file, "utf8")}@cert-authority * ssh-rsa AAAA\nother ssh-rsa AAAA`);
    await addKnownHost(file, "[h]:2222", blob("ssh-rsa", "two"));
    const text = await readFile(file, "utf8");
    expect(text.split("\n")[3]).toBe(`[h]:2222 ssh-rsa ${blob("ssh-rsa", "two").toString("base64")}`);
    expect(await knownKeysFor(file, "h")).toEqual([{ type: "ssh-ed25519", blob: k1, line: 1 }]);
    expect(keyType(k1)).toBe("ssh-ed25519");
    expect(md5Fingerprint(Buffer.from("x"))).toBe("9d:d4:e4:61:26:8c:80:34:f5:c8:56:4e:15:5c:67:a6");
  });
});
