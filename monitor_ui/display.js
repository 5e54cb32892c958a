// One window's picture: the canvas, how a view crops the raw | aged picture into it, the wipe,
// the frame guides and the status bars. Every window (main and second screen) has one; the
// main window paints decoded pictures into all of them in the same task.

import { halves } from "./protocol.js";

export const VIEWS = ["side-by-side", "raw", "aged", "wipe"];

const FX_TEXT = {
  on: ["FX ON", "ok"],
  "no face": ["NO FACE", "muted"],
  bypass: ["FX OFF · BYPASS", "warn"],
  error: ["FX ERROR", "bad"],
  "no signal": ["FX —", "muted"],
  unknown: ["FX —", "muted"],
};
const STATE_TEXT = {
  connecting: ["CONNECTING", "muted"],
  live: ["LIVE", "ok"],
  reconnecting: ["RECONNECTING", "warn"],
  "no signal": ["NO SIGNAL", "bad"],
  "main closed": ["MAIN WINDOW CLOSED", "bad"],
  "signed out": ["SIGNED OUT", "bad"],
  review: ["REVIEW", "review"],
};

const $ = (root, sel) => root.querySelector(sel);

function fmtMs(value) {
  return Number.isFinite(value) ? `${Math.round(value)}` : "–";
}

/** The crop(s) a view draws: [{src rect, dst x offset}], and the canvas size. */
export function planView(view, layout, width, height, split) {
  const h = halves(layout, width, height);
  const full = { x: 0, y: 0, w: width, h: height };
  const only = h.raw ?? h.aged ?? full;
  if (view === "side-by-side" || (!h.raw && !h.aged)) {
    const regions = h.raw && h.aged ? [h.raw, h.aged] : [full];
    return { w: width, h: height, parts: [{ src: full, dx: 0 }], regions, missing: null };
  }
  if (view === "raw" || view === "aged") {
    const rect = h[view];
    return {
      w: (rect ?? only).w,
      h: (rect ?? only).h,
      parts: [{ src: rect ?? only, dx: 0 }],
      regions: [{ x: 0, y: 0, w: (rect ?? only).w, h: (rect ?? only).h }],
      missing: rect ? null : view,
    };
  }
  // wipe: raw left of the split line, aged right of it (both the same size by construction)
  if (!h.raw || !h.aged) {
    return {
      w: only.w,
      h: only.h,
      parts: [{ src: only, dx: 0 }],
      regions: [{ x: 0, y: 0, w: only.w, h: only.h }],
      missing: h.raw ? "aged" : "raw",
    };
  }
  const cut = Math.round(Math.min(1, Math.max(0, split)) * h.raw.w);
  const parts = [];
  if (cut > 0) parts.push({ src: { ...h.raw, w: cut }, dx: 0 });
  if (cut < h.aged.w) parts.push({ src: { ...h.aged, x: h.aged.x + cut, w: h.aged.w - cut }, dx: cut });
  return { w: h.raw.w, h: h.raw.h, parts, regions: [{ x: 0, y: 0, w: h.raw.w, h: h.raw.h }], missing: null };
}

export class Display {
  constructor(win, { view = "side-by-side", role = "main" } = {}) {
    this.win = win;
    this.doc = win.document;
    this.role = role;
    this.view = VIEWS.includes(view) ? view : "side-by-side";
    this.split = 0.5;
    this.guides = { on: false, safe: true, m239: true, m185: false };
    this.lastPainted = { index: -1, at: 0 };
    this.painted = 0;
    this.plan = null;
    this.model = {};
    this.layout = "side-by-side";
    this.names = { raw: "RAW", aged: "AGED" }; // what the two halves are (a review: V1, V2 …)
    this.source = { w: 0, h: 0 };
    this.listeners = new Set(); // called with the display after a view/guides change
    const d = this.doc;
    this.stage = $(d, "#stage");
    this.picture = $(d, "#picture");
    this.canvas = $(d, "#video");
    this.ctx = this.canvas.getContext("2d", { alpha: false, desynchronized: true });
    this.guideCanvas = $(d, "#guides");
    this.labels = [$(d, "#label-a"), $(d, "#label-b")];
    this.wipeLine = $(d, "#wipe-line");
    this.notice = $(d, "#notice");
    this.ctx.fillStyle = "#000";
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    new win.ResizeObserver(() => this.fit()).observe(this.stage);
    this.bindWipe();
    this.fit();
    this.applyView();
  }

