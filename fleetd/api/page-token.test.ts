import { describe, expect, it } from "vitest";
import { decodePageToken, encodePageToken, pageFromQuery, PageTokenError, slicePage } from "./page-token";

describe("page tokens", () => {
  it("encode like fleet: URL-safe base64 of little-endian uint16 limit and page", () => {
    // Go: base64.URLEncoding of []byte{100, 0, 2, 0}
    expect(encodePageToken({ limit: 100, page: 2 })).toBe("ZAACAA==");
    expect(encodePageToken({ limit: 0xfbff, page: 0xffff })).toBe("__v__w==");
  });

  it("round-trip", () => {
    for (const t of [{ limit: 1, page: 1 }, { limit: 100, page: 77 }, { limit: 65535, page: 65535 }]) {
      expect(decodePageToken(encodePageToken(t))).toEqual(t);
    }
  });

  it("reject undecodable tokens", () => {
    for (const bad of ["", "ZAACAA", "ZAAC AA==", "ZAACAAAA", "+/+/+w=="]) {
      expect(() => decodePageToken(bad)).toThrow("unable to decode token");
    }
  });

  it("check the limit, the page and duplicates with fleet's messages", () => {
    expect(pageFromQuery([], 100)).toEqual({ limit: 100, page: 1 });
    expect(() => pageFromQuery([encodePageToken({ limit: 50, page: 2 })], 100)).toThrow("token limit must be 100");
    expect(() => pageFromQuery([encodePageToken({ limit: 100, page: 0 })], 100)).toThrow("page number must be greater than zero");
    const t = encodePageToken({ limit: 100, page: 2 });
    expect(() => pageFromQuery([t, t], 100)).toThrow(PageTokenError);
  });

  it("slice pages and only offer a next token when more items follow", () => {
    const all = Array.from({ length: 5 }, (_, i) => i);
    const first = slicePage(all, { limit: 2, page: 1 });
    expect(first.items).toEqual([0, 1]);
    expect(decodePageToken(first.nextPageToken!)).toEqual({ limit: 2, page: 2 });
    expect(slicePage(all, { limit: 2, page: 3 })).toEqual({ items: [4] });
    expect(slicePage(all, { limit: 5, page: 1 })).toEqual({ items: all });
    expect(slicePage(all, { limit: 2, page: 9 })).toEqual({ items: [] });
  });
});
