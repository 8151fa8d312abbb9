import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { waitFor } from "../helpers/fleet-cluster";
import { fleetFixture } from "../helpers/fleet-fixture";

describe("the agent's lease file", () => {
  const fx = fleetFixture();

  it("logs a lease file it cannot read (here a directory) and registers on a new lease", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fleet-lease-dir-"));
    try {
      const cluster = fx.cluster();
      const a = await cluster.add("aaa", { extra: { lease_file: dir } });
      await cluster.waitMachines(["aaa"]);
      const warn = await waitFor("the warning", () => a.events.find((e) => e.message.startsWith("Cannot read the remembered lease")));
      expect(warn.level).toBe("warn");
      expect(warn.message).toContain("EISDIR");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
