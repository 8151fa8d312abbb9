/**
 * The build file of an application image directory (`image-builder container DIR` reads
 * `DIR/image.json`): the Debian packages of the base layer, files of the directory copied in, the
 * command, exposed ports and environment. Parsed and validated here (pure), every error naming the
 * file, the key and the bad value; turned into the {@link ContainerSpec} the builder takes.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import type { ContainerSpec } from "./profile";

/** The file `image-builder container DIR` reads. */
export const IMAGE_FILE = "image.json";

/** A file or folder of the image directory and where it goes in the image. */
export interface ImageFileCopy {
  /** Relative to the image directory. */
  from: string;
  /** Absolute path in the image. */
  to: string;
}

export interface ImageFile {
  /** Image name; default the directory's name. */
  name: string;
  packages: string[];
  files: ImageFileCopy[];
  cmd: string[];
  workdir: string;
  ports: number[];
  env: Record<string, string>;
}

/** A build file that cannot be used. */
export class ImageFileError extends Error {
  override readonly name = "ImageFileError";
}

const KNOWN = ["name", "packages", "files", "cmd", "workdir", "ports", "env"];
const PKG_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
/** The repository-name component of an OCI reference. */
const IMAGE_NAME = /^[a-z0-9]+([._-][a-z0-9]+)*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Refuses a name that cannot be an image name (it is also a file name: build/containers/<name>.oci.tar);
 * `what` says where it came from (--name, "name" of image.json, the directory's name).
 */
export function checkImageName(name: string, what: string): void {
  if (!IMAGE_NAME.test(name)) {
    throw new ImageFileError(`Invalid image name ${JSON.stringify(name)} (${what}): an image name is lowercase letters and digits, separated by . _ or - (no /)`);
  }
}

/**
 * Parses `text`, the content of `source` (a path, for messages); `dirName` is the default image name.
 * `nameOverride` (--name, already checked by the caller) replaces both, so neither is checked then.
 */
export function parseImageFile(text: string, source: string, dirName: string, nameOverride?: string): ImageFile {
  const fail = (key: string, why: string): never => {
    throw new ImageFileError(`Invalid build file "${source}": ${key} ${why}`);
  };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ImageFileError(`Cannot parse build file "${source}": ${(err as Error).message}; it must be JSON (see image-builder/README.md)`, { cause: err });
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) return fail("(top level)", "must be a JSON object");
  const o = data as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KNOWN.includes(k)) fail(`"${k}"`, `is not a known key (known: ${KNOWN.join(", ")})`);
  const got = (v: unknown): string => `got ${JSON.stringify(v)}`;
  const strings = (key: string, required: boolean): string[] => {
    const v = o[key];
    if (v === undefined && !required) return [];
    if (!Array.isArray(v) || v.length === 0 || v.some((s) => typeof s !== "string" || s === "")) return fail(`"${key}"`, `must be a non-empty list of non-empty strings, ${got(v)}`);
    return v as string[];
  };

  const name = nameOverride ?? (o["name"] === undefined ? dirName : o["name"]);
  if (nameOverride === undefined && (typeof name !== "string" || !IMAGE_NAME.test(name))) {
    fail(o["name"] === undefined ? "the directory name" : `"name"`, `must be an image name (lowercase letters and digits, separated by . _ or -), ${got(name)}`);
  }
  const packages = strings("packages", true);
  for (const [i, p] of packages.entries()) if (!PKG_NAME.test(p)) fail(`"packages[${i}]"`, `"${p}" is not a Debian package name`);

  const files: ImageFileCopy[] = [];
  const fv = o["files"];
  if (fv !== undefined) {
    if (!Array.isArray(fv)) fail(`"files"`, `must be a list of {"from": "path in the directory", "to": "/path/in/the/image"}, ${got(fv)}`);
    for (const [i, f] of (fv as unknown[]).entries()) {
      const k = `"files[${i}]`;
      if (typeof f !== "object" || f === null || Array.isArray(f)) fail(`${k}"`, `must be {"from": ..., "to": ...}, ${got(f)}`);
      const e = f as Record<string, unknown>;
      for (const x of Object.keys(e)) if (x !== "from" && x !== "to") fail(`${k}.${x}"`, 'is not a known key (known: from, to)');
      const from = e["from"];
      if (typeof from !== "string" || from === "" || path.isAbsolute(from) || path.normalize(from).split(path.sep).includes("..")) {
        fail(`${k}.from"`, `must be a relative path inside the image directory, ${got(from)}`);
      }
      const to = e["to"];
      if (typeof to !== "string" || !to.startsWith("/") || to.split("/").includes("..") || to === "/") fail(`${k}.to"`, `must be an absolute path in the image other than /, without .., ${got(to)}`);
      files.push({ from: path.normalize(from as string), to: path.posix.normalize(to as string) });
    }
  }

  const workdir = o["workdir"] ?? "/";
  if (typeof workdir !== "string" || !workdir.startsWith("/")) fail(`"workdir"`, `must be an absolute path, ${got(workdir)}`);

  const ports: number[] = [];
  const pv = o["ports"];
  if (pv !== undefined) {
    if (!Array.isArray(pv)) fail(`"ports"`, `must be a list of TCP port numbers, ${got(pv)}`);
    for (const [i, p] of (pv as unknown[]).entries()) {
      if (typeof p !== "number" || !Number.isInteger(p) || p < 1 || p > 65535) fail(`"ports[${i}]"`, `must be a TCP port number 1..65535, ${got(p)}`);
      ports.push(p as number);
    }
  }

  const env: Record<string, string> = {};
  const ev = o["env"];
  if (ev !== undefined) {
    if (typeof ev !== "object" || ev === null || Array.isArray(ev)) fail(`"env"`, `must be an object of NAME: "value", ${got(ev)}`);
    for (const [k, v] of Object.entries(ev as Record<string, unknown>)) {
      if (!ENV_NAME.test(k)) fail(`"env.${k}"`, "is not a valid environment variable name");
      if (typeof v !== "string") fail(`"env.${k}"`, `must be a string, ${got(v)}`);
      env[k] = v as string;
    }
  }
  return { name: name as string, packages, files, cmd: strings("cmd", true), workdir: workdir as string, ports, env };
}

