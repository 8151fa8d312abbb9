import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { runFleetctl } from "../program";
import { CliError } from "../cli-error";
import { parseScaleArgument } from "./scale";

class Sink extends Writable {
  text = "";
  override _write(c: Buffer | string, _e: BufferEncoding, cb: () => void): void {
    this.text += c.toString();
    cb();
  }
}

describe("fleetctl scale", () => {
  it("reads TEMPLATE=COUNT, mangling the name", () => {
    expect(parseScaleArgument("web@.service=5")).toEqual(["web@.service", 5]);
    expect(parseScaleArgument("web@=0")).toEqual(["web@.service", 0]);
  });

  it("quotes a count too large to hold exactly as it was given, not rounded", () => {
    expect(() => parseScaleArgument("web@.service=99999999999999999999")).toThrow(
      new CliError("Cannot scale web@.service to 99999999999999999999 instances: the count is far more than fleetd allows; use a whole number such as web@.service=5"),
    );
    // The largest exact count still goes to fleetd, which names its own maximum.
    expect(parseScaleArgument(`web@.service=${Number.MAX_SAFE_INTEGER}`)).toEqual(["web@.service", Number.MAX_SAFE_INTEGER]);
  });

  it("refuses what is not TEMPLATE=COUNT, and non-templates", () => {
    expect(() => parseScaleArgument("web@.service=-1")).toThrow('Invalid scale argument "web@.service=-1": use TEMPLATE=COUNT, e.g. web@.service=5');
    expect(() => parseScaleArgument("web.service=2")).toThrow("Cannot scale web.service: it is not a template");
  });

  it("fails at once, as list-units does, when the endpoint's socket file does not exist (it retried for ~7.5 s)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fleetctl-scale-"));
    try {
      const endpoint = `unix://${dir}/missing.sock`;
      const run = async (argv: string[]): Promise<{ code: number; stderr: string; ms: number }> => {
        const stderr = new Sink();
        const started = Date.now();
        const code = await runFleetctl(["--endpoint", endpoint, ...argv], { stdout: new Sink(), stderr, stdin: new PassThrough(), env: {}, version: "9.9.9", cwd: dir });
        return { code, stderr: stderr.text, ms: Date.now() - started };
      };
      const scaled = await run(["scale", "web@.service=2"]);
      expect(scaled.code).toBe(1);
      expect(scaled.stderr).not.toContain("No answer");
      expect(scaled.stderr).toMatch(new RegExp(`^Error scaling web@\\.service: POST /fleet/v1/scale/web%40\\.service via ${endpoint} failed: connect ENOENT ${dir}/missing\\.sock\nPossible issues:\n  fleetd is not running`));
      expect(scaled.ms).toBeLessThan(2_000);
      // deploy (and rollback) repeat their request after a lost answer the same way.
      await writeFile(join(dir, "web@.service"), "[Service]\nExecStart=/bin/true\n");
      const deployed = await run(["deploy", "web@.service"]);
      expect(deployed.code).toBe(1);
      expect(deployed.stderr).not.toContain("No answer");
      expect(deployed.stderr).toMatch(/^Error starting the deploy of web@\.service: POST .* failed: connect ENOENT .*\nPossible issues:\n/);
      expect(deployed.ms).toBeLessThan(2_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
