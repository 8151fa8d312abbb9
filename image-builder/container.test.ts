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

  it("adds the files layer's history, the exposed ports and the working directory for an image directory", () => {
    const c = imageConfig({ name: "web", packages: ["busybox-static"], cmd: ["x"], workdir: "/srv", ports: [80, 8080], files: [{ from: "/a/www", to: "/srv/web" }] }, ["ab", "cd"], 0) as {
      config: { ExposedPorts: object; WorkingDir: string }; rootfs: { diff_ids: string[] }; history: { created_by: string }[];
    };
    expect(c.config.ExposedPorts).toEqual({ "80/tcp": {}, "8080/tcp": {} });
    expect(c.config.WorkingDir).toBe("/srv");
    expect(c.rootfs.diff_ids).toEqual(["sha256:ab", "sha256:cd"]);
    expect(c.history.map((h) => h.created_by)).toEqual(["image-builder container --packages busybox-static", "image-builder container: files /srv/web"]);
  });
});
