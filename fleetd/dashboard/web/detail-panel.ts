/** The side panel of the selected unit: its fields, the unit file, and actions when allowed. */
import type { DashboardMachine, DashboardUnit } from "../../../lib/api/dashboard-types";
import type { Credentials } from "./credentials";
import { byId, el } from "./dom";
import { ACTION_VERBS, fetchRolloutLine, fetchUnitFile, parseAssignments, runDeploy, runScale, runStop, runUnitAction, type UnitAction } from "./unit-actions";

/** How often the template's rollout line is read: while one runs, and otherwise (one started elsewhere). */
const ROLLOUT_POLL_MS = { running: 1_000, idle: 5_000 };

export class DetailPanel {
  private readonly root = byId("detail");
  private readonly message = byId("detail-message");
  private readonly file = byId("detail-file");
  private name = "";
  private fileAbort: AbortController | undefined;
  private armedDestroy = false;
  private actionsAllowed = false;
  /**
   * What the rollout controls act on: the selected instance's template (scale, deploy), or the
   * selected global unit itself (deploy: rolled machine by machine); "" = none.
   */
  private template = "";
  /** `template` is a global unit (deploy only), not a template. */
  private targetGlobal = false;
  private readonly templateSection = byId("detail-template");
  private readonly templateMessage = byId("template-message");
  private readonly scaleCount = byId<HTMLInputElement>("scale-count");
  private readonly deploySet = byId<HTMLInputElement>("deploy-set");
  private readonly templateRollout = byId("template-rollout");
  /** Shown while the template's rollout rolls forward. */
  private readonly rolloutStop = byId<HTMLButtonElement>("rollout-stop");
  /** Stops following the shown template's rollout. */
  private rolloutAbort: AbortController | undefined;

  constructor(
    private readonly credentials: Credentials,
    private readonly onClose: () => void,
  ) {
    byId("detail-close").addEventListener("click", () => this.onClose());
    byId("detail-actions").addEventListener("click", (ev) => {
      const button = (ev.target as HTMLElement).closest<HTMLButtonElement>("button[data-action]");
      if (button && !button.disabled) void this.act(button.dataset.action as UnitAction, button);
    });
    byId("scale-apply").addEventListener("click", () => void this.templateAction("scale"));
    byId("deploy-apply").addEventListener("click", () => void this.templateAction("deploy"));
    this.rolloutStop.addEventListener("click", () => void this.templateAction("stop"));
  }

  get selected(): string {
    return this.name;
  }

  open(name: string): void {
    if (name !== this.name) {
      this.name = name;
      this.message.textContent = "";
      this.disarm();
      this.loadFile();
    }
    this.root.hidden = false;
  }

  close(): void {
    this.name = "";
    this.template = "";
    this.followRollout("");
    this.fileAbort?.abort();
    this.root.hidden = true;
  }