/** The builder's spec for an image directory `dir` (file sources made absolute; env sorted so the digest does not depend on key order). */
export function imageFileSpec(file: ImageFile, dir: string): ContainerSpec {
  const spec: ContainerSpec = { name: file.name, packages: file.packages, cmd: file.cmd, workdir: file.workdir };
  const env = Object.keys(file.env).sort().map((k) => `${k}=${file.env[k] ?? ""}`);
  if (env.length > 0) spec.env = env;
  if (file.files.length > 0) spec.files = file.files.map((f) => ({ from: path.resolve(dir, f.from), to: f.to }));
  if (file.ports.length > 0) spec.ports = file.ports;
  return spec;
}

/** Reads `dir/image.json` and checks that every file it copies exists; returns the builder's spec. */
export async function loadImageDir(dir: string, nameOverride?: string): Promise<ContainerSpec> {
  const source = path.join(dir, IMAGE_FILE);
  let text: string;
  try {
    text = await readFile(source, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ImageFileError(`Cannot read build file "${source}": ${code}; an image directory needs an ${IMAGE_FILE} (see image-builder/README.md)`, { cause: err });
  }
  if (nameOverride !== undefined) checkImageName(nameOverride, "--name");
  const file = parseImageFile(text, source, path.basename(path.resolve(dir)), nameOverride);
  for (const [i, f] of file.files.entries()) {
    try {
      await stat(path.join(dir, f.from));
    } catch (err) {
      throw new ImageFileError(`Invalid build file "${source}": "files[${i}].from" "${f.from}" does not exist in ${dir}`, { cause: err });
    }
  }
  return imageFileSpec(file, dir);
}