  alive() {
    try {
      return !this.win.closed && this.win.document === this.doc;
    } catch {
      return false;
    }
  }

  onChange(fn) {
    this.listeners.add(fn);
  }

  changed() {
    for (const fn of this.listeners) fn(this);
  }

  // --- views ------------------------------------------------------------------------------

  setView(view) {
    if (!VIEWS.includes(view)) return;
    this.view = view;
    this.applyView();
    this.changed();
  }

  /** A/B: flip raw ↔ aged full frame (from a two-picture view, show aged first). */
  toggleAB() {
    this.setView(this.view === "aged" ? "raw" : "aged");
  }

  setSplit(split) {
    this.split = Math.min(1, Math.max(0, split));
    this.applyView();
  }

  setGuides(patch) {
    Object.assign(this.guides, patch);
    this.drawGuides();
    this.changed();
  }

  applyView() {
    this.doc.body.dataset.view = this.view;
    if (this.source.w) this.replan();
    this.placeLabels();
    this.drawGuides();
    if (this.kept) this.draw(this.kept, this.keptMeta); // paused review: no next picture comes
  }

  /** Keep a copy of each picture (reviewing a take: it may sit paused on one frame), so a view
   * change or a wipe drag redraws it; live pictures replace themselves 30 times a second. */
  keepPictures(on) {
    this.keep = on;
    if (!on) this.kept = this.keptMeta = null;
  }

  replan() {
    const plan = planView(this.view, this.layout, this.source.w, this.source.h, this.split);
    const resized = !this.plan || plan.w !== this.plan.w || plan.h !== this.plan.h;
    this.plan = plan;
    if (resized) {
      this.canvas.width = plan.w;
      this.canvas.height = plan.h;
      this.fit();
    }
    return resized;
  }

  // --- painting ---------------------------------------------------------------------------

  /** Draw one decoded picture (VideoFrame or ImageBitmap) now; `at` is the painter's clock. */
  paint(source, meta, at) {
    const w = source.displayWidth ?? source.width;
    const h = source.displayHeight ?? source.height;
    if (w !== this.source.w || h !== this.source.h || meta.layout !== this.layout) {
      this.source = { w, h };
      this.layout = meta.layout;
      this.replan();
      this.placeLabels();
      this.drawGuides();
    } else if (!this.plan) {
      this.replan();
    }
    this.draw(source, meta);
    this.painted += 1;
    this.lastPainted = { index: meta.index, at };
    if (this.keep) {
      this.kept ??= this.doc.createElement("canvas");
      if (this.kept.width !== w || this.kept.height !== h) Object.assign(this.kept, { width: w, height: h });
      this.kept.getContext("2d").drawImage(source, 0, 0);
      this.keptMeta = meta;
    }
  }

  draw(source, meta) {
    if (!this.plan || meta.layout !== this.layout) return;
    const ctx = this.ctx;
    for (const { src, dx } of this.plan.parts) {
      ctx.drawImage(source, src.x, src.y, src.w, src.h, dx, 0, src.w, src.h);
    }
  }

  // --- geometry ---------------------------------------------------------------------------

  fit() {
    const sw = this.stage.clientWidth;
    const sh = this.stage.clientHeight;
    const cw = this.canvas.width || 16;
    const ch = this.canvas.height || 9;
    if (!sw || !sh) return;
    const scale = Math.min(sw / cw, sh / ch);
    const w = Math.max(1, Math.floor(cw * scale));
    const h = Math.max(1, Math.floor(ch * scale));
    Object.assign(this.picture.style, {
      width: `${w}px`,
      height: `${h}px`,
      left: `${Math.floor((sw - w) / 2)}px`,
      top: `${Math.floor((sh - h) / 2)}px`,
    });
    const dpr = this.win.devicePixelRatio || 1;
    this.guideCanvas.width = Math.round(w * dpr);
    this.guideCanvas.height = Math.round(h * dpr);
    this.drawGuides();
  }

