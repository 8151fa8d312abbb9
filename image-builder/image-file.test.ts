import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { imageFileSpec, loadImageDir, parseImageFile } from "./image-file";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const parse = (o: unknown, dirName = "app"): ReturnType<typeof parseImageFile> => parseImageFile(JSON.stringify(o), "app/image.json", dirName);
const minimal = { packages: ["busybox-static"], cmd: ["/bin/busybox", "true"] };

describe("image.json", () => {
  it("parses every key, with defaults for the optional ones", () => {
    expect(parse(minimal)).toEqual({ name: "app", packages: ["busybox-static"], files: [], cmd: ["/bin/busybox", "true"], workdir: "/", ports: [], env: {} });
    const f = parse({ ...minimal, name: "web.v2", files: [{ from: "./www/", to: "/srv/web/" }], workdir: "/srv", ports: [80, 8080], env: { PORT: "80" } });
    expect(f).toMatchObject({ name: "web.v2", files: [{ from: "www/", to: "/srv/web/" }], workdir: "/srv", ports: [80, 8080], env: { PORT: "80" } });
  });

  it("turns into the builder's spec: sources absolute, env sorted so key order does not change the digest", () => {
    const spec = imageFileSpec(parse({ ...minimal, files: [{ from: "www", to: "/srv/web" }], env: { B: "2", A: "1" }, ports: [80] }), "/x/app");
    expect(spec).toEqual({ name: "app", packages: ["busybox-static"], cmd: ["/bin/busybox", "true"], workdir: "/", env: ["A=1", "B=2"], files: [{ from: "/x/app/www", to: "/srv/web" }], ports: [80] });
  });

  it("names the file, key and bad value in errors", () => {
    const bad = (o: unknown, msg: string, dirName = "app"): void => {
      expect(() => parse(o, dirName)).toThrow(msg);
    };
    expect(() => parseImageFile("{", "app/image.json", "app")).toThrow(/^Cannot parse build file "app\/image.json": .*; it must be JSON/);
    bad([], 'Invalid build file "app/image.json": (top level) must be a JSON object');
    bad({ ...minimal, expose: [80] }, '"expose" is not a known key (known: name, packages, files, cmd, workdir, ports, env)');
    bad({ cmd: ["x"] }, '"packages" must be a non-empty list of non-empty strings, got undefined');
    bad({ ...minimal, packages: ["Busybox"] }, '"packages[0]" "Busybox" is not a Debian package name');
    bad({ packages: ["a1"], cmd: [] }, '"cmd" must be a non-empty list of non-empty strings, got []');
    bad({ ...minimal, name: "Web" }, '"name" must be an image name (lowercase letters and digits, separated by . _ or -), got "Web"');
    bad(minimal, 'the directory name must be an image name (lowercase letters and digits, separated by . _ or -), got "My App"', "My App");
    bad({ ...minimal, files: [{ from: "../secret", to: "/x" }] }, '"files[0].from" must be a relative path inside the image directory, got "../secret"');
    bad({ ...minimal, files: [{ from: "/etc/passwd", to: "/x" }] }, '"files[0].from" must be a relative path inside the image directory, got "/etc/passwd"');
    bad({ ...minimal, files: [{ from: "www", to: "srv" }] }, '"files[0].to" must be an absolute path in the image other than /, without .., got "srv"');
    bad({ ...minimal, files: [{ from: "www", to: "/srv", mode: "0644" }] }, '"files[0].mode" is not a known key (known: from, to)');
    bad({ ...minimal, files: "www" }, '"files" must be a list of {"from": "path in the directory", "to": "/path/in/the/image"}, got "www"');
    bad({ ...minimal, ports: [0] }, '"ports[0]" must be a TCP port number 1..65535, got 0');
    bad({ ...minimal, ports: ["80/tcp"] }, '"ports[0]" must be a TCP port number 1..65535, got "80/tcp"');
    bad({ ...minimal, env: ["PORT=80"] }, '"env" must be an object of NAME: "value", got ["PORT=80"]');
    bad({ ...minimal, env: { PORT: 80 } }, '"env.PORT" must be a string, got 80');
    bad({ ...minimal, env: { "BAD-NAME": "x" } }, '"env.BAD-NAME" is not a valid environment variable name');
    bad({ ...minimal, workdir: "srv" }, '"workdir" must be an absolute path, got "srv"');
  });

  it("loads a directory, naming a missing build file or a missing file to copy", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "corefleet-imagefile-"));
    dirs.push(dir);
    const app = path.join(dir, "app");
    await expect(loadImageDir(app)).rejects.toThrow(`Cannot read build file "${app}/image.json": ENOENT; an image directory needs an image.json`);
    await mkdir(app);
    await writeFile(path.join(app, "image.json"), JSON.stringify({ ...minimal, files: [{ from: "www", to: "/srv/web" }] }));
    await expect(loadImageDir(app)).rejects.toThrow(`"files[0].from" "www" does not exist in ${app}`);
    await mkdir(path.join(app, "www"));
    expect((await loadImageDir(app)).files).toEqual([{ from: path.join(app, "www"), to: "/srv/web" }]);
  });

  it("accepts the shipped web example", async () => {
    const spec = await loadImageDir("units/web");
    expect(spec).toMatchObject({ name: "web", packages: ["busybox-static"], ports: [80], env: ["PORT=80"] });
  });
});
