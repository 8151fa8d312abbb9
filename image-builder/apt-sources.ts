/**
 * The Debian archive comes from the host's own apt configuration (never a hard-coded mirror): the
 * deb822 files in /etc/apt/sources.list.d/*.sources and the one-line entries of
 * /etc/apt/sources.list. mmdebstrap takes each such file as a "mirror" argument and pastes it into
 * the chroot's apt configuration. We never print the URIs.
 */
import { readFile, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { undefinedIfMissing } from "../lib/fs/missing";

export interface AptSources {
  /** Files to pass to mmdebstrap as mirror arguments. */
  files: string[];
  /** Concatenated content (hashed into the build cache key). */
  content: string;
  /** The first suite named (e.g. "bookworm"). */
  suite: string;
  /** Components of that first entry (e.g. ["main"]). */
  components: string[];
}

/** One apt source entry, without its URIs. */
export interface SourceEntry { suites: string[]; components: string[] }

/** Parses deb822 `.sources` text into its `Types: deb` entries (Enabled: no is skipped). */
export function parseDeb822(text: string): SourceEntry[] {
  const entries: SourceEntry[] = [];
  for (const para of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last = "";
    for (const line of para.split("\n")) {
      if (line.startsWith("#") || line.trim() === "") continue;
      if (/^\s/.test(line) && last !== "") {
        fields.set(last, `${fields.get(last) ?? ""} ${line.trim()}`);
        continue;
      }
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (m?.[1] !== undefined) {
        last = m[1].toLowerCase();
        fields.set(last, m[2] ?? "");
      }
    }
    if (!(fields.get("types") ?? "").split(/\s+/).includes("deb")) continue;
    if ((fields.get("enabled") ?? "yes").toLowerCase() === "no") continue;
    entries.push({
      suites: (fields.get("suites") ?? "").split(/\s+/).filter(Boolean),
      components: (fields.get("components") ?? "").split(/\s+/).filter(Boolean),
    });
  }
  return entries;
}

/** Parses one-line `deb [opts] URI suite comp...` entries. */
export function parseOneLine(text: string): SourceEntry[] {
  const entries: SourceEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    if (!line.startsWith("deb ")) continue;
    const parts = line.replace(/\[[^\]]*\]/, "").trim().split(/\s+/);
    const suite = parts[2];
    if (suite !== undefined) entries.push({ suites: [suite], components: parts.slice(3) });
  }
  return entries;
}

/** Reads the host's apt sources under `root` (default "/"); `workDir` receives a copy of one-line files. */
export async function readHostAptSources(workDir: string, root = "/"): Promise<AptSources> {
  const files: string[] = [];
  const entries: SourceEntry[] = [];
  let content = "";
  const dDir = path.join(root, "etc/apt/sources.list.d");
  const names = ((await readdir(dDir).catch(undefinedIfMissing)) ?? []).filter((n) => n.endsWith(".sources") || n.endsWith(".list")).sort();
  const candidates = [path.join(root, "etc/apt/sources.list"), ...names.map((n) => path.join(dDir, n))];
  for (const file of candidates) {
    const text = await readFile(file, "utf8").catch(undefinedIfMissing);
    if (text === undefined) continue;
    const found = file.endsWith(".sources") ? parseDeb822(text) : parseOneLine(text);
    if (found.length === 0) continue;
    entries.push(...found);
    content += `# ${file}\n${text}\n`;
    if (file.endsWith(".sources")) {
      files.push(file);
    } else {
      // Pass only the "deb" lines: deb-src entries would make apt fetch source indexes too.
      const copy = path.join(workDir, `host-${files.length}.list`);
      await writeFile(copy, text.split("\n").filter((l) => l.trim().startsWith("deb ")).join("\n") + "\n");
      files.push(copy);
    }
  }
  const first = entries.find((e) => e.suites.length > 0);
  if (first === undefined || first.suites[0] === undefined) {
    throw new Error(`Cannot find a Debian archive in the host's apt configuration (${path.join(root, "etc/apt/sources.list")}, ${dDir}/*.sources): no enabled "deb" entry; configure apt on this host first`);
  }
  return { files, content, suite: first.suites[0], components: first.components };
}
