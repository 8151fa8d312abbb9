/**
 * Finds a Debian cloud kernel for tests that boot QEMU: the built image's `build/image/vmlinuz`, else
 * the kernel inside the cached `linux-image-*-cloud-amd64` .deb (extracted once to a temp dir).
 */
import { access, mkdir, readdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { run } from "../../lib/process/run";
import { debCacheDir } from "../cache-dir";

/** Path of a bootable kernel, or undefined when neither the image nor the .deb cache has one. */
export async function findKernelForTests(): Promise<string | undefined> {
  const built = path.resolve("build/image/vmlinuz");
  if (await access(built).then(() => true, () => false)) return built;
  const debs = await readdir(debCacheDir()).catch(() => [] as string[]);
  const deb = debs.filter((d) => /^linux-image-[0-9].*-cloud-amd64_.*\.deb$/.test(d)).sort().pop();
  if (deb === undefined) return undefined;
  const dir = path.join(os.tmpdir(), `corefleet-test-kernel-${deb.replace(/\.deb$/, "")}`);
  await mkdir(dir, { recursive: true });
  const boot = path.join(dir, "boot");
  if (!(await access(boot).then(() => true, () => false))) {
    await run("dpkg-deb", ["-x", path.join(debCacheDir(), deb), dir]);
  }
  const vmlinuz = (await readdir(boot)).find((f) => f.startsWith("vmlinuz-"));
  return vmlinuz === undefined ? undefined : path.join(boot, vmlinuz);
}
