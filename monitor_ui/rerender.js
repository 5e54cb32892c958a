// Re-render the take being reviewed with other settings (identity, age, blend, colour match,
// AI mark) into a new version: POST /api/takes/ID/render, then GET /api/renders/JOB for its
// progress. When it is done the review compares the take's raw picture with the new version.

import { errorText } from "./controls.js";

const POLL_MS = 500;

export class RenderForm {
  /**
   * @param {Document} doc
   * @param {object} opts  identities(): [{id, display_name, runnable}] (the identity picker's);
   *   done(take id, version): the render finished
   */
  constructor(doc, { identities, done }) {
    this.doc = doc;
    this.identities = identities;
    this.done = done;
    this.panel = doc.getElementById("render"); // docked beside or under the picture (dock.js)
    this.form = doc.getElementById("render-form");
    this.button = doc.getElementById("t-render");
    this.el = (id) => doc.getElementById(id);
    this.take = null; // the take reviewed: {id, versions, …}
    this.job = null;
    this.button.addEventListener("click", (event) => {
      event.currentTarget.blur();
      this.toggle();
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.start();
    });
    this.el("rr-cancel").addEventListener("click", () => this.toggle(false));
    const blend = this.el("rr-blend");
    blend.addEventListener("input", () => (this.el("rr-blend-value").textContent = `${Math.round(blend.value * 100)}%`));
  }

  /** The take under review changed (null: back to live). */
  reviewing(take, look) {
    this.take = take;
    if (!take) {
      this.toggle(false);
      return;
    }
    this.look = look ?? {};
  }

  toggle(open = this.panel.hidden) {
    if (open && !this.take) return;
    this.panel.hidden = !open;
    this.button.setAttribute("aria-expanded", String(open));
    if (open) this.fillForm();
  }

  fillForm() {
    const look = this.look ?? {};
    const select = this.el("rr-identity");
    const current = look.identity ?? this.take?.identity?.id ?? "";
    const items = this.identities().filter((i) => i.runnable);
    select.replaceChildren(
      new Option(`As recorded${current ? ` (${current})` : ""}`, ""),
      ...items.map((i) => new Option(i.display_name ? `${i.display_name} (${i.id})` : i.id, i.id)),
    );
    this.el("rr-age").value = Number.isFinite(look.age) ? String(look.age) : "";
    const blend = Number.isFinite(look.blend) ? look.blend : 1;
    this.el("rr-blend").value = String(blend);
    this.el("rr-blend-value").textContent = `${Math.round(blend * 100)}%`;
    this.el("rr-colour").value = "";
    this.el("rr-aimark").checked = look.ai_mark !== false;
  }

  /** The settings the form asks for (only what differs from the take as recorded). */
  settings() {
    const look = this.look ?? {};
    const out = {};
    const identity = this.el("rr-identity").value;
    if (identity) out.identity = identity;
    const age = this.el("rr-age").value.trim();
    const recordedAge = Number.isFinite(look.age) ? String(look.age) : "";
    if (age !== recordedAge) out.age = age === "" ? null : Number(age); // null: the identity's own
    const blend = Number(this.el("rr-blend").value);
    if (blend !== (Number.isFinite(look.blend) ? look.blend : 1)) out.blend = blend;
    const colour = this.el("rr-colour").value;
    if (colour) out.color_transfer = colour;
    const mark = this.el("rr-aimark").checked;
    if (mark !== (look.ai_mark !== false)) out.ai_mark = mark;
    return out;
  }

  say(text) {
    this.el("rr-status").textContent = text;
  }

  async start() {
    if (!this.take || this.job) return;
    const take = this.take;
    this.say("Starting…");
    this.el("rr-go").disabled = true;
    try {
      const res = await fetch(`/api/takes/${encodeURIComponent(take.id)}/render`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ settings: this.settings() }),
      });
      const body = await res.json().catch(() => null);
      if (!res.ok) throw new Error(errorText(body) || `the server refused (${res.status})`);
      this.job = body;
      this.follow(take.id, body.id);
    } catch (err) {
      this.say(`Re-render refused: ${err.message ?? err}`);
      this.el("rr-go").disabled = false;
    }
  }

  async follow(takeId, jobId) {
    try {
      const res = await fetch(`/api/renders/${encodeURIComponent(jobId)}`, { cache: "no-store" });
      const job = await res.json().catch(() => null);
      if (!res.ok || !job) throw new Error(errorText(job) || `the server answered ${res.status}`);
      this.job = job;
      if (job.state === "running") {
        const pct = job.total ? Math.floor((100 * job.done) / job.total) : 0;
        this.say(`Rendering… ${job.done} / ${job.total} frames (${pct}%)`);
        this.button.textContent = `Re-render ${pct}%`;
        setTimeout(() => this.follow(takeId, jobId), POLL_MS);
        return;
      }
      this.finish(takeId, job);
    } catch (err) {
      this.say(`Lost the re-render: ${err.message ?? err}`);
      this.finish(takeId, null);
    }
  }

  finish(takeId, job) {
    this.job = null;
    this.el("rr-go").disabled = false;
    this.button.textContent = "Re-render…";
    if (job?.state === "complete" && job.version) {
      this.say(`${job.version.toUpperCase()} rendered (${job.done} frames)`);
      this.done(takeId, job.version);
    } else if (job) {
      this.say(`Re-render failed: ${job.error ?? job.state}`);
    }
  }
}
