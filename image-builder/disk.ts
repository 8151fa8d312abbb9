/**
 * Disk assembly: /usr as squashfs, the state partition (/, with /etc, /var, /home) as ext4, an EFI
 * system partition holding the unified kernel image as EFI/BOOT/BOOTX64.EFI, all in one GPT disk
 * (raw) with fixed GUIDs so the same inputs give the same bytes, and a compressed qcow2 of it.
 */
import { stat, utimes, writeFile, truncate } from "node:fs/promises";
import { run } from "../lib/process/run";
import { PART_NAMES } from "./boot-init";

const MiB = 1048576;

interface Sig { signal?: AbortSignal }
const sig = (s: AbortSignal | undefined): Sig => (s ? { signal: s } : {});

/** Builds a squashfs of `dir` with fixed timestamps and root ownership. */
export async function makeSquashfs(dir: string, out: string, o: { epoch: number; options: readonly string[]; signal?: AbortSignal }): Promise<void> {
  await run("mksquashfs", [dir, out, "-noappend", "-quiet", "-no-progress", "-all-root", "-mkfs-time", String(o.epoch),
    "-all-time", String(o.epoch), ...o.options], { ...sig(o.signal), env: withoutEpoch(process.env) });
}

/** mksquashfs refuses SOURCE_DATE_EPOCH together with its own time options, which we pass. */
function withoutEpoch(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy["SOURCE_DATE_EPOCH"];
  return copy;
}

/** Builds an ext4 image of `sizeMiB` populated from `dir` (labelled, fixed UUID and hash seed). */
export async function makeExt4(dir: string, out: string, o: { sizeMiB: number; label: string; uuid: string; epoch: number; signal?: AbortSignal }): Promise<void> {
  await writeFile(out, "");
  await truncate(out, o.sizeMiB * MiB);
  await run("mkfs.ext4", ["-q", "-F", "-L", o.label, "-U", o.uuid, "-E", `root_owner=0:0,hash_seed=${o.uuid}`, "-m", "1",
    "-O", "^metadata_csum_seed", "-d", dir, out],
  { ...sig(o.signal), env: { ...process.env, E2FSPROGS_FAKE_TIME: String(o.epoch), SOURCE_DATE_EPOCH: String(o.epoch) } });
}

/** Builds a FAT32 ESP image holding `efi` as EFI/BOOT/BOOTX64.EFI. */
export async function makeEsp(efi: string, out: string, o: { sizeMiB: number; epoch: number; signal?: AbortSignal }): Promise<void> {
  await run("rm", ["-f", out]);
  await run("mkfs.vfat", ["-F", "32", "-n", "ESP", "-i", "C0EEF1E7", "-C", out, String(o.sizeMiB * 1024)], sig(o.signal));
  await utimes(efi, o.epoch, o.epoch);
  const env = { ...process.env, MTOOLS_SKIP_CHECK: "1", SOURCE_DATE_EPOCH: String(o.epoch) };
  await run("mmd", ["-i", out, "::EFI", "::EFI/BOOT"], { ...sig(o.signal), env });
  await run("mcopy", ["-m", "-i", out, efi, "::EFI/BOOT/BOOTX64.EFI"], { ...sig(o.signal), env });
}

/** Partition type GUIDs (UAPI discoverable partitions spec). */
const TYPES = {
  esp: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
  usr: "8484680C-9521-48C6-9C11-B0720656F69E",
  root: "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
};

/** Fixed GUIDs: the disk and its partitions are the same bytes for the same inputs. */
export const GUIDS = {
  disk: "C0EEF1E7-0000-4000-8000-000000000000",
  esp: "C0EEF1E7-0000-4000-8000-000000000001",
  usr: "C0EEF1E7-0000-4000-8000-000000000002",
  state: "C0EEF1E7-0000-4000-8000-000000000003",
};

/** Assembles the GPT disk from the three partition images; returns the partition table as text. */
export async function assembleDisk(out: string, parts: { esp: string; usr: string; state: string }, signal?: AbortSignal): Promise<string> {
  const sizes = {
    esp: (await stat(parts.esp)).size,
    usr: (await stat(parts.usr)).size,
    state: (await stat(parts.state)).size,
  };
  const mibs = (b: number): number => Math.ceil(b / MiB);
  // 1 MiB before the first partition and after the last one (backup GPT), everything 1 MiB aligned.
  const usrMiB = mibs(sizes.usr) + 1;
  const total = 1 + mibs(sizes.esp) + usrMiB + mibs(sizes.state) + 1;
  await writeFile(out, "");
  await truncate(out, total * MiB);
  const espStart = 1;
  const usrStart = espStart + mibs(sizes.esp);
  const stateStart = usrStart + usrMiB;
  const s = (m: number): number => m * 2048;
  await run("sgdisk", ["-Z", "-U", GUIDS.disk,
    "-n", `1:${s(espStart)}:${s(usrStart) - 1}`, "-t", `1:${TYPES.esp}`, "-c", `1:${PART_NAMES.esp}`, "-u", `1:${GUIDS.esp}`,
    "-n", `2:${s(usrStart)}:${s(stateStart) - 1}`, "-t", `2:${TYPES.usr}`, "-c", `2:${PART_NAMES.usr}`, "-u", `2:${GUIDS.usr}`,
    "-A", "2:set:60",
    "-n", `3:${s(stateStart)}:${s(stateStart + mibs(sizes.state)) - 1}`, "-t", `3:${TYPES.root}`, "-c", `3:${PART_NAMES.state}`, "-u", `3:${GUIDS.state}`,
    out], { ...sig(signal), allowFailure: false });
  for (const [file, startMiB] of [[parts.esp, espStart], [parts.usr, usrStart], [parts.state, stateStart]] as const) {
    await run("dd", [`if=${file}`, `of=${out}`, "bs=1M", `seek=${startMiB}`, "conv=notrunc,sparse", "status=none"], sig(signal));
  }
  return (await run("sgdisk", ["-p", out], sig(signal))).stdout;
}

/** Writes a compressed qcow2 copy of a raw disk. */
export async function makeQcow2(raw: string, out: string, signal?: AbortSignal): Promise<void> {
  await run("qemu-img", ["convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "compression_type=zlib", raw, out], sig(signal));
}