  placeLabels() {
    const [a, b] = this.labels;
    const plan = this.plan;
    const twoUp = plan && plan.regions.length === 2;
    const missing = plan?.missing;
    const names = this.names;
    const layoutName = this.layout === "raw" ? names.raw : names.aged;
    a.hidden = b.hidden = false;
    a.classList.remove("right");
    b.classList.add("right");
    if (this.view === "side-by-side") {
      if (twoUp) {
        a.textContent = names.raw;
        b.textContent = names.aged;
        a.style.left = "1.2%";
        b.style.left = "51.2%";
        b.classList.remove("right");
      } else {
        a.textContent = this.source.w ? `${layoutName} ONLY` : "";
        a.style.left = "1.2%";
        b.hidden = true;
      }
    } else if (this.view === "wipe" && !missing) {
      a.textContent = names.raw;
      b.textContent = names.aged;
      a.style.left = "1.2%";
      b.style.left = "auto";
    } else {
      const shown = missing ? layoutName : names[this.view];
      a.textContent = missing ? `${shown} · ${missing.toUpperCase()} NOT IN STREAM` : shown;
      a.style.left = "1.2%";
      b.hidden = true;
    }
    a.classList.toggle("alert", Boolean(missing));
    this.wipeLine.hidden = this.view !== "wipe" || Boolean(missing);
    this.wipeLine.style.left = `${(this.split * 100).toFixed(3)}%`;
  }

  bindWipe() {
    let dragging = false;
    const move = (event) => {
      const r = this.picture.getBoundingClientRect();
      if (r.width > 0) this.setSplit((event.clientX - r.left) / r.width);
    };
    this.picture.addEventListener("pointerdown", (event) => {
      if (this.view !== "wipe" || event.button > 0) return;
      dragging = true;
      this.picture.setPointerCapture(event.pointerId);
      move(event);
      event.preventDefault();
    });
    this.picture.addEventListener("pointermove", (event) => dragging && move(event));
    const stop = () => {
      dragging = false;
    };
    this.picture.addEventListener("pointerup", stop);
    this.picture.addEventListener("pointercancel", stop);
  }

  // --- frame guides -----------------------------------------------------------------------

  drawGuides() {
    const gc = this.guideCanvas;
    const ctx = gc.getContext("2d");
    ctx.clearRect(0, 0, gc.width, gc.height);
    gc.hidden = !this.guides.on;
    if (!this.guides.on || !this.plan) return;
    const sx = gc.width / this.plan.w;
    const sy = gc.height / this.plan.h;
    const px = this.win.devicePixelRatio || 1;
    for (const region of this.plan.regions) {
      const r = { x: region.x * sx, y: region.y * sy, w: region.w * sx, h: region.h * sy };
      this.drawRegionGuides(ctx, r, px);
    }
  }

  drawRegionGuides(ctx, r, px) {
    const g = this.guides;
    const aspect = r.w / r.h;
    const matte = (ratio) => {
      // the largest ratio-shaped rectangle centred in r
      if (ratio >= aspect) {
        const h = r.w / ratio;
        return { x: r.x, y: r.y + (r.h - h) / 2, w: r.w, h };
      }
      const w = r.h * ratio;
      return { x: r.x + (r.w - w) / 2, y: r.y, w, h: r.h };
    };
    const mattes = [];
    if (g.m239) mattes.push({ ratio: 2.39, colour: "rgba(255, 196, 92, 0.85)", text: "2.39" });
    if (g.m185) mattes.push({ ratio: 1.85, colour: "rgba(120, 200, 255, 0.85)", text: "1.85" });
    // Shade outside the widest active matte, as the frame will be cropped there.
    if (mattes.length) {
      const m = matte(Math.max(...mattes.map((x) => x.ratio)));
      ctx.fillStyle = "rgba(0, 0, 0, 0.45)";
      ctx.fillRect(r.x, r.y, r.w, m.y - r.y);
      ctx.fillRect(r.x, m.y + m.h, r.w, r.y + r.h - (m.y + m.h));
      ctx.fillRect(r.x, m.y, m.x - r.x, m.h);
      ctx.fillRect(m.x + m.w, m.y, r.x + r.w - (m.x + m.w), m.h);
    }
    ctx.lineWidth = Math.max(1, px);
    ctx.font = `${Math.round(11 * px)}px system-ui, sans-serif`;
    ctx.textBaseline = "bottom";
    for (const { ratio, colour, text } of mattes) {
      const m = matte(ratio);
      ctx.strokeStyle = colour;
      ctx.setLineDash([]);
      ctx.strokeRect(m.x + 0.5, m.y + 0.5, m.w - 1, m.h - 1);
      ctx.fillStyle = colour;
      ctx.fillText(text, m.x + m.w - 34 * px, m.y - 3 * px > r.y + 12 * px ? m.y - 3 * px : m.y + 15 * px);
    }
    if (g.safe) {
      const inset = (f) => ({ x: r.x + (r.w * (1 - f)) / 2, y: r.y + (r.h * (1 - f)) / 2, w: r.w * f, h: r.h * f });
      const action = inset(0.93);
      const title = inset(0.9);
      ctx.strokeStyle = "rgba(255, 255, 255, 0.5)";
      ctx.setLineDash([6 * px, 5 * px]);
      ctx.strokeRect(action.x, action.y, action.w, action.h);
      ctx.setLineDash([]);
      ctx.strokeStyle = "rgba(255, 255, 255, 0.65)";
      ctx.strokeRect(title.x, title.y, title.w, title.h);
      // centre cross
      const cx = r.x + r.w / 2;
      const cy = r.y + r.h / 2;
      const s = 10 * px;
      ctx.beginPath();
      ctx.moveTo(cx - s, cy);
      ctx.lineTo(cx + s, cy);
      ctx.moveTo(cx, cy - s);
      ctx.lineTo(cx, cy + s);
      ctx.stroke();
    }
  }

