/**
 * Harness of the dashboard suites: Debian's chromium driven by playwright-core (a fresh profile per
 * browser, no network beyond loopback), and fleet clusters whose first machine serves the real fleetd
 * API (FleetServer with its dashboard) on a loopback TCP listener with a bearer token.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { DASHBOARD_EVENTS_PATH, type DashboardDelta, type DashboardSnapshot } from "../../lib/api/dashboard-types";
import { ClusterState } from "../../fleetd/dashboard/web/cluster-state";
import { readEventStream } from "../../fleetd/dashboard/web/event-stream";
import type { EtcdInstance } from "../helpers/etcd";
import { FleetCluster, waitFor, type FleetInstance, type InstanceOptions } from "../helpers/fleet-cluster";

export const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

export interface TestBrowser {
  context: BrowserContext;
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/** Starts chromium with a fresh profile directory (removed on close). */
export async function launchBrowser(viewport = { width: 1440, height: 900 }): Promise<TestBrowser> {
  const profile = await mkdtemp(join(tmpdir(), "dashboard-chromium-"));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, viewport });
  return {
    context,
    newPage: () => context.newPage(),
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

export interface DashboardCluster {
  cluster: FleetCluster;
  /** The machine whose fleetd serves the API and dashboard. */
  server: FleetInstance;
  /** `http://127.0.0.1:<port>/` */
  url: string;
  token: string;
  dir: string;
  close(): Promise<void>;
}

/** The API options of a fleetd that serves the dashboard on loopback TCP. */
export function apiOptions(dir: string, id: string, listener: { token: string } | { open: true }): InstanceOptions {
  return {
    api: true,
    extra: {
      api_socket: join(dir, `${id}.sock`),
      api_tcp_listen: "127.0.0.1:0",
      ...("token" in listener ? { api_token: listener.token } : { api_tcp_open: "true" }),
    },
  };
}

/** A cluster of `ids` (metadata per machine); the first one serves the API with `token`. */
export async function startDashboardCluster(etcd: EtcdInstance, ids: readonly string[], metadata: Record<string, string> = {}, token = "s3cret-dashboard-token"): Promise<DashboardCluster> {
  const dir = await mkdtemp(join(tmpdir(), "dashboard-"));
  const cluster = new FleetCluster(etcd);
  const [first, ...rest] = ids;
  const server = await cluster.add(first!, { ...apiOptions(dir, first!, { token }), ...(metadata[first!] ? { metadata: metadata[first!] } : {}) });
  await Promise.all(rest.map((id) => cluster.add(id, metadata[id] ? { metadata: metadata[id] } : {})));
  await cluster.waitMachines();
  const http = server.server.apiAddresses.find((a) => a.startsWith("http://"));
  if (!http) throw new Error(`fleetd ${first!} has no TCP API listener: ${server.server.apiAddresses.join(", ")}`);
  return {
    cluster,
    server,
    url: `${http}/`,
    token,
    dir,
    close: async () => {
      await cluster.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const ROWS = "#units-rows > .row.unit:not([hidden])";

/** Names of the unit rows the page shows right now (rendered rows of the virtual table). */
export async function shownUnits(page: Page): Promise<string[]> {
  return attributes(page, ROWS, "data-unit");
}

/*
 * Every read below happens in one evaluation inside the page, so it sees one rendered frame. Reading
 * matches one by one (`locator.all()`, then a call per match) races the page's renders: when a render
 * hides or recycles rows between the two, the later match no longer exists and playwright waits for
 * it until its 30 s action timeout (the browser suite's "flakiness" after its first test).
 */

/** What the reads use of a DOM element (the test code is typed without the DOM library). */
interface PageElement {
  getAttribute(name: string): string | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
  textContent: string | null;
  disabled?: boolean;
}

/** An attribute of every element matching `selector`, in document order. */
export async function attributes(page: Page, selector: string, name: string): Promise<string[]> {
  return page.locator(selector).evaluateAll((els, attr) => (els as unknown as PageElement[]).map((e) => e.getAttribute(attr) ?? ""), name);
}

/** The cell texts of each row matching `selector` (table rows: their `td`s). */
export async function rowTexts(page: Page, selector: string, cell = "td"): Promise<string[][]> {
  return page.locator(selector).evaluateAll((els, c) => (els as unknown as PageElement[]).map((e) => [...e.querySelectorAll(c)].map((x) => x.textContent ?? "")), cell);
}

/** Whether each element matching `selector` is disabled, in document order. */
export async function disabledStates(page: Page, selector: string): Promise<boolean[]> {
  return page.locator(selector).evaluateAll((els) => (els as unknown as PageElement[]).map((e) => e.disabled === true));
}

/** Back to the unfiltered, grouped table with no unit selected (each test starts from there). */
export async function resetView(page: Page): Promise<void> {
  if (!page.url().startsWith("http")) return;
  if ((await page.inputValue("#filter")) !== "") await page.fill("#filter", "");
  if ((await page.inputValue("#state-filter")) !== "") await page.selectOption("#state-filter", "");
  await page.setChecked("#group", true);
  if (await page.isVisible("#detail")) await page.click("#detail-close");
}

/** The text of a unit's row cells: [name, machine, desired, current, systemd, revision, reason]. */
export async function unitCells(page: Page, name: string): Promise<string[] | undefined> {
  const [cells] = await rowTexts(page, `${ROWS}[data-unit="${name}"]`, "span");
  return cells;
}

/** Column numbers of {@link unitCells}. */
export const COLUMN = { name: 0, machine: 1, desired: 2, current: 3, systemd: 4, revision: 5, reason: 6 } as const;

/** Waits until the unit's row shows `text` in `column` (fails after `timeoutMs`). */
export async function waitForCell(page: Page, name: string, column: keyof typeof COLUMN, text: string, timeoutMs: number): Promise<void> {
  await page
    .locator(`${ROWS}[data-unit="${name}"] > span:nth-child(${COLUMN[column] + 1})`)
    .filter({ hasText: new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`) })
    .waitFor({ timeout: timeoutMs });
}

/** One client of the dashboard feed over HTTP, outside a browser: the page's own reader and model. */
export interface FeedClient {
  /** The page's model of the cluster, fed by the events as the page applies them. */
  readonly state: ClusterState;
  /** Every event received: its type and id (`snapshot` or `delta`). */
  readonly events: { event: string; id: string | undefined; data: string }[];
  /** The id of the last event. */
  readonly lastId: string | undefined;
  /** Resolves when the stream ends (rejects on an error other than close()). */
  readonly done: Promise<void>;
  close(): Promise<void>;
}

/** Opens `GET /dashboard/v1/events` with the token (and `Last-Event-ID` when given). */
export function connectFeed(baseUrl: string, token: string, options: { lastEventId?: string; state?: ClusterState } = {}): FeedClient {
  const abort = new AbortController();
  const state = options.state ?? new ClusterState();
  const events: FeedClient["events"] = [];
  let lastId: string | undefined;
  const headers: Record<string, string> = { Authorization: `Bearer ${token}`, ...(options.lastEventId ? { "Last-Event-ID": options.lastEventId } : {}) };
  const done = readEventStream(
    new URL(DASHBOARD_EVENTS_PATH, baseUrl).href,
    headers,
    {
      onOpen: () => undefined,
      onEvent: (event, data, id) => {
        events.push({ event, id, data });
        lastId = id;
        if (event === "snapshot") state.applySnapshot(JSON.parse(data) as DashboardSnapshot);
        else if (event === "delta") state.applyDelta(JSON.parse(data) as DashboardDelta);
      },
    },
    abort.signal,
  ).catch((err: unknown) => {
    if (!abort.signal.aborted) throw err;
  });
  return {
    state,
    events,
    get lastId() {
      return lastId;
    },
    done,
    close: async () => {
      abort.abort();
      await done;
    },
  };
}

/** A client's units as a comparable text (sorted by name). */
export function unitsOf(state: ClusterState): string {
  return JSON.stringify([...state.units.values()].sort((a, b) => (a.name < b.name ? -1 : 1)));
}

/** Waits until `selector`'s text is `want`; on timeout the error shows the last text seen. */
export async function waitForText(page: Page, selector: string, want: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    `${selector} to read ${JSON.stringify(want)}`,
    async () => {
      const text = await page.textContent(selector);
      if (text !== want) throw new Error(`it reads ${JSON.stringify(text)}`);
      return true;
    },
    { timeoutMs },
  );
}
