import { describe, expect, it } from "vitest";
import { imageConfig } from "./container";

// Building and loading a real image (root, mmdebstrap, podman): container.system.test.ts.

describe("container images", () => {
  it("describes the command, environment and single layer in the OCI config", () => {
    const c = imageConfig({ name: "web", packages: ["busybox-static"], cmd: ["/bin/busybox", "httpd"], env: ["PORT=8080"] }, ["ab"], 0) as {
      created: string; config: { Cmd: string[]; Env: string[] }; rootfs: { diff_ids: string[] };
    };
    expect(c.created).toBe("1970-01-01T00:00:00.000Z");
    expect(c.config.Cmd).toEqual(["/bin/busybox", "httpd"]);
    expect(c.config.Env).toContain("PORT=8080");
    expect(c.rootfs.diff_ids).toEqual(["sha256:ab"]);
  });
});
