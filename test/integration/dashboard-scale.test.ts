/**
 * The dashboard with 10,000 units, in a real headless chromium against a real fleetd on a real etcd
 * (three machines with in-memory unit managers): 10,000 template instances submitted through the
 * API's bulk `POST /fleet/v1/units` reach an open page as deltas and a reloaded one as a snapshot;
 * the page counts them all while its DOM holds only the rows in view (the table is virtualised),
 * scrolls to the last one, filters down to one named unit, and shows one unit's state change among
 * the 10,000. Figures are printed, not bounded: only generous functional timeouts are asserted.
 */
import type { Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ApiClient, type UnitPut } from "../../lib/api/client";
import { parseUnitFile } from "../../lib/unit";
import { unitText, waitFor } from "../helpers/fleet-cluster";
import { etcdFixture } from "../helpers/fleet-fixture";
import { attributes, launchBrowser, resetView, shownUnits, startDashboardCluster, unitCells, waitForCell, waitForText, type DashboardCluster, type TestBrowser } from "./dashboard-harness";

const M1 = "5a1d2c3b5a6978800112233445566771";
const M2 = "6b8b7c6d5e4f30211223344556677882";
const M3 = "7cffee00deadbeef0123456789abcde3";

/** 10,000 instances of three templates. */
const TEMPLATES: [string, number][] = [
  ["web", 5_000],
  ["worker", 4_000],
  ["batch", 1_000],
];
const TOTAL = 10_000;
const NAMES = TEMPLATES.flatMap(([t, n]) => Array.from({ length: n }, (_, i) => `${t}@${i + 1}.service`));
/** The units table's row height (fleetd/dashboard/web/units-table.ts). */
const ROW_HEIGHT = 26;
/** Far more rows than any viewport shows (900 px / 26 px ≈ 35, plus the overscan), far fewer than 10,000. */
const MAX_ROWS = 500;
/** The unit whose state changes, and the one filtered for. */
const CHANGED = "batch@424.service";
const PICKED = "worker@3177.service";

