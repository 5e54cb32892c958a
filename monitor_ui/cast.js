// The cast in the operator panel (shown only while the server runs one): a row per member —
// name, whether they are in the picture, identity, age, blend, bypass — and the "Name tags"
// toggle (tags.js draws them). Each change is sent for that member alone:
// {"members": {NAME: {"age": 40}}}; the rows always show the server's status, as every viewer
// sees it.

import { bindSlider } from "./controls.js";
import { elements } from "./dom.js";

const AGE_RESTS = 50; // the slider's place for a member who keeps the identity's own age
const SAID_FOR_MS = 3000; // a refusal this soon after a cast change is about that change

const pct = (v) => `${Math.round(v * 100)}%`;

/** An element with a class, attributes and children. */
function el(doc, tag, className, attrs = {}, children = []) {
  const node = doc.createElement(tag);
  if (className) node.className = className;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

export class CastPanel {
  /**
   * @param {object} opts  channel: ControlChannel; identities(): the installed identities
   *   (IdentityPicker.identities); tags: NameTags, whose toggle sits in the cast card
   */
  constructor(doc, { channel, identities, tags }) {
    this.doc = doc;
    this.channel = channel;
    this.identities = identities;
    this.tags = tags;
    Object.assign(
      this,
      elements(doc, { card: "cast", list: "cast-members", message: "cast-message", tagsButton: "cast-tags" }),
    );
    this.rows = new Map(); // member name → its row's elements
    this.editing = new Set(); // inputs in the operator's hand: the server's echo leaves them
    this.sentPerf = -Infinity;
    this.tagsButton.addEventListener("click", () => {
      tags.setOn(!tags.on);
      this.showTagsButton();
    });
    this.showTagsButton();
  }

  showTagsButton() {
    const on = this.tags.on;
    this.tagsButton.setAttribute("aria-pressed", String(on));
    this.tagsButton.textContent = on ? "Name tags ON" : "Name tags OFF";
  }

  send(name, change) {
    this.message.textContent = "";
    this.sentPerf = performance.now();
    return this.channel.set({ members: { [name]: change } });
  }

  /** The server refused a change: say it here too when it was likely the cast's. */
  refused(text) {
    if (performance.now() - this.sentPerf < SAID_FOR_MS) this.message.textContent = text;
  }

  /** Mirror the server's status: rows for the cast's members, or no card without a cast. */
  reflect(status) {
    const cast = status.cast ?? null;
    this.card.hidden = !cast;
    const members = Array.isArray(cast?.members) ? cast.members : [];
    const names = members.map((m) => String(m.name));
    if (names.join("\n") !== [...this.rows.keys()].join("\n")) this.build(names);
    for (const m of members) this.update(this.rows.get(String(m.name)), m, status.look ?? {});
  }

  build(names) {
    this.rows.clear();
    this.list.replaceChildren(...names.map((name, k) => this.row(name, k)));
  }

  /** Member `name`'s row, the `k`th (names may hold spaces and quotes: ids go by place). */
  row(name, k) {
    const d = this.doc;
    const id = (what) => `cast-${k}-${what}`;
    const r = {
      dot: el(d, "span", "dot", { "aria-hidden": "true" }),
      where: el(d, "span", "member-where"),
      bypass: el(d, "button", "toggle member-bypass", { type: "button", "aria-pressed": "false" }),
      identity: el(d, "select", "member-identity", { id: id("identity") }),
      age: el(d, "input", "member-age", { id: id("age"), type: "range", min: "0", max: "100", step: "1" }),
      ageNumber: el(d, "input", "member-age-number", {
        type: "number",
        min: "0",
        max: "130",
        step: "1",
        placeholder: "own",
        "aria-label": `${name}'s age`,
      }),
      blend: el(d, "input", "member-blend", { id: id("blend"), type: "range", min: "0", max: "1", step: "0.01" }),
      blendValue: el(d, "output", "", { for: id("blend") }),
      identityKey: "",
    };
    r.bypass.addEventListener("click", () => this.send(name, { bypass: r.bypass.getAttribute("aria-pressed") !== "true" }));
    r.identity.addEventListener("change", () => this.send(name, { identity: r.identity.value }));
    bindSlider(r.age, {
      editing: this.editing,
      show: (v) => (r.ageNumber.value = String(v)),
      send: () => this.send(name, { age: Number(r.age.value) }),
    });
    r.ageNumber.addEventListener("change", () => {
      const years = Number(r.ageNumber.value);
      if (r.ageNumber.value === "" || !(years >= 0 && years <= 130)) {
        this.message.textContent = `${name}: an age from 0 to 130 years`;
        return;
      }
      r.age.value = String(years);
      this.send(name, { age: years });
    });
    bindSlider(r.blend, {
      editing: this.editing,
      show: (v) => (r.blendValue.textContent = pct(v)),
      send: () => this.send(name, { blend: Number(r.blend.value) }),
    });
    this.rows.set(name, r);
    return el(d, "li", "member", { "data-member": name }, [
      el(d, "div", "member-head", {}, [r.dot, el(d, "span", "member-name", {}, [name]), r.where, r.bypass]),
      el(d, "label", "member-field", { for: id("identity") }, [el(d, "span", "", {}, ["Identity"]), r.identity]),
      el(d, "label", "member-field", { for: id("age") }, [
        el(d, "span", "", {}, ["Age"]),
        el(d, "span", "member-age-pair", {}, [r.age, r.ageNumber]),
      ]),
      el(d, "label", "member-field", { for: id("blend") }, [
        el(d, "span", "", {}, ["Blend ", r.blendValue]),
        r.blend,
      ]),
    ]);
  }

  /** One member's row from the status (inputs in the operator's hand are left alone); a member
   * without an age or blend of their own follows the look's. */
  update(r, m, look) {
    const inPicture = Boolean(m.in_picture);
    r.dot.dataset.in = String(inPicture);
    const where = inPicture ? `in picture${Number.isFinite(m.score) ? ` · ${m.score.toFixed(2)}` : ""}` : "not in picture";
    if (r.where.textContent !== where) r.where.textContent = where;
    const bypass = Boolean(m.bypass);
    r.bypass.setAttribute("aria-pressed", String(bypass));
    r.bypass.textContent = bypass ? "FX OFF" : "FX ON";
    r.bypass.dataset.tone = bypass ? "warn" : "ok";
    r.bypass.title = bypass ? `${m.name} is left as filmed; click: apply the effect` : `Leave ${m.name} as filmed`;
    this.fillIdentities(r, String(m.identity ?? ""));
    if (!this.editing.has(r.age) && this.doc.activeElement !== r.ageNumber) {
      const own = Number.isFinite(m.age);
      const years = own ? m.age : Number.isFinite(look.age) ? look.age : null;
      r.age.value = String(years ?? AGE_RESTS);
      r.ageNumber.value = years == null ? "" : String(Math.round(years));
      r.ageNumber.title = own ? `${m.name}'s own age` : "the look's age (none: the identity's own)";
    }
    const blend = Number.isFinite(m.blend) ? m.blend : look.blend;
    if (Number.isFinite(blend) && !this.editing.has(r.blend)) {
      r.blend.value = String(blend);
      const own = Number.isFinite(m.blend);
      r.blendValue.textContent = pct(blend);
      r.blendValue.dataset.follows = String(!own); // no blend of their own: the look's
      r.blendValue.title = own ? `${m.name}'s own blend` : "the look's blend";
    }
  }

  /** The identity picker: the installed identities, and the member's own if it is not one. */
  fillIdentities(r, current) {
    const installed = this.identities() ?? [];
    const key = `${current}|${installed.map((i) => `${i.id}:${i.runnable}`).join(",")}`;
    if (key === r.identityKey || this.doc.activeElement === r.identity) return;
    r.identityKey = key;
    const options = installed.map((i) => {
      const o = new Option(`${i.display_name ?? i.id}${i.age_label ? ` · ${i.age_label}` : ""}`, i.id);
      o.disabled = !i.runnable;
      o.title = i.problem || i.id;
      return o;
    });
    if (current && !installed.some((i) => i.id === current)) options.unshift(new Option(current, current));
    r.identity.replaceChildren(...options);
    r.identity.value = current;
  }
}
