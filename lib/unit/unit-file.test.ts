import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { firstLineBeforeSection, isOneshotText, LINE_TOO_LONG, parseUnitFile, serializeUnitFile, unitHash } from "./unit-file";
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

  it("trims Unicode white space around names and values, as Go's strings.TrimSpace", () => {
    const options = parseUnitFile("[Service]\n  ExecStart  =   /bin/echo  a  b \t\r\nEnvironment=\n\u00a0User = \u2003core\u3000\n");
    expect(options).toEqual([
      { section: "Service", name: "ExecStart", value: "/bin/echo  a  b" },
      { section: "Service", name: "Environment", value: "" },
      { section: "Service", name: "User", value: "core" },
    ]);
  });

  it("splits at the first '=' only", () => {
    expect(parseUnitFile("[Service]\nEnvironment=A=1 B=2\n")[0]?.value).toBe("A=1 B=2");
  });

  it("keeps continuation backslashes and newlines in the value, as fleet does", () => {
    const options = parseUnitFile("[Service]\nExecStart=/bin/sh -c \\\n  'echo hi; \\\n   echo there'\nUser=core\n");
    expect(options).toEqual([
      { section: "Service", name: "ExecStart", value: "/bin/sh -c \\\n  'echo hi; \\\n   echo there'" },
      { section: "Service", name: "User", value: "core" },
    ]);
  });

  it("keeps comment lines inside a continuation as part of the value", () => {
    const options = parseUnitFile("[Service]\nExecStart=/bin/echo a \\\n# a comment \\\n b\n");
    expect(options[0]?.value).toBe("/bin/echo a \\\n# a comment \\\n b");
  });

  it("ends a continuation at a blank line, keeping the newline", () => {
    expect(parseUnitFile("[S]\nA=x\\\n\nB=y\n")).toEqual([
      { section: "S", name: "A", value: "x\\\n" },
      { section: "S", name: "B", value: "y" },
    ]);
  });

  it("keeps a backslash at the very end of the file", () => {
    expect(parseUnitFile("[Service]\nA=x \\")[0]?.value).toBe("x \\");
  });

  it("lets a comment ending in a backslash swallow the next line", () => {
    expect(parseUnitFile("[S]\n# c \\\nA=hidden\nB=1\n")).toEqual([{ section: "S", name: "B", value: "1" }]);
  });

  it("skips everything before the first section, and accepts an empty option name", () => {
    expect(parseUnitFile("junk=1 # x\nmore\n[A]\n=v\n")).toEqual([{ section: "A", name: "", value: "v" }]);
  });

  it("skips a UTF-8 byte-order mark at the start", () => {
    expect(parseUnitFile("\uFEFF[Unit]\nDescription=a\n")).toEqual([{ section: "Unit", name: "Description", value: "a" }]);
  });

  it("accepts CRLF line endings, but a backslash before CRLF is no continuation", () => {
    expect(parseUnitFile("[Unit]\r\nDescription=a\r\n")).toEqual([{ section: "Unit", name: "Description", value: "a" }]);
    expect(parseUnitFile("[S]\r\nC=x\\\r\nD=y\r\n")).toEqual([
      { section: "S", name: "C", value: "x\\" },
      { section: "S", name: "D", value: "y" },
    ]);
  });

  it("keeps sections in first-seen order when a section reappears", () => {
    const options = parseUnitFile("[A]\nx=1\n[B]\ny=2\n[A]\nz=3\n");
    expect(serializeUnitFile(options)).toBe("[A]\nx=1\nz=3\n\n[B]\ny=2\n");
  });

  it("refuses a run of 2048 bytes without CR/LF with fleet's text and the line number", () => {
    const long = `[Service]\nExecStart=/bin/echo ${"x".repeat(2048)}\n`;
    const err = captureParseError(long);
    expect(err.reason).toBe(LINE_TOO_LONG);
    expect(err.reason).toBe("line too long (max 2048 bytes)");
    expect(err.line).toBe(2);
    // fleet checks whenever 2048 bytes are buffered: a 2047-byte line passes, a 2048-byte one does not.
    expect(() => parseUnitFile(`[S]\nA=${"x".repeat(2045)}\n`)).not.toThrow();
    expect(captureParseError(`[S]\nA=${"x".repeat(2046)}\n`).reason).toBe(LINE_TOO_LONG);
    // Multi-byte characters count as bytes.
    expect(captureParseError(`[S]\nA=${"é".repeat(1024)}`).line).toBe(2);
  });

  it("accepts a long line that fleet's 4096-byte buffer never sees 2048 bytes of at once", () => {
    // The first fill buffers bytes 0..4095. The long line starts at byte 3000, where only 1096 bytes
    // are buffered, and is then read in one go, so fleet never checks it; neither do we.
    const head = `[S]\n${`P=${"p".repeat(97)}\n`.repeat(29)}P=${"p".repeat(93)}\n`;
    expect(Buffer.byteLength(head)).toBe(3000);
    const options = parseUnitFile(`${head}Long=${"y".repeat(2100)}\n`);
    expect(options.at(-1)).toMatchObject({ name: "Long" });
    expect(options.at(-1)?.value).toHaveLength(2100);
  });

  it("reports bad lines with their numbers", () => {
    expect(captureParseError("[Unit]\nno equals here\n")).toMatchObject({ line: 2, reason: "unexpected newline encountered while parsing option name" });
    expect(captureParseError("[Unit\nA=b\n")).toMatchObject({ reason: "unable to find end of section" });
    expect(captureParseError("[Unit] x\n")).toMatchObject({ line: 1 });
    expect(captureParseError("[Unit]\nA=b\nTail")).toMatchObject({ line: 3 });
    const named = captureParseError("[Unit]\nA=b\nbad\n", "x.service");
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

  /*
   * fleet's hash vectors. Each expected value was computed outside our code, from the bytes fleet's
   * go-systemd Serialize writes for the options its Deserialize makes of the input ("[Section]\n",
   * then "Name=Value\n" per option in first-seen section order, "\n" between sections), with
   * `printf '<those bytes>' | sha1sum`. The bytes are spelled out in `canonical`.
   */
  const vectors: { what: string; input: string; canonical: string; sha1: string }[] = [
    {
      what: "continuations keep backslash + newline; value trimmed only at its ends",
      input: "[Service]\nExecStart=/bin/sh -c \\\n  'echo hi; \\\n   echo there'\nUser=core",
      canonical: "[Service]\nExecStart=/bin/sh -c \\\n  'echo hi; \\\n   echo there'\nUser=core\n",
      sha1: "db8113648f1dbb111d33c656ba4473affe2b2846",
    },
    {
      what: "empty value, quoted multi-value and double-spaced X-Fleet values stay verbatim",
      input: "[Unit]\nDescription=\n[X-Fleet]\nMachineMetadata=\"region=us-east\" \"disk=ssd\"\nConflicts=web@*.service  db.service\n",
      canonical: "[Unit]\nDescription=\n\n[X-Fleet]\nMachineMetadata=\"region=us-east\" \"disk=ssd\"\nConflicts=web@*.service  db.service\n",
      sha1: "e2fa5cd1da2d1050a2c8c2039ecf9a6fbe44b805",
    },
    {
      what: "comments (one swallowing the next line), a comment inside a continuation, CRLF",
      input: "# c \\\nswallowed\n[S]\nA=1 \\\n# kept \\\n b\nC=x\\\r\nD=y\r\n",
      canonical: "[S]\nA=1 \\\n# kept \\\n b\nC=x\\\nD=y\n",
      sha1: "765add2ea0aeabcef12015318bf2c0171fe4dd47",
    },
    {
      what: "text before the first section, empty name, Unicode spaces, repeated keys, reopened section",
      input: "junk=1 # x\n[A]\n=v\n\u00a0B = \u2003v\u3000 \n[A]\nB=2\n",
      canonical: "[A]\n=v\nB=v\nB=2\n",
      sha1: "5a966f87ee1d2a44b956c8ea15c231c99311011e",
    },
    {
      what: "a continuation ended by a blank line keeps its newline",
      input: "[S]\nA=x\\\n\nB=y\n",
      canonical: "[S]\nA=x\\\n\nB=y\n",
      sha1: "1354c0d468c3af19fcc8877052d9feeaf942635d",
    },
    {
      what: "trailing whitespace, indentation and blank lines vanish",
      input: "[Unit]  \n  Description = a \t\n\n\n[Service]\n\tExecStart=/bin/true   \n\n",
      canonical: "[Unit]\nDescription=a\n\n[Service]\nExecStart=/bin/true\n",
      sha1: "7ae8b9630f184657efd74aaf009e656accb67d87",
    },
  ];
  for (const v of vectors) {
    it(`matches fleet: ${v.what}`, () => {
      const options = parseUnitFile(v.input);
      expect(serializeUnitFile(options)).toBe(v.canonical);
      expect(unitHash(options)).toBe(v.sha1);
    });
  }

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

describe("isOneshotText", () => {
  it("is true only when the last Type= of [Service] is oneshot", () => {
    expect(isOneshotText("[Service]\nType=oneshot\nExecStart=/bin/true\n")).toBe(true);
    expect(isOneshotText("[Service]\nType = oneshot \nExecStart=/bin/true\n")).toBe(true);
    expect(isOneshotText("[Service]\nType=oneshot\nType=simple\n")).toBe(false);
    expect(isOneshotText("[Service]\nType=simple\nType=oneshot\n")).toBe(true);
    expect(isOneshotText("[Unit]\nType=oneshot\n[Service]\nExecStart=/bin/true\n")).toBe(false);
    expect(isOneshotText("[Unit]\nDescription=not a oneshot\n[Service]\nExecStart=/bin/true\n")).toBe(false);
    expect(isOneshotText("[Service]\nExecStart=/bin/true\n")).toBe(false);
    expect(isOneshotText("not a unit file [")).toBe(false);
  });
});

describe("firstLineBeforeSection", () => {
  it("finds the first line fleet's parser skips before any [Section], ignoring blank and comment lines", () => {
    expect(firstLineBeforeSection("# c\n\n  ExecStart=/bin/true\n[Service]\n")).toEqual({ line: 3, text: "ExecStart=/bin/true" });
    expect(firstLineBeforeSection("Description=x # note\n")).toEqual({ line: 1, text: "Description=x" });
    expect(firstLineBeforeSection("; c\n[Unit]\nDescription=x\n")).toBeUndefined();
    expect(firstLineBeforeSection("")).toBeUndefined();
    expect(firstLineBeforeSection("junk [Unit]\nA=b\n")).toEqual({ line: 1, text: "junk" });
  });
});