describe("dashboard with 10,000 units in chromium", () => {
  const etcd = etcdFixture();
  let fleet: DashboardCluster;
  let browser: TestBrowser;
  let page: Page;

  /** Every row element the table has in the DOM (shown or pooled), and the unit rows shown. */
  const domRows = async (): Promise<{ all: number; units: number }> => ({
    all: await page.locator("#units-rows > *").count(),
    units: (await shownUnits(page)).length,
  });

  beforeAll(async () => {
    fleet = await startDashboardCluster(etcd(), [M1, M2, M3]);
    browser = await launchBrowser();
    page = await browser.newPage();
    await page.goto(`${fleet.url}#token=${fleet.token}`);
    await page.waitForSelector('#status[data-state="live"]');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await fleet?.close();
  });

  beforeEach(async () => {
    if (page) await resetView(page);
  });

  it("follows 10,000 units submitted in bulk while it is open, with a bounded number of rows in the DOM", async () => {
    const endpoint = fleet.server.server.apiAddresses.find((a) => a.startsWith("http://"))!;
    const api = new ApiClient({ endpoint, token: fleet.token });
    const started = Date.now();
    try {
      const units: UnitPut[] = NAMES.map((name) => ({ name, options: parseUnitFile(unitText()), desiredState: "launched" }));
      await api.putUnits(units);
    } finally {
      api.close();
    }
    const submitted = Date.now() - started;
    await waitForText(page, "#units-count", String(TOTAL), 45_000);
    const counted = Date.now() - started;
    await waitFor(
      "the summary to show 10,000 launched units",
      async () => {
        const text = (await page.textContent("#summary")) ?? "";
        if (!text.includes(`${TOTAL} units · ${TOTAL} launched`)) throw new Error(`it reads ${JSON.stringify(text)}`);
        return true;
      },
      { timeoutMs: 50_000 },
    );
    const launched = Date.now() - started;
    const rows = await domRows();
    console.log(`dashboard-scale: ${TOTAL} units submitted in ${submitted} ms, counted by the page at ${counted} ms, all launched at ${launched} ms; ${rows.all} row elements in the DOM, ${rows.units} unit rows shown`);
    expect(rows.units).toBeGreaterThan(0);
    expect(rows.all).toBeLessThan(MAX_ROWS);
    // The scroll area is as tall as all rows (three group headers + 10,000 units), though few exist.
    const spacer = await page.locator("#units-spacer").evaluate((e) => (e as unknown as { offsetHeight: number }).offsetHeight);
    expect(spacer).toBe((TOTAL + TEMPLATES.length) * ROW_HEIGHT);
    // The group headers count every instance.
    const groups = await attributes(page, "#units-rows > .row.group:not([hidden])", "data-group");
    expect(groups[0]).toBe("batch@.service");
    expect(await page.textContent('#units-rows > .row.group[data-group="batch@.service"] .group-stats')).toBe("1000 units · 1000 launched");
  });

  it("shows the same 10,000 after a reload (snapshot), and scrolls to the last unit with the DOM still bounded", async () => {
    await page.reload();
    await page.waitForSelector('#status[data-state="live"]');
    await waitForText(page, "#units-count", String(TOTAL), 30_000);
    // Grouped by template (batch, web, worker), sorted by name within each: the last row is the
    // greatest worker instance name.
    const last = NAMES.filter((n) => n.startsWith("worker@")).sort((a, b) => (a < b ? -1 : 1)).at(-1)!;
    await page.locator("#units-viewport").evaluate((e) => {
      const v = e as unknown as { scrollTop: number; scrollHeight: number };
      v.scrollTop = v.scrollHeight;
    });
    await waitFor(`the last row, ${last}, to be shown`, async () => {
      const shown = await shownUnits(page);
      if (shown.at(-1) !== last) throw new Error(`the last shown row is ${shown.at(-1)}`);
      return true;
    });
    const rows = await domRows();
    console.log(`dashboard-scale: scrolled to the end: ${rows.all} row elements in the DOM, ${rows.units} unit rows shown`);
    expect(rows.all).toBeLessThan(MAX_ROWS);
    expect((await unitCells(page, last))?.[3]).toBe("launched");
    await page.locator("#units-viewport").evaluate((e) => {
      (e as unknown as { scrollTop: number }).scrollTop = 0;
    });
  });

  it("filters the 10,000 down to one named unit", async () => {
    await page.fill("#filter", PICKED);
    await waitFor(`only ${PICKED}`, async () => JSON.stringify(await shownUnits(page)) === JSON.stringify([PICKED]));
    expect(await page.textContent("#units-count")).toBe(`1 of ${TOTAL}`);
    const cells = await unitCells(page, PICKED);
    const api = await fleet.cluster.registry.getUnit(PICKED);
    expect(cells?.[0]).toBe(PICKED);
    expect(cells?.[3]).toBe("launched");
    expect(cells?.[1]).toMatch(new RegExp(`^${api!.machineID!.slice(0, 8)}/`));
    // Back to everything: all 10,000 counted again, the DOM still bounded.
    await page.fill("#filter", "");
    await waitForText(page, "#units-count", String(TOTAL));
    expect((await domRows()).all).toBeLessThan(MAX_ROWS);
  });

  it("shows one unit's state change among the 10,000", async () => {
    await fleet.cluster.registry.setDesiredState(CHANGED, "loaded");
    await waitFor(`${CHANGED} loaded in etcd`, async () => (await fleet.cluster.registry.getUnit(CHANGED))?.currentState === "loaded", { timeoutMs: 20_000 });
    const reported = Date.now();
    // The unfiltered page counts it (its row is far out of view, not in the DOM)...
    await waitFor(
      "the summary to count one unit fewer launched",
      async () => {
        const text = (await page.textContent("#summary")) ?? "";
        if (!text.includes(`${TOTAL} units · ${TOTAL - 1} launched`)) throw new Error(`it reads ${JSON.stringify(text)}`);
        return true;
      },
      { timeoutMs: 15_000 },
    );
    const counted = Date.now() - reported;
    expect(await page.textContent('#units-rows > .row.group[data-group="batch@.service"] .group-stats')).toBe("1000 units · 999 launched");
    expect(await shownUnits(page)).not.toContain(CHANGED);
    // ...and its row, filtered for, shows the new states.
    await page.fill("#filter", CHANGED);
    await waitForCell(page, CHANGED, "desired", "loaded", 15_000);
    await waitForCell(page, CHANGED, "current", "loaded", 15_000);
    console.log(`dashboard-scale: ${CHANGED} counted as no longer launched ${counted} ms after the API reported it loaded`);
    expect(await shownUnits(page)).toEqual([CHANGED]);
  });
});