  // --- status bars ------------------------------------------------------------------------

  /** Show the status model (same for every window); cheap enough to call a few times a second. */
  update(model) {
    this.model = model;
    const d = this.doc;
    const set = (sel, text) => {
      const el = $(d, sel);
      if (el && el.textContent !== text) el.textContent = text;
    };
    const badge = (sel, [text, tone]) => {
      const el = $(d, sel);
      if (!el) return;
      if (el.textContent !== text) el.textContent = text;
      if (el.dataset.tone !== tone) el.dataset.tone = tone;
    };
    const id = model.identity || {};
    set("#identity-name", id.display_name || id.id || "No identity");
    set("#identity-age", id.age_label || "");
    $(d, "#identity-age").hidden = !id.age_label;
    set("#identity-actor", id.actor && id.actor !== "none" ? id.actor : "");
    badge("#fx-badge", FX_TEXT[model.fx] || FX_TEXT.unknown);
    const review = model.state === "review" && model.review;
    badge("#state-badge", review ? [model.review, "review"] : STATE_TEXT[model.state] || STATE_TEXT.connecting);
    if (Boolean(model.review) !== Boolean(this.keep)) this.keepPictures(Boolean(model.review));
    const names = model.names || { raw: "RAW", aged: "AGED" };
    if (names.raw !== this.names.raw || names.aged !== this.names.aged) {
      this.names = { raw: names.raw, aged: names.aged };
      this.placeLabels();
    }
    set("#m-fps", Number.isFinite(model.fps) ? model.fps.toFixed(1) : "–");
    set("#m-g2g", `${fmtMs(model.glass?.p50)} / ${fmtMs(model.glass?.p95)}`);
    set("#m-server", fmtMs(model.serverLatency?.p50));
    set("#m-viewers", model.viewers == null ? "–" : String(model.viewers));
    set("#m-frame", model.index >= 0 ? String(model.index).padStart(6, "0") : "–");
    set("#m-format", model.format || "–");
    d.body.dataset.state = model.state;
    d.body.dataset.fx = model.fx || "";
    // A revoked viewer keeps nothing on screen: not even the last frame.
    this.canvas.style.visibility = model.state === "signed out" ? "hidden" : "";
    const notice = STATE_NOTICE[model.state];
    this.notice.hidden = !notice;
    if (notice) {
      set("#notice-title", notice[0]);
      set("#notice-detail", typeof notice[1] === "function" ? notice[1](model) : notice[1]);
    }
  }
}

const STATE_NOTICE = {
  connecting: ["CONNECTING", "Waiting for the agecast server"],
  reconnecting: ["RECONNECTING", "The agecast server is not answering — retrying"],
  "no signal": ["NO SIGNAL", (m) => (m.sourceUri ? `No pictures from ${m.sourceUri}` : "No pictures from the camera")],
  "main closed": ["MAIN WINDOW CLOSED", "Continuing on this screen alone in a moment"],
  "signed out": ["SIGNED OUT", "This link has expired or was revoked — ask the operator for a new one"],
};
