/** `manifest.json` of a built image: what went into it (`inputsKey` decides whether a rebuild is needed) and what came out. */
import { readFile } from "node:fs/promises";
import path from "node:path";

export interface Manifest {
  profile: string;
  inputsKey: string;
  stageKey: string;
  sourceDateEpoch: number;
  suite: string;
  kernelVersion: string;
  packages: { name: string; version: string }[];
  containers: { ref: string; bytes: number }[];
  warnings: string[];
  artefacts: Record<string, { bytes: number; sha256: string }>;
  usrBytes: number;
}

/** The manifest of the image in `dir`, or undefined when there is none (a file that is not JSON throws). */
export async function readManifest(dir: string): Promise<Manifest | undefined> {
  return readFile(path.join(dir, "manifest.json"), "utf8").then(
    (t) => JSON.parse(t) as Manifest,
    () => undefined,
  );
}
