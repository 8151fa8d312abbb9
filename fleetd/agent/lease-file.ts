/**
 * Remembers this machine's lease ID across a crash and restart of fleetd (not across a reboot: the
 * default file lives in /run), so the next run can resume the lease instead of waiting for it to
 * expire, being declared dead and having its units rescheduled.
 */
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/** Where the agent keeps its lease ID between runs. */
export interface LeaseMemory {
  load(): Promise<string | undefined>;
  save(leaseId: string): Promise<void>;
  clear(): Promise<void>;
}

/** A {@link LeaseMemory} in one small file, written atomically. */
export function leaseFile(path: string): LeaseMemory {
  return {
    load: async () => {
      try {
        const id = (await readFile(path, "utf8")).trim();
        return /^\d+$/.test(id) ? id : undefined;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw err;
      }
    },
    save: async (leaseId) => {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(`${path}.tmp`, `${leaseId}\n`, { mode: 0o600 });
      await rename(`${path}.tmp`, path);
    },
    clear: async () => {
      await rm(path, { force: true });
    },
  };
}
