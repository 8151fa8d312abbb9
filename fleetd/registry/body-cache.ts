/**
 * Unit bodies are content-addressed (`P/bodies/<sha1>`), hence immutable: a parsed body can be cached
 * forever under its hash. Listing 10,000 instances of one template parses one body, not 10,000.
 */
import type { UnitOption } from "../../lib/api/types";
import { parseUnitFile } from "../../lib/unit";
import type { EtcdStore } from "./etcd-store";

/** Bound on cached bodies; past it the cache starts over (bodies are cheap to re-read). */
const MAX_ENTRIES = 20_000;

export class BodyCache {
  private readonly byHash = new Map<string, { text: string; options: UnitOption[] }>();

  constructor(private readonly store: Pick<EtcdStore, "keys" | "rangeMany">) {}

  /** Remembers a body we already have (e.g. the one we just wrote). */
  remember(hash: string, text: string, options?: readonly UnitOption[]): void {
    if (this.byHash.size >= MAX_ENTRIES) this.byHash.clear();
    this.byHash.set(hash, { text, options: options ? [...options] : parseUnitFile(text) });
  }

  get(hash: string): { text: string; options: UnitOption[] } | undefined {
    return this.byHash.get(hash);
  }

  /** Makes sure every given hash is cached, reading the missing ones in one transaction per 128. */
  async load(hashes: Iterable<string>, signal?: AbortSignal): Promise<void> {
    const missing = [...new Set(hashes)].filter((h) => !this.byHash.has(h));
    for (let i = 0; i < missing.length; i += 128) {
      const batch = missing.slice(i, i + 128);
      const { results } = await this.store.rangeMany(
        "read unit bodies",
        batch.map((h) => ({ prefix: this.store.keys.body(h), exact: true })),
        signal,
      );
      results.forEach((kvs, j) => {
        const kv = kvs[0];
        const hash = batch[j];
        if (kv && hash) this.remember(hash, kv.value.toString("utf8"));
      });
    }
  }
}