  /**
   * Redraws the fields from the latest data; `unit` undefined = destroyed meanwhile. `instances`: how
   * many instances its template has (the scale control starts from it).
   */
  render(unit: DashboardUnit | undefined, machine: DashboardMachine | undefined, actionsAllowed: boolean, instances = 0): void {
    if (!this.name) return;
    this.actionsAllowed = actionsAllowed;
    byId("detail-name").textContent = this.name;
    const fields: [string, string][] = unit
      ? [
          ["desired", unit.desiredState],
          ["current", unit.global ? "global" : (unit.currentState ?? "-")],
          ["machine", unit.global ? `${unit.globalMachines ?? 0} machines, ${unit.globalActive ?? 0} active` : unit.machineID ? `${unit.machineID}${machine?.primaryIP ? ` (${machine.primaryIP})` : ""}` : "-"],
          ["systemd", unit.systemd ? `${unit.systemd.load} / ${unit.systemd.active} / ${unit.systemd.sub}` : "-"],
          ["hash", unit.hash],
          ...(unit.template ? ([["template", unit.template]] as [string, string][]) : []),
          ...(unit.revision !== undefined ? ([["revision", String(unit.revision)]] as [string, string][]) : []),
          ...(unit.unscheduled ? ([["why unscheduled", unit.unscheduled]] as [string, string][]) : []),
        ]
      : [["state", "destroyed"]];
    byId("detail-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
    for (const b of byId("detail-actions").querySelectorAll<HTMLButtonElement>("button")) {
      b.disabled = !unit || !actionsAllowed;
      b.title = actionsAllowed ? "" : "read-only: enter the API token to act on units";
    }
    // A destroyed unit (undefined) keeps the controls it had; a plain unit has none.
    const template = unit ? (unit.template ?? (unit.global ? unit.name : "")) : this.template;
    if (template !== this.template) {
      this.template = template;
      this.targetGlobal = unit?.template === undefined && unit?.global === true;
      this.templateMessage.textContent = "";
      this.scaleCount.value = String(instances);
      this.deploySet.value = "";
      this.followRollout(template);
    }
    this.templateSection.hidden = template === "";
    byId("template-kind").textContent = this.targetGlobal ? "Global unit" : "Template";
    byId("scale-row").hidden = this.targetGlobal;
    byId("template-name").textContent = template;
    for (const b of this.templateSection.querySelectorAll<HTMLButtonElement>("button")) {
      b.disabled = !actionsAllowed;
      b.title = actionsAllowed ? (b.dataset.title ?? "") : "read-only: enter the API token to scale, deploy or stop a rollout";
    }
  }

  private async templateAction(kind: "scale" | "deploy" | "stop"): Promise<void> {
    const template = this.template;
    if (!this.actionsAllowed || !template) return;
    const show = (text: string, error = false): void => {
      if (this.template !== template) return;
      this.templateMessage.className = error ? "message error" : "message";
      this.templateMessage.textContent = text;
    };
    try {
      if (kind === "scale") {
        const n = Number(this.scaleCount.value);
        if (this.scaleCount.value.trim() === "" || !Number.isInteger(n) || n < 0) throw new Error(`Cannot scale ${template}: "${this.scaleCount.value}" is not an instance count (0, 1, 2, …)`);
        show(`scale ${template} to ${n}: sending…`);
        show(await runScale(this.credentials, template, n));
      } else if (kind === "stop") {
        this.rolloutStop.disabled = true;
        show(`stop the rollout of ${template}: sending…`);
        show(await runStop(this.credentials, template));
        if (this.template === template) this.followRollout(template);
      } else {
        let set: Record<string, string>;
        try {
          set = parseAssignments(this.deploySet.value);
        } catch (err) {
          throw new Error(`Cannot deploy ${template}: ${(err as Error).message}`);
        }
        show(`deploy ${template}: sending…`);
        show(await runDeploy(this.credentials, template, set, this.targetGlobal ? "machine" : "instance"));
        if (this.template === template) this.followRollout(template); // at once, not at the next idle poll
      }
    } catch (err) {
      show((err as Error).message, true);
    }
  }

  /** Shows `template`'s rollout line and keeps it current until another template (or none) is shown. */
  private followRollout(template: string): void {
    this.rolloutAbort?.abort();
    this.rolloutAbort = undefined;
    this.templateRollout.textContent = "";
    this.rolloutStop.hidden = true;
    if (!template) return;
    const abort = (this.rolloutAbort = new AbortController());
    const poll = async (): Promise<void> => {
      let wait = ROLLOUT_POLL_MS.idle;
      try {
        const line = await fetchRolloutLine(this.credentials, template, abort.signal);
        if (abort.signal.aborted) return;
        this.templateRollout.className = line.bad ? "message error" : "message";
        this.templateRollout.textContent = line.text;
        this.rolloutStop.hidden = !line.stoppable;
        this.rolloutStop.disabled = !this.actionsAllowed;
        if (line.running) wait = ROLLOUT_POLL_MS.running;
      } catch (err) {
        if (abort.signal.aborted) return;
        this.templateRollout.className = "message error";
        this.templateRollout.textContent = (err as Error).message;
      }
      setTimeout(() => void poll(), wait);
    };
    void poll();
  }

  private loadFile(): void {
    this.fileAbort?.abort();
    const abort = (this.fileAbort = new AbortController());
    this.file.textContent = "…";
    fetchUnitFile(this.credentials, this.name, abort.signal).then(
      (text) => {
        if (!abort.signal.aborted) this.file.textContent = text;
      },
      (err: unknown) => {
        if (!abort.signal.aborted) this.file.textContent = (err as Error).message;
      },
    );
  }

  private disarm(): void {
    this.armedDestroy = false;
    const b = byId("detail-actions").querySelector<HTMLButtonElement>('button[data-action="destroy"]');
    if (b) b.textContent = "Destroy";
  }

  private async act(action: UnitAction, button: HTMLButtonElement): Promise<void> {
    if (!this.actionsAllowed) return;
    const name = this.name;
    if (action === "destroy" && !this.armedDestroy) {
      // Two clicks, no modal: destroying is the one action that cannot be undone.
      this.armedDestroy = true;
      button.textContent = "Confirm destroy";
      this.message.textContent = `Click "Confirm destroy" to remove ${name} from the cluster.`;
      return;
    }
    this.disarm();
    this.message.className = "message";
    this.message.textContent = `${ACTION_VERBS[action]}: sending…`;
    try {
      await runUnitAction(this.credentials, name, action);
      if (this.name === name) this.message.textContent = `${ACTION_VERBS[action]} ${name}: accepted`;
    } catch (err) {
      if (this.name === name) {
        this.message.className = "message error";
        this.message.textContent = (err as Error).message;
      }
    }
  }
}
