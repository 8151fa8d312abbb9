/**
 * The image every e2e file boots (build/image), built or brought up to date first: `buildImage` reuses
 * its cached stages and returns at once when nothing changed. Each file asks for it in its own
 * `beforeAll`, whatever order vitest runs them in (by earlier durations once it has a cache): the
 * cluster suite once booted an image older than the tree because it happened to run first.
 */
import path from "node:path";
import { buildImage } from "../../../image-builder/build";
import { repoRoot } from "../../../qemu/cluster-fleetctl";

export const imageDir = path.join(repoRoot, "build", "image");

export async function ensureImage(log: (line: string) => void): Promise<string> {
  await buildImage({ profile: path.join(repoRoot, "image-builder/profiles/corefleet.json"), out: imageDir, repoRoot, log });
  return imageDir;
}
