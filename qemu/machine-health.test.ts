import { describe, expect, it } from "vitest";
import { scanConsole } from "./machine-health";

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
