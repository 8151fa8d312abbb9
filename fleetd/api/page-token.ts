/**
 * fleet's pagination tokens: URL-safe base64 (with padding) of two little-endian uint16 `{limit, page}`.
 * Kept byte-compatible so that fleet's own clients can page through our lists.
 */

/** One page request: `limit` items per page, `page` counted from 1. */
export interface PageToken {
  limit: number;
  page: number;
}

/** A token that cannot be used; the message is sent to the client with a 400. */
export class PageTokenError extends Error {
  override readonly name = "PageTokenError";
}

/** Largest page size a token can carry (uint16). */
export const MAX_PAGE_LIMIT = 0xffff;

/** Encodes a token exactly as fleet does (`base64.URLEncoding` of the little-endian struct). */
export function encodePageToken(token: PageToken): string {
  const buf = Buffer.alloc(4);
  buf.writeUInt16LE(token.limit, 0);
  buf.writeUInt16LE(token.page, 2);
  return buf.toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
}

/** Decodes a token; throws `PageTokenError("unable to decode token")` for anything that is not 4 bytes. */
export function decodePageToken(text: string): PageToken {
  // Go's URLEncoding is strict: only the URL-safe alphabet, padded to a multiple of 4.
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new PageTokenError("unable to decode token");
  }
  const buf = Buffer.from(text.replace(/-/g, "+").replace(/_/g, "/"), "base64");
  if (buf.length !== 4) throw new PageTokenError("unable to decode token");
  return { limit: buf.readUInt16LE(0), page: buf.readUInt16LE(2) };
}

/**
 * The page a list request asks for: the first page when no token is given, else the decoded token,
 * checked against the limit in force (fleet's messages).
 */
export function pageFromQuery(tokens: readonly string[], limit: number): PageToken {
  if (tokens.length > 1) throw new PageTokenError("too many values for nextPageToken");
  const text = tokens[0];
  if (text === undefined) return { limit, page: 1 };
  const token = decodePageToken(text);
  if (token.limit !== limit) throw new PageTokenError(`token limit must be ${limit}`);
  if (token.page === 0) throw new PageTokenError("page number must be greater than zero");
  return token;
}

/** Slices one page out of the full, sorted collection and says which token fetches the next one. */
export function slicePage<T>(all: readonly T[], token: PageToken): { items: T[]; nextPageToken?: string } {
  const start = (token.page - 1) * token.limit;
  const stop = token.page * token.limit;
  const items = all.slice(start, stop);
  if (stop < all.length && token.page < MAX_PAGE_LIMIT) {
    return { items, nextPageToken: encodePageToken({ limit: token.limit, page: token.page + 1 }) };
  }
  return { items };
}
