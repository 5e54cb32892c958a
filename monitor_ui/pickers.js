// The identity and preset pickers of the operator panel. The identity picker lists the
// installed packages (GET /api/identities) and switches with a control change {"identity": id};
// the preset picker lists saved presets (GET /api/presets), applies one
// (POST /api/presets/NAME/apply) and saves what runs live now under a name (POST /api/presets).

import { errorText } from "./controls.js";
import { elements } from "./dom.js";

async function getJson(url) {
  const res = await fetch(url, { cache: "no-store" });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(errorText(body) || `the server answered ${res.status}`);
  return body;
}

async function postJson(url, body) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const reply = await res.json().catch(() => null);
  if (!res.ok) throw new Error(errorText(reply) || `the server refused (${res.status})`);
  return reply;
}

const withCamera = (path, camera) => (camera ? `${path}?camera=${encodeURIComponent(camera)}` : path);

/** Options of a <select> from [{value, text, disabled, title}], keeping the chosen value. */
function fill(select, items, chosen) {
  select.replaceChildren(
    ...items.map((it) => {
      const o = new Option(it.text, it.value, false, it.value === chosen);
      o.disabled = Boolean(it.disabled);
      if (it.title) o.title = it.title;
      return o;
    }),
  );
  if (chosen != null) select.value = chosen;
}

export class IdentityPicker {
  /** @param {object} opts  channel: ControlChannel; say(text): the panel's message line */
  constructor(doc, { channel, say }) {
    this.channel = channel;
    this.say = say;
    this.select = doc.getElementById("c-identity");
    this.note = doc.getElementById("c-identity-note");
    this.identities = [];
    this.active = null; // the identity running now (the status says)
    this.wanted = null; // asked for, not yet running
    this.select.addEventListener("change", () => this.pick(this.select.value));
  }

  async load() {
    try {
      const body = await getJson(withCamera("/api/identities", this.channel.camera));
      this.identities = body.identities ?? [];
      this.active = body.active ?? this.active;
      this.render();
    } catch (err) {
      this.say(`Cannot list identities: ${err.message ?? err}`);
    }
  }

  render() {
    const items = this.identities.map((i) => ({
      value: i.id,
      text: `${i.display_name}${i.age_label ? ` · ${i.age_label}` : ""}${i.runnable ? "" : " (blocked)"}`,
      disabled: !i.runnable,
      title: i.problem || `${i.id} · ${i.actor} · ${i.purpose}`,
    }));
    if (this.active && !items.some((i) => i.value === this.active)) {
      items.unshift({ value: this.active, text: this.active, title: "running (not in the identities folder)" });
    }
    if (this.select.ownerDocument.activeElement !== this.select) fill(this.select, items, this.wanted ?? this.active);
    this.note.textContent = this.wanted ? `Loading ${this.wanted}…` : "";
  }

  pick(id) {
    if (!id || id === this.active) return;
    this.wanted = id;
    this.say("");
    this.render();
    this.channel.set({ identity: id });
  }

  /** Mirror the status: the identity that runs (a switch shows here once it has loaded). */
  reflect(status) {
    const id = status.identity?.id ?? null;
    if (id === this.active && !this.wanted) return;
    this.active = id;
    if (this.wanted === id) this.wanted = null;
    this.render();
  }

  /** The server refused a change: an identity asked for is not coming. */
  refused() {
    if (!this.wanted) return;
    this.wanted = null;
    this.render();
  }
}

export class PresetPicker {
  /** @param {object} opts  channel: ControlChannel (its camera); say(text); applied(status) */
  constructor(doc, { channel, say, applied }) {
    this.channel = channel;
    this.say = say;
    this.applied = applied;
    Object.assign(
      this,
      elements(doc, {
        select: "c-preset",
        applyButton: "c-preset-apply",
        name: "c-preset-name",
        saveButton: "c-preset-save",
      }),
    );
    this.presets = [];
    this.active = null;
    this.applyButton.addEventListener("click", () => this.apply(this.select.value));
    this.saveButton.addEventListener("click", () => this.save(this.name.value.trim()));
  }

  async load() {
    try {
      const body = await getJson(withCamera("/api/presets", this.channel.camera));
      this.presets = body.presets ?? [];
      this.active = body.active ?? null;
      this.render();
    } catch (err) {
      this.say(`Cannot list presets: ${err.message ?? err}`);
    }
  }

  render() {
    const describe = (p) => {
      const bits = [p.identity, p.age != null ? `age ${p.age}` : null, p.blend != null ? `blend ${p.blend}` : null];
      const what = bits.filter(Boolean).join(" · ");
      return `${p.name}${what ? ` — ${what}` : ""}`;
    };
    const items = this.presets.map((p) => ({ value: p.name, text: describe(p) }));
    if (!items.length) items.push({ value: "", text: "No presets saved", disabled: true });
    fill(this.select, items, this.active ?? items[0].value);
    this.applyButton.disabled = !this.presets.length;
  }

  async apply(name) {
    if (!name) return;
    this.say("");
    try {
      const status = await postJson(withCamera(`/api/presets/${encodeURIComponent(name)}/apply`, this.channel.camera));
      this.active = name;
      this.applied(status);
      this.render();
    } catch (err) {
      this.say(`Preset ${name}: ${err.message ?? err}`);
    }
  }

  async save(name) {
    if (!name) {
      this.say("Name the preset first");
      return;
    }
    this.say("");
    try {
      await postJson(withCamera("/api/presets", this.channel.camera), { name });
      this.name.value = "";
      await this.load();
      this.select.value = name;
    } catch (err) {
      this.say(`Preset ${name}: ${err.message ?? err}`);
    }
  }

  reflect(status) {
    if (typeof status.preset === "string" && status.preset !== this.active) {
      this.active = status.preset;
      this.render();
    }
  }
}
