import { appendFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConsoleScanner, describeHealth, scanConsole } from "./machine-health";

describe("scanConsole", () => {
  it("finds each known failure pattern with its line", () => {
    const log = [
      "[    0.000000] Linux version 6.1.0-cloud-amd64",
      "[    5.1] Kernel panic - not syncing: VFS: Unable to mount root fs",
      "[    6.0] Oops: 0000 [#1] PREEMPT SMP NOPTI",
      "You are in emergency mode. After logging in, type \"journalctl -xb\"",
      "[  100.2] Out of memory: Killed process 321 (node)",
      "systemd[1]: multi-user.target: Found ordering cycle on fleet.service/start",
    ].join("\r\n");
    expect(scanConsole(log).map((p) => p.name)).toEqual(["kernel panic", "kernel oops", "emergency shell", "OOM kill", "ordering cycle"]);
    expect(scanConsole(log)[0]?.line).toBe("[    5.1] Kernel panic - not syncing: VFS: Unable to mount root fs");
  });

  it("says nothing about a clean boot", () => {
    const log = "[  OK  ] Started etcd.service\n[  OK  ] Reached target multi-user.target\ncore-1 login: ";
    expect(scanConsole(log)).toEqual([]);
  });
});

describe("ConsoleScanner", () => {
  it("reads only what was appended and finds a pattern split across two appends", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "console-scan-"));
    try {
      const file = path.join(dir, "console.log");
      const scanner = new ConsoleScanner(file);
      expect(await scanner.scan()).toEqual([]);
      await writeFile(file, "[ 1.0] booting\r\n[ 2.0] Kernel pan");
      expect(await scanner.scan()).toEqual([]);
      await appendFile(file, "ic - not syncing: Attempted to kill init!\r\n[ 3.0] more\n");
      expect(await scanner.scan()).toEqual([{ name: "kernel panic", line: "[ 2.0] Kernel panic - not syncing: Attempted to kill init!" }]);
      await appendFile(file, "nothing new\n");
      expect((await scanner.scan()).map((p) => p.name)).toEqual(["kernel panic"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("describeHealth", () => {
  it("says why an unhealthy machine is unhealthy, with the journal of each failed unit", () => {
    const text = describeHealth({
      machine: "core-1",
      healthy: false,
      systemState: "degraded",
      failedUnits: ["corefleet-growfs.service"],
      failedUnitLogs: { "corefleet-growfs.service": "[   12.5] growfs[301]: resize2fs: Device or resource busy" },
      consoleProblems: [],
    });
    expect(text).toBe("core-1: system degraded; failed units: corefleet-growfs.service\n--- journal of corefleet-growfs.service ---\n[   12.5] growfs[301]: resize2fs: Device or resource busy");
  });
});
