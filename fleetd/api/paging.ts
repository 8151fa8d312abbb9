/** Page size and page selection for the list endpoints (`/machines`, `/units`, `/state`). */
import { HttpError } from "./http-io";
import { MAX_PAGE_LIMIT, PageTokenError, pageFromQuery, slicePage } from "./page-token";

/**
 * Slices one page of `all` for the request's query. The page size is `token_limit` (fleet-compatible
 * default 100) unless the client asks for another with `?pageSize=N` (our extension, 1..65535): our
 * own client lists 10,000 units in one request that way; fleet's clients never send it.
 */
export function pageOf<T>(all: readonly T[], query: URLSearchParams, tokenLimit: number): { items: T[]; nextPageToken?: string } {
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
    return slicePage(all, pageFromQuery(query.getAll("nextPageToken"), limit));
  } catch (err) {
    if (err instanceof PageTokenError) throw new HttpError(400, err.message, { cause: err });
    throw err;
  }
}
