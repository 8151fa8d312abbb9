/**
 * Page size and page selection for the list endpoints (`/machines`, `/units`, `/state`).
 *
 * fleet's page tokens carry only `{limit, page}` (an offset), and fleet's server read the whole
 * collection again for every page: a listing of P pages cost P full reads, quadratic in the size
 * (100,000 states in pages of 10,000: ten reads of 22 MB, 12 s). Here the first page's sorted
 * collection is kept as a snapshot, and the pages after it are cut from that snapshot while it is
 * fresh: a listing costs one read whatever its page count, and its pages are consistent with each
 * other (nothing skipped or repeated when units change between two pages). The tokens stay fleet's.
 */
import { HttpError } from "./http-io";
import { MAX_PAGE_LIMIT, PageTokenError, pageFromQuery, slicePage, type PageToken } from "./page-token";

export interface ListingSnapshotsOptions {
  /** How long the pages after the first may come from the first page's snapshot. Default 30 s. */
  ttlMs?: number;
  /** Snapshots kept at once (different listings, filters or page sizes). Default 16. */
  maxEntries?: number;
  now?: () => number;
}

interface Snapshot {
  items: readonly unknown[];
  expires: number;
}

export class ListingSnapshots {
  private readonly entries = new Map<string, Snapshot>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: ListingSnapshotsOptions = {}) {
    this.ttlMs = options.ttlMs ?? 30_000;
    this.maxEntries = options.maxEntries ?? 16;
    this.now = options.now ?? Date.now;
  }

  /** Snapshots held now (diagnostics, tests). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * One page of the listing `key` (the resource and its filters) for the request's query. `load`
   * returns the whole collection, sorted; it is called for a first page, and for a later page whose
   * snapshot expired, was evicted or never existed (another fleetd served the first page).
   */
  async page<T>(key: string, query: URLSearchParams, tokenLimit: number, load: () => Promise<T[]>): Promise<{ items: T[]; nextPageToken?: string }> {
    const token = requestedPage(query, tokenLimit);
    const id = `${key}\n${token.limit}`;
    const now = this.now();
    const held = this.entries.get(id);
    const all = token.page > 1 && held !== undefined && held.expires > now ? (held.items as T[]) : await load();
    const page = slicePage(all, token);
    if (page.nextPageToken === undefined) this.entries.delete(id);
    else if (all !== held?.items) this.keep(id, { items: all, expires: now + this.ttlMs });
    return page;
  }

  private keep(id: string, snapshot: Snapshot): void {
    this.entries.delete(id);
    this.entries.set(id, snapshot);
    const now = this.now();
    for (const [k, s] of this.entries) if (s.expires <= now) this.entries.delete(k);
    // Oldest first (Map keeps insertion order).
    for (const k of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(k);
    }
  }
}

/**
 * The page a request asks for. The page size is `token_limit` (fleet-compatible default 100) unless
 * the client asks for another with `?pageSize=N` (our extension, 1..65535): our own client lists
 * 65,535 units per request that way; fleet's clients never send it.
 */
/** Appended to fleet's page-token messages. */
export const PAGE_TOKEN_HINT =
  ": send the nextPageToken of the previous answer of this same listing once, as it was and with the same pageSize (a token carries the page size), or leave it out to list from the first page";

function requestedPage(query: URLSearchParams, tokenLimit: number): PageToken {
  let limit = tokenLimit;
  const sizes = query.getAll("pageSize");
  if (sizes.length > 0) {
    const text = sizes[sizes.length - 1]!;
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_LIMIT) {
      throw new HttpError(400, `pageSize must be an integer between 1 and ${MAX_PAGE_LIMIT}, not "${text}"`);
    }
    limit = n;
  }
  try {
    return pageFromQuery(query.getAll("nextPageToken"), limit);
  } catch (err) {
    // fleet's message, then what to do: it said only "unable to decode token" / "token limit must be N".
    if (err instanceof PageTokenError) throw new HttpError(400, `${err.message}${PAGE_TOKEN_HINT}`, { cause: err });
    throw err;
  }
}
