import { describe, expect, it } from "vitest";
import { loadProfile, parseProfile } from "./profile";

const minimal = { name: "t", packages: ["linux-image-cloud-amd64"], buildOnlyPackages: ["busybox-static", "systemd-boot-efi"], cmdline: "console=ttyS0" };

describe("parseProfile", () => {
  it("loads the shipped corefleet profile", async () => {
    const p = await loadProfile("image-builder/profiles/corefleet.json");
    expect(p.name).toBe("corefleet");
    expect(p.packages).toContain("etcd-server");
    expect(p.containers.map((c) => c.name)).toEqual(["web"]);
    expect(p.containers[0]?.preload).toBe(true);
  });

  it("fills defaults for optional keys", () => {
    const p = parseProfile(minimal, "t.json");
    expect(p.espSizeMiB).toBe(48);
    expect(p.stateSizeMiB).toBe(768);
    expect(p.usrCompression).toEqual(["-comp", "zstd", "-Xcompression-level", "17", "-b", "1M"]);
    expect(p.containers).toEqual([]);
  });

  it("names the file, key and bad value in errors", () => {
    expect(() => parseProfile({ ...minimal, packages: ["linux-image-cloud-amd64", "Bad_Name"] }, "t.json")).toThrow(
      'Invalid profile "t.json": "packages[1]" "Bad_Name" is not a Debian package name',
    );
    expect(() => parseProfile({ ...minimal, stateSizeMiB: 10 }, "t.json")).toThrow('Invalid profile "t.json": "stateSizeMiB" must be an integer >= 64, got 10');
    expect(() => parseProfile({ ...minimal, extra: 1 }, "t.json")).toThrow('Invalid profile "t.json": "extra" is not a known key');
    expect(() => parseProfile({ ...minimal, trimPaths: ["/etc"] }, "t.json")).toThrow('"trimPaths[0]" "/etc" is not a relative path inside the image');
    expect(() => parseProfile({ ...minimal, packages: ["bash"] }, "t.json")).toThrow('"packages" must include a kernel (linux-image-...)');
    expect(() => parseProfile({ ...minimal, buildOnlyPackages: [] }, "t.json")).toThrow('"buildOnlyPackages" must include "busybox-static"');
    expect(() => parseProfile({ ...minimal, containers: [{ name: "web", packages: [], cmd: ["x"] }] }, "t.json")).toThrow(
      '"containers[0].packages" must be a non-empty list of strings, got []',
    );
  });

  it("reports an unreadable or non-JSON file with what to do", async () => {
    await expect(loadProfile("/nonexistent/p.json")).rejects.toThrow('Cannot read profile "/nonexistent/p.json": ENOENT; pass an existing file with --profile');
    await expect(loadProfile("package.json")).rejects.toThrow('Invalid profile "package.json": "version" is not a known key');
    expect(() => parseProfile(1, "x.json")).toThrow('Invalid profile "x.json": (top level) must be a JSON object');
  });
});
