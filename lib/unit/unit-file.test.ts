import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { LINE_TOO_LONG, parseUnitFile, serializeUnitFile, unitHash } from "./unit-file";
import { UnitFileParseError } from "./errors";

const HELLO = `[Unit]
Description=Hello World

[Service]
ExecStartPre=-/usr/bin/docker kill busybox1
ExecStartPre=-/usr/bin/docker rm busybox1
ExecStart=/usr/bin/docker run --name busybox1 busybox /bin/sh -c "trap 'exit 0' INT TERM; while true; do echo Hello World; sleep 1; done"
ExecStop=/usr/bin/docker stop busybox1

[X-Fleet]
Conflicts=hello@*.service
`;

describe("parseUnitFile", () => {
  it("keeps repeated keys in order with their sections", () => {
    const options = parseUnitFile(HELLO);
    expect(options.map((o) => `${o.section}/${o.name}`)).toEqual([
      "Unit/Description", "Service/ExecStartPre", "Service/ExecStartPre", "Service/ExecStart", "Service/ExecStop", "X-Fleet/Conflicts",
    ]);
    expect(options[1]?.value).toBe("-/usr/bin/docker kill busybox1");
    expect(options[2]?.value).toBe("-/usr/bin/docker rm busybox1");
  });

  it("skips # and ; comments and blank lines, also indented ones", () => {
    const options = parseUnitFile("# top\n; also\n[Unit]\n  # indented\nDescription=x # not a comment\n\n\n;end\n");
    expect(options).toEqual([{ section: "Unit", name: "Description", value: "x # not a comment" }]);
  });

  it("trims whitespace around names and values as systemd does", () => {
    const options = parseUnitFile("[Service]\n  ExecStart  =   /bin/echo  a  b \t\r\nEnvironment=\n");
    expect(options).toEqual([
      { section: "Service", name: "ExecStart", value: "/bin/echo  a  b" },
      { section: "Service", name: "Environment", value: "" },
    ]);
  });

  it("splits at the first '=' only", () => {
    expect(parseUnitFile("[Service]\nEnvironment=A=1 B=2\n")[0]?.value).toBe("A=1 B=2");
  });

  it("joins continuation lines, replacing the backslash by a space", () => {
    const options = parseUnitFile("[Service]\nExecStart=/bin/sh -c \\\n  'echo hi; \\\n   echo there'\nUser=core\n");
    expect(options).toEqual([
      { section: "Service", name: "ExecStart", value: "/bin/sh -c    'echo hi;     echo there'" },
      { section: "Service", name: "User", value: "core" },
    ]);
  });

  it("ignores comment lines inside a continuation", () => {
    const options = parseUnitFile("[Service]\nExecStart=/bin/echo a \\\n# a comment\n b\n");
    expect(options[0]?.value).toBe("/bin/echo a   b");
  });

  it("does not treat an escaped trailing backslash as a continuation", () => {
    const options = parseUnitFile("[Service]\nA=x\\\\\nB=y\n");
    expect(options).toEqual([
      { section: "Service", name: "A", value: "x\\\\" },
      { section: "Service", name: "B", value: "y" },
    ]);
  });

  it("drops a dangling backslash at end of file", () => {
    expect(parseUnitFile("[Service]\nA=x \\")[0]?.value).toBe("x");
  });

  it("skips a UTF-8 byte-order mark at the start", () => {
    expect(parseUnitFile("\uFEFF[Unit]\nDescription=a\n")).toEqual([{ section: "Unit", name: "Description", value: "a" }]);
  });

  it("accepts CRLF line endings", () => {
    expect(parseUnitFile("[Unit]\r\nDescription=a\r\n")).toEqual([{ section: "Unit", name: "Description", value: "a" }]);
  });

  it("keeps sections in first-seen order when a section reappears", () => {
    const options = parseUnitFile("[A]\nx=1\n[B]\ny=2\n[A]\nz=3\n");
    expect(serializeUnitFile(options)).toBe("[A]\nx=1\nz=3\n\n[B]\ny=2\n");
  });

  it("rejects lines over 2048 bytes with fleet's text and the line number", () => {
    const long = `[Service]\nExecStart=/bin/echo ${"x".repeat(2048)}\n`;
    const err = captureParseError(long);
    expect(err.reason).toBe(LINE_TOO_LONG);
    expect(err.reason).toBe("line too long (max 2048 bytes)");
    expect(err.line).toBe(2);
    // Exactly 2048 bytes is fine; multi-byte characters count as bytes.
    expect(() => parseUnitFile(`[S]\nA=${"x".repeat(2046)}`)).not.toThrow();
    expect(captureParseError(`[S]\nA=${"é".repeat(1024)}`).line).toBe(2);
  });

  it("reports bad lines with their numbers", () => {
    expect(captureParseError("Description=x\n").message).toBe(
      'Cannot parse unit file line 1: option "Description" appears before any [Section] header; fix the unit file and submit it again',
    );
    expect(captureParseError("[Unit]\nno equals here\n")).toMatchObject({ line: 2, reason: 'missing "=" in "no equals here" (expected "Name=Value")' });
    expect(captureParseError("[Unit\nA=b\n")).toMatchObject({ line: 1 });
    expect(captureParseError("[Unit]\n=b\n")).toMatchObject({ line: 2 });
    const named = captureParseError("[Unit]\nA=b\n[]\n", "x.service");
    expect(named.message).toContain('"x.service" line 3');
  });
});

describe("serializeUnitFile", () => {
  it("round-trips simple files byte for byte", () => {
    expect(serializeUnitFile(parseUnitFile(HELLO))).toBe(HELLO);
    const noNewline = HELLO.trimEnd();
    expect(serializeUnitFile(parseUnitFile(noNewline))).toBe(`${noNewline}\n`);
  });

  it("writes one blank line between sections and none at the end", () => {
    const text = serializeUnitFile([
      { section: "Unit", name: "Description", value: "d" },
      { section: "Service", name: "ExecStart", value: "/bin/true" },
    ]);
    expect(text).toBe("[Unit]\nDescription=d\n\n[Service]\nExecStart=/bin/true\n");
  });

  it("serializes no options as the empty text", () => {
    expect(serializeUnitFile([])).toBe("");
  });
});

describe("unitHash", () => {
  it("is the SHA-1 of the canonical text", () => {
    const options = parseUnitFile(HELLO);
    expect(unitHash(options)).toBe(createHash("sha1").update(HELLO).digest("hex"));
    expect(unitHash([])).toBe("da39a3ee5e6b4b0d3255bfef95601890afd80709");
  });

  it("is stable across formatting differences that parse to the same options", () => {
    const a = "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n";
    const b = "# comment\n[Unit]\n  Description = x  \n\n\n[Service]\nExecStart=/bin/true";
    expect(unitHash(parseUnitFile(a))).toBe(unitHash(parseUnitFile(b)));
  });

  it("changes when an option value or order changes", () => {
    const base = unitHash(parseUnitFile("[S]\nA=1\nB=2\n"));
    expect(unitHash(parseUnitFile("[S]\nA=1\nB=3\n"))).not.toBe(base);
    expect(unitHash(parseUnitFile("[S]\nB=2\nA=1\n"))).not.toBe(base);
  });
});

function captureParseError(text: string, source?: string): UnitFileParseError {
  try {
    parseUnitFile(text, source === undefined ? {} : { source });
  } catch (err) {
    if (err instanceof UnitFileParseError) return err;
    throw err;
  }
  throw new Error("expected a parse error");
}
