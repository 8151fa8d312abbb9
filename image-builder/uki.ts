/**
 * The unified kernel image: systemd-boot's EFI stub with the kernel, initramfs, command line and
 * os-release as PE sections (objcopy), booted by UEFI firmware directly as EFI/BOOT/BOOTX64.EFI.
 * No boot loader and no boot menu: the firmware's default path is what EC2 and OVMF start.
 */
import { run } from "../lib/process/run";

export interface UkiInputs { stub: string; kernel: string; initrd: string; cmdlineFile: string; osRelease: string; out: string; signal?: AbortSignal }

/** Builds the UKI. The section addresses leave room for a stub < 128 KiB and a kernel < 16 MiB. */
export async function buildUki(i: UkiInputs): Promise<void> {
  await run("objcopy", [
    "--add-section", `.osrel=${i.osRelease}`, "--change-section-vma", ".osrel=0x20000",
    "--add-section", `.cmdline=${i.cmdlineFile}`, "--change-section-vma", ".cmdline=0x30000",
    "--add-section", `.linux=${i.kernel}`, "--change-section-vma", ".linux=0x2000000",
    "--add-section", `.initrd=${i.initrd}`, "--change-section-vma", ".initrd=0x3000000",
    i.stub, i.out,
  ], i.signal ? { signal: i.signal } : {});
}
