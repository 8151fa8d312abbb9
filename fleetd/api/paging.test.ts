import { describe, expect, it } from "vitest";
import { ListingSnapshots } from "./paging";

const q = (s = ""): URLSearchParams => new URLSearchParams(s);

describe("ListingSnapshots: pages after the first come from the first page's snapshot", () => {
  const setup = (ttlMs = 30_000) => {
    let now = 1_000;
    let loads = 0;
    let data = ["a", "b", "c", "d", "e"];
    const snapshots = new ListingSnapshots({ ttlMs, now: () => now });
    const load = async (): Promise<string[]> => {
      loads++;
      return [...data];
    };
    return {
      snapshots,
      load,
      loads: () => loads,
      setData: (d: string[]) => (data = d),
      advance: (ms: number) => (now += ms),
    };
  };

  it("reads the collection once for a listing of several pages, and its pages are consistent", async () => {
    const t = setup();
    const first = await t.snapshots.page("units", q(), 2, t.load);
    expect(first).toEqual({ items: ["a", "b"], nextPageToken: "AgACAA==" });
    t.setData(["0", "a", "b", "c", "d", "e"]); // a unit created between two pages
    const second = await t.snapshots.page("units", q(`nextPageToken=${first.nextPageToken}`), 2, t.load);
    expect(second.items).toEqual(["c", "d"]);
    const third = await t.snapshots.page("units", q(`nextPageToken=${second.nextPageToken}`), 2, t.load);
    expect(third).toEqual({ items: ["e"] });
    expect(t.loads()).toBe(1);
    // The last page dropped the snapshot; a new listing reads again and sees the change.
    expect(t.snapshots.size).toBe(0);
    expect((await t.snapshots.page("units", q(), 2, t.load)).items).toEqual(["0", "a"]);
    expect(t.loads()).toBe(2);
  });

  it("reads again once the snapshot is older than its TTL, or when no first page was served here", async () => {
    const t = setup(5_000);
    const first = await t.snapshots.page("units", q(), 2, t.load);
    t.setData(["a", "b", "x", "y", "z"]);
    t.advance(5_001);
    expect((await t.snapshots.page("units", q(`nextPageToken=${first.nextPageToken}`), 2, t.load)).items).toEqual(["x", "y"]);
    expect(t.loads()).toBe(2);
    const other = setup();
    expect((await other.snapshots.page("units", q("nextPageToken=AgACAA=="), 2, other.load)).items).toEqual(["c", "d"]);
    expect(other.loads()).toBe(1);
  });

  it("keeps listings, filters and page sizes apart", async () => {
    const t = setup();
    const a = await t.snapshots.page("state\nm1\n", q(), 2, t.load);
    await t.snapshots.page("state\nm2\n", q(), 2, async () => ["p", "q", "r"]);
    await t.snapshots.page("state\nm1\n", q("pageSize=3"), 2, t.load);
    expect((await t.snapshots.page("state\nm1\n", q(`nextPageToken=${a.nextPageToken}`), 2, t.load)).items).toEqual(["c", "d"]);
    expect(t.loads()).toBe(2);
  });

  it("holds at most maxEntries snapshots, dropping the oldest", async () => {
    let loads = 0;
    const snapshots = new ListingSnapshots({ maxEntries: 2 });
    const load = async (): Promise<number[]> => (loads++, [1, 2, 3]);
    for (const key of ["k1", "k2", "k3"]) await snapshots.page(key, q(), 1, load);
    expect(snapshots.size).toBe(2);
    await snapshots.page("k1", q("nextPageToken=AQACAA=="), 1, load);
    expect(loads).toBe(4);
  });

  it("refuses a bad page size or token before reading anything", async () => {
    const t = setup();
    await expect(t.snapshots.page("units", q("pageSize=0"), 2, t.load)).rejects.toThrow('pageSize must be an integer between 1 and 65535, not "0"');
    await expect(t.snapshots.page("units", q("nextPageToken=ZAACAA=="), 2, t.load)).rejects.toThrow("token limit must be 2");
    expect(t.loads()).toBe(0);
  });
});
