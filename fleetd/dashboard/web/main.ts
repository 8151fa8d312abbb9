/**
 * fleetd's dashboard page: connects to the live feed (snapshot, then deltas), renders machines and a
 * virtualised units table, and offers unit actions when it holds credentials. Built by esbuild into
 * one script (scripts/dashboard-assets.mjs); no framework, nothing loaded from elsewhere.
 */
import type { DashboardDelta, DashboardSnapshot } from "../../../lib/api/dashboard-types";
import { ClusterState } from "./cluster-state";
import { Credentials } from "./credentials";
import { DetailPanel } from "./detail-panel";
import { byId } from "./dom";
import { readEventStream, UnauthorizedError } from "./event-stream";
import { renderMachines } from "./machines-table";
import { unitRows } from "./unit-rows";
import { UnitsTable } from "./units-table";

const EVENTS_URL = "dashboard/v1/events";

const state = new ClusterState();
const credentials = new Credentials(window.sessionStorage);
credentials.adoptFragment(window.location, window.history);
const collapsed = new Set<string>();
let openListenerActions = false;
let connection: AbortController | undefined;
/** The feed position of the last event applied: a reconnect asks only for what changed since. */
let lastEventId = "";

const filter = byId<HTMLInputElement>("filter");
const stateFilter = byId<HTMLSelectElement>("state-filter");
const group = byId<HTMLInputElement>("group");
const status = byId("status");
const detail = new DetailPanel(credentials, () => {
  detail.close();
  scheduleRender();
});
const table = new UnitsTable({
  viewport: byId("units-viewport"),
  spacer: byId("units-spacer"),
  rows: byId("units-rows"),
  onSelectUnit: (name) => {
    detail.open(name);
    scheduleRender();
  },
  onToggleGroup: (key) => {
    if (!collapsed.delete(key)) collapsed.add(key);
    scheduleRender();
  },
});

function setStatus(kind: "connecting" | "live" | "down" | "auth", text: string): void {
  status.dataset.state = kind;
  status.className = `status status-${kind}`;
  status.textContent = text;
}

/** Actions need credentials: a token, or an open listener the operator explicitly unlocked. */
function actionsAllowed(): boolean {
  return credentials.value !== "" || (state.listener === "open" && openListenerActions);
}

function renderMode(): void {
  const mode = byId("mode");
  mode.replaceChildren();
  if (credentials.value) {
    mode.textContent = "actions enabled (token)";
  } else if (state.listener === "open") {
    mode.textContent = openListenerActions ? "actions enabled (open listener) " : "read-only (open listener: no token needed to act) ";
    const b = document.createElement("button");
    b.type = "button";
    b.id = "unlock-actions";
    b.textContent = openListenerActions ? "lock" : "enable actions";
    b.addEventListener("click", () => {
      openListenerActions = !openListenerActions;
      scheduleRender(true);
    });
    mode.append(b);
  } else {
    mode.textContent = "read-only";
  }
}

let renderQueued = false;
let renderedVersion = -1;
let forceNext = false;

function scheduleRender(force = false): void {
  forceNext ||= force;
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(render);
}

function render(): void {
  renderQueued = false;
  const dataChanged = renderedVersion !== state.version;
  renderedVersion = state.version;
  const load = state.machineLoad();
  if (dataChanged || forceNext) {
    const machines = [...state.machines.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    renderMachines(byId("machines-body"), byId("capacity-head"), machines, load, (id) => {
      filter.value = `machine:${id.slice(0, 8)}`;
      scheduleRender();
    });
    byId("machines-count").textContent = String(machines.length);
  }
  forceNext = false;
  const { rows, shown } = unitRows(state.units.values(), { text: filter.value, state: stateFilter.value, group: group.checked, collapsed });
  table.update(rows, state.machines, detail.selected);
  document.querySelector(".units")?.classList.toggle("show-revision", table.revisionShown);
  const total = state.units.size;
  byId("units-count").textContent = shown === total ? String(total) : `${shown} of ${total}`;
  const empty = byId("units-empty");
  empty.hidden = shown > 0;
  empty.textContent = total === 0 ? "No units in the cluster." : "No unit matches the filter.";
  let launched = 0;
  let failed = 0;
  let unscheduled = 0;
  for (const u of state.units.values()) {
    if (u.currentState === "launched") launched++;
    if (u.systemd?.active === "failed") failed++;
    if (u.unscheduled !== undefined) unscheduled++;
  }
  byId("summary").textContent = `${state.machines.size} machines · ${total} units · ${launched} launched${failed ? ` · ${failed} failed` : ""}${unscheduled ? ` · ${unscheduled} unscheduled` : ""}${state.servedBy ? ` · via ${state.servedBy.slice(0, 8)}` : ""}`;
  renderMode();
  const selected = detail.selected;
  if (selected) {
    const u = state.units.get(selected);
    let instances = 0;
    if (u?.template !== undefined) for (const other of state.units.values()) if (other.template === u.template) instances++;
    detail.render(u, u?.machineID !== undefined ? state.machines.get(u.machineID) : undefined, actionsAllowed(), instances);
  }
}

/** Streams until aborted; reconnects with back-off; asks for a token on 401. */
async function connect(): Promise<void> {
  connection?.abort();
  const abort = (connection = new AbortController());
  let backoff = 500;
  while (!abort.signal.aborted) {
    setStatus("connecting", "connecting…");
    try {
      await readEventStream(
        EVENTS_URL,
        { ...credentials.headers(), ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}) },
        {
          onOpen: () => {
            backoff = 500;
          },
          onEvent: (event, data, id) => {
            if (event === "snapshot") state.applySnapshot(JSON.parse(data) as DashboardSnapshot);
            else if (event === "delta" && lastEventId !== "") state.applyDelta(JSON.parse(data) as DashboardDelta);
            else return;
            lastEventId = id ?? "";
            setStatus("live", `live · revision ${state.revision}`);
            scheduleRender();
          },
        },
        abort.signal,
      );
      if (abort.signal.aborted) return;
      setStatus("down", "stream ended: reconnecting…");
    } catch (err) {
      if (abort.signal.aborted) return;
      if (err instanceof UnauthorizedError) {
        setStatus("auth", credentials.value ? "token refused: enter the API token" : "this listener needs the API token");
        openTokenDialog();
        return;
      }
      setStatus("down", `disconnected (${(err as Error).message}): retrying in ${Math.round(backoff / 1000)} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, backoff));
    backoff = Math.min(backoff * 2, 10_000);
  }
}

const dialog = byId<HTMLDialogElement>("token-dialog");
const tokenInput = byId<HTMLInputElement>("token-input");

function openTokenDialog(): void {
  tokenInput.value = "";
  if (!dialog.open) dialog.showModal();
  tokenInput.focus();
}

byId("token-button").addEventListener("click", openTokenDialog);
byId("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  credentials.set(tokenInput.value);
  dialog.close();
  void connect();
});
byId("token-forget").addEventListener("click", () => {
  credentials.set("");
  dialog.close();
  void connect();
});
byId("token-cancel").addEventListener("click", () => dialog.close());
filter.addEventListener("input", () => scheduleRender());
stateFilter.addEventListener("change", () => scheduleRender());
group.addEventListener("change", () => scheduleRender());
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" && detail.selected) {
    detail.close();
    scheduleRender();
  }
});

void connect();
scheduleRender();
