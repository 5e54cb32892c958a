// Name tags over the faces of the aged picture: an operator's tool, off by default, this
// browser's own choice (prefs.js). With a cast the server sends, beside the pictures, each
// picture's faces ({"type": "faces", "i": frame index, "layout", "faces": [{box, name, state}]},
// boxes as fractions of the camera frame). The tags of the picture just painted (found by its
// frame index) are DOM elements over the canvas: never drawn into the picture, so never into a
// screenshot of the canvas, a recording or the second screen.

import { savePref } from "./prefs.js";
import { halves } from "./protocol.js";

const KEEP = 32; // faces messages kept, by frame index
const STALE = 30; // frames: faces older than this behind the painted picture are not shown
const TOP_ROOM = 0.07; // a face this close to the picture's top gets its tag inside its box
export const TAGS_PREF = "nameTags";

const NOTHING = { index: -1, faces: null, tags: [] };
const TEXT = { unknown: "unknown", ambiguous: "ambiguous", pending: "…" };

/** A face's tag text: the member's name, or what is not known about it. */
export const tagText = (face) => (face.state === "recognised" && face.name ? face.name : (TEXT[face.state] ?? "…"));

const inside = (r, x, y) => x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h;
const contains = (outer, r) => r.x >= outer.x && r.y >= outer.y && r.x + r.w <= outer.x + outer.w && r.y + r.h <= outer.y + outer.h;

/**
 * Where the faces of one faces message show in a view: `plan` is the Display's (display.js
 * planView) for a `width`×`height` stream picture. Boxes come back in canvas pixels, clipped to
 * the part of the canvas that shows the aged picture; a face whose centre the view does not show
 * on the aged side (a raw-only view, the raw side of a wipe, cropped away) gets none.
 */
export function placeTags(plan, { layout, faces }, width, height) {
  const aged = layout === "raw" || !plan ? null : halves(layout, width, height).aged;
  if (!aged || !Array.isArray(faces)) return [];
  const placed = [];
  for (const face of faces) {
    const [x0, y0, x1, y1] = (face.box ?? []).map(Number);
    if (![x0, y0, x1, y1].every(Number.isFinite)) continue;
    const sx = (f) => aged.x + f * aged.w; // camera-frame fraction → stream-picture pixels
    const sy = (f) => aged.y + f * aged.h;
    const cx = sx((x0 + x1) / 2);
    const cy = sy((y0 + y1) / 2);
    const part = plan.parts.find(({ src }) => contains(aged, src) && inside(src, cx, cy));
    if (!part) continue;
    const { src, dx, dy } = part;
    const x = (v) => dx + Math.min(Math.max(v - src.x, 0), src.w);
    const y = (v) => dy + Math.min(Math.max(v - src.y, 0), src.h);
    placed.push({
      x0: x(sx(x0)),
      y0: y(sy(y0)),
      x1: x(sx(x1)),
      y1: y(sy(y1)),
      name: face.name ?? null,
      state: String(face.state ?? "pending"),
      text: tagText(face),
    });
  }
  return placed;
}

export class NameTags {
  /** @param display  the main window's Display (its #tags layer, plan and picture size) */
  constructor(display, { on = false } = {}) {
    this.display = display;
    this.layer = display.doc.getElementById("tags");
    this.records = new Map(); // frame index → faces message
    this.on = Boolean(on);
    this.allowed = true; // false for a view-only link: tags are an operator's tool
    this.shown = NOTHING; // what is tagged now: the picture's index, its faces message's, the tags
    this.layer.hidden = true;
  }

  /** Keep a faces message until KEEP newer ones came. */
  add(msg) {
    if (!Number.isInteger(msg.i) || !Array.isArray(msg.faces)) throw new Error("faces message without i or faces");
    this.records.set(msg.i, msg);
    while (this.records.size > KEEP) this.records.delete(this.records.keys().next().value);
  }

  /** The faces of picture `index`: its own message, else the newest before it (not too old). */
  recordFor(index) {
    const exact = this.records.get(index);
    if (exact) return exact;
    let best = null;
    for (const [i, rec] of this.records) {
      if (i <= index && index - i <= STALE && (!best || i > best.i)) best = rec;
    }
    return best;
  }

  setOn(on) {
    this.on = Boolean(on);
    savePref(TAGS_PREF, this.on);
    if (!this.visible) this.render([]);
  }

  get visible() {
    return this.on && this.allowed;
  }

  /** Tag the picture just painted (`meta`: its header); called in the same task as the paint. */
  show(meta) {
    if (!this.visible) {
      if (!this.layer.hidden) this.render([]);
      return;
    }
    const d = this.display;
    const rec = this.recordFor(meta.index);
    const placed = rec && d.plan ? placeTags(d.plan, rec, d.source.w, d.source.h) : [];
    this.render(placed);
    this.shown = { index: meta.index, faces: rec ? rec.i : null, tags: placed };
  }

  /** Forget every face (another camera, a review): nothing is tagged until new faces come. */
  clear() {
    this.records.clear();
    this.render([]);
  }

  render(placed) {
    const layer = this.layer;
    layer.hidden = !placed.length;
    if (!placed.length) this.shown = NOTHING;
    const plan = this.display.plan;
    while (layer.children.length < placed.length) layer.append(makeTag(layer.ownerDocument));
    [...layer.children].forEach((el, k) => {
      const t = placed[k];
      el.hidden = !t;
      if (!t) return;
      const pct = (v, of) => `${((v / of) * 100).toFixed(3)}%`;
      Object.assign(el.style, {
        left: pct(t.x0, plan.w),
        top: pct(t.y0, plan.h),
        width: pct(t.x1 - t.x0, plan.w),
        height: pct(t.y1 - t.y0, plan.h),
      });
      if (el.dataset.state !== t.state) el.dataset.state = t.state;
      const inside = String(t.y0 / plan.h < TOP_ROOM);
      if (el.dataset.inside !== inside) el.dataset.inside = inside;
      const label = el.firstElementChild;
      if (label.textContent !== t.text) label.textContent = t.text;
    });
  }
}

function makeTag(doc) {
  const el = doc.createElement("div");
  el.className = "tag";
  const label = doc.createElement("span");
  label.className = "tag-label";
  el.append(label);
  return el;
}
