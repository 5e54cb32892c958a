// One window's picture: the canvas, how a view crops the raw | aged picture into it, the wipe,
// the frame guides and the labels; its overlay (overlay.js) shows the status bars. Every window (main and second screen) has one; the
// main window paints decoded pictures into all of them in the same task.

import { LUT_SIDES, LutPainter, lutTexture } from "./lut.js";
import { Overlay } from "./overlay.js";
import { halves } from "./protocol.js";

const $ = (root, sel) => root.querySelector(sel);

export const VIEWS = ["side-by-side", "raw", "aged", "wipe", "stacked"];

const MIN_KEEP = 0.5; // a fill crops at most half of a picture's width (or height) away

/** The centre of `rect` cropped towards the aspect `target` (w / h; null: uncropped). */
export function cropTo(rect, target) {
  if (!target) return rect;
  const aspect = rect.w / rect.h;
  if (aspect > target * 1.001) {
    const w = Math.max(Math.round(rect.h * target), Math.round(rect.w * MIN_KEEP));
    return { ...rect, x: rect.x + Math.floor((rect.w - w) / 2), w };
  }
  if (aspect < target / 1.001) {
    const h = Math.max(Math.round(rect.w / target), Math.round(rect.h * MIN_KEEP));
    return { ...rect, y: rect.y + Math.floor((rect.h - h) / 2), h };
  }
  return rect;
}

/** Which pictures a view shows and how they are arranged: row, column, single or wipe. */
function arrangement(view, h) {
  const both = h.raw && h.aged;
  const one = h.raw ? ["raw", h.raw] : ["aged", h.aged];
  if (view === "side-by-side") return both ? { arrange: "row", pics: [["raw", h.raw], ["aged", h.aged]] } : { arrange: "single", pics: [one] };
  if (view === "raw" || view === "aged") {
    return h[view] ? { arrange: "single", pics: [[view, h[view]]] } : { arrange: "single", pics: [one], missing: view };
  }
  if (!both) return { arrange: "single", pics: [one], missing: h.raw ? "aged" : "raw" };
  return { arrange: view === "stacked" ? "column" : "wipe", pics: [["raw", h.raw], ["aged", h.aged]] };
}

/**
 * What a view draws from a stream picture of `layout`: the canvas size, the parts (source rect →
 * canvas offset), the region each picture fills, each picture's whole frame (for the guides:
 * a fill may crop it), where the aged picture is and which picture the stream lacks.
 * `fillAspect` (w / h of the screen area; null: fit) crops every picture's centre so that
 * the view fills that area.
 */
export function planView(view, layout, width, height, split, fillAspect = null) {
  const h = halves(layout, width, height);
  const { arrange, pics, missing = null } = arrangement(view, h);
  const per = !fillAspect ? null : arrange === "row" ? fillAspect / 2 : arrange === "column" ? fillAspect * 2 : fillAspect;
  let crops = pics.map(([, rect]) => cropTo(rect, per));
  if (arrange === "wipe") {
    // the same crop of both pictures, so the line splits one frame
    const c = crops[0];
    crops = [c, { ...c, x: h.aged.x + (c.x - h.raw.x), y: h.aged.y + (c.y - h.raw.y) }];
  }
  const [c0, c1] = crops;
  let w = c0.w;
  let ht = c0.h;
  let parts;
  let regions;
  const [s0, s1] = pics.map(([name]) => name);
  if (arrange === "row") {
    w = c0.w + c1.w;
    parts = [{ src: c0, dx: 0, dy: 0, side: s0 }, { src: c1, dx: c0.w, dy: 0, side: s1 }];
    regions = [{ x: 0, y: 0, w: c0.w, h: c0.h }, { x: c0.w, y: 0, w: c1.w, h: c1.h }];
  } else if (arrange === "column") {
    ht = c0.h + c1.h;
    parts = [{ src: c0, dx: 0, dy: 0, side: s0 }, { src: c1, dx: 0, dy: c0.h, side: s1 }];
    regions = [{ x: 0, y: 0, w: c0.w, h: c0.h }, { x: 0, y: c0.h, w: c1.w, h: c1.h }];
  } else if (arrange === "wipe") {
    const cut = Math.round(Math.min(1, Math.max(0, split)) * c0.w);
    parts = [];
    if (cut > 0) parts.push({ src: { ...c0, w: cut }, dx: 0, dy: 0, side: s0 });
    if (cut < c1.w) parts.push({ src: { ...c1, x: c1.x + cut, w: c1.w - cut }, dx: cut, dy: 0, side: s1 });
    regions = [{ x: 0, y: 0, w: c0.w, h: c0.h }];
  } else {
    parts = [{ src: c0, dx: 0, dy: 0, side: s0 }];
    regions = [{ x: 0, y: 0, w: c0.w, h: c0.h }];
  }
  const frames = regions.map((r, i) => {
    const [, rect] = pics[i];
    const c = crops[i];
    return { clip: r, full: { x: r.x - (c.x - rect.x), y: r.y - (c.y - rect.y), w: rect.w, h: rect.h } };
  });
  // The aged picture's region and whole frame (the AI mark sits in that frame's top-right).
  const agedAt = arrange === "wipe" ? 0 : pics.findIndex(([name]) => name === "aged");
  const aged = agedAt >= 0 ? regions[agedAt] : null;
  const agedCrop = agedAt >= 0 ? crops[arrange === "wipe" ? 1 : agedAt] : null;
  const agedRect = agedAt >= 0 ? pics[arrange === "wipe" ? 1 : agedAt][1] : null;
  const agedCropped = Boolean(agedCrop && (agedCrop.w < agedRect.w || agedCrop.h < agedRect.h));
  return { w, h: ht, parts, regions, frames, aged, agedCropped, missing };
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
    this.resizeListeners = new Set(); // called after the canvas changed size
    const d = this.doc;
    this.area = $(d, "#view"); // the picture's own area: the stage less the docked panels
    this.picture = $(d, "#picture");
    this.canvas = $(d, "#video");
    this.ctx = this.canvas.getContext("2d", { alpha: false, desynchronized: true });
    this.glCanvas = $(d, "#video-gl"); // the picture through a display LUT (lut.js), when on
    this.lut = { name: null, sides: "both", error: null };
    this.lutPainter = null;
    this.guideCanvas = $(d, "#guides");
    this.labels = [$(d, "#label-a"), $(d, "#label-b")];
    this.aiMark = $(d, "#ai-mark");
    this.fill = false; // crop to fill the picture area (key Z) rather than fit it whole
    this.wipeLine = $(d, "#wipe-line");
    this.overlay = new Overlay(d);
    this.ctx.fillStyle = "#000";
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    new win.ResizeObserver(() => this.fit()).observe(this.area);
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

  /** Fill: crop the pictures' centres so the view fills the screen area (off: fit whole). */
  setFill(on) {
    this.fill = Boolean(on);
    this.applyView();
    this.changed();
  }

  /** The aspect a fill crops to (the picture area's), or null when fitting whole. */
  fillAspect() {
    const sw = this.area.clientWidth;
    const sh = this.area.clientHeight;
    return this.fill && sw && sh ? sw / sh : null;
  }

  /** The view's picture size uncropped: the dock places the panels by it. */
  natural() {
    if (!this.source.w) return { w: this.canvas.width, h: this.canvas.height };
    const p = planView(this.view, this.layout, this.source.w, this.source.h, this.split);
    return { w: p.w, h: p.h };
  }

  replan() {
    this.plannedAspect = this.fillAspect();
    const plan = planView(this.view, this.layout, this.source.w, this.source.h, this.split, this.plannedAspect);
    const resized = !this.plan || plan.w !== this.plan.w || plan.h !== this.plan.h;
    this.plan = plan;
    if (resized) {
      this.canvas.width = this.glCanvas.width = plan.w;
      this.canvas.height = this.glCanvas.height = plan.h;
      this.fit();
      this.placeLabels();
      for (const fn of this.resizeListeners) fn(this);
      if (this.kept) this.draw(this.kept, this.keptMeta); // a resized canvas is blank
    }
    return resized;
  }

  // --- display LUT ------------------------------------------------------------------------

  /** View `sides` ("both", "raw" or "aged") through the server's display LUT `name` (null:
   * none). Only this window changes; a LUT that cannot load leaves the picture plain and says
   * why in `lut.error`. */
  async setLut(name, sides = this.lut.sides) {
    const side = LUT_SIDES.includes(sides) ? sides : "both";
    this.lut = { name: name || null, sides: side, error: null };
    if (this.lut.name) {
      try {
        const texels = await lutTexture(this.lut.name);
        if (this.lut.name !== name) return; // another choice came meanwhile
        this.lutPainter ??= new LutPainter(this.glCanvas);
        if (this.lutPainter.loaded !== name) this.lutPainter.load(name, texels);
      } catch (err) {
        console.warn("agecast: display LUT", err);
        this.lut = { name: null, sides: side, error: String(err?.message ?? err) };
      }
    }
    this.picture.dataset.lut = this.lutOn() ? "on" : "off";
    this.placeLabels();
    if (this.kept) this.draw(this.kept, this.keptMeta);
    this.changed();
  }

  lutOn() {
    return Boolean(this.lut.name && this.lutPainter?.loaded === this.lut.name);
  }

  /** The sides the LUT is on now ([] when off). */
  lutSides() {
    if (!this.lutOn()) return [];
    return this.lut.sides === "both" ? ["raw", "aged"] : [this.lut.sides];
  }

  /** The halves' names as labelled: a side seen through a LUT says which. */
  shownNames() {
    const names = { ...this.names };
    for (const side of this.lutSides()) names[side] = `${names[side]} · ${this.lut.name}`;
    return names;
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
    if (this.lutOn()) {
      this.lutPainter.draw(source, this.source.w, this.source.h, this.plan.parts, this.lutSides());
      return;
    }
    const ctx = this.ctx;
    for (const { src, dx, dy } of this.plan.parts) {
      ctx.drawImage(source, src.x, src.y, src.w, src.h, dx, dy, src.w, src.h);
    }
  }

  // --- geometry ---------------------------------------------------------------------------

  fit() {
    const sw = this.area.clientWidth;
    const sh = this.area.clientHeight;
    if (this.fill && this.source.w && sw && sh && Math.abs(sw / sh - (this.plannedAspect ?? 0)) > 0.003) {
      if (this.replan()) return; // the crop follows the area's shape; replan fitted it
    }
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

  /** Labels at the top-left of the region each picture fills; in a wipe the aged label goes
   * to the bottom-right, clear of the AI mark the server burns into the aged picture's top-right
   * corner (and of the raw label whatever the split). */
  placeLabels() {
    const [a, b] = this.labels;
    const plan = this.plan;
    const twoUp = plan && plan.regions.length === 2;
    const missing = plan?.missing;
    const names = this.shownNames();
    const layoutName = this.layout === "raw" ? names.raw : names.aged;
    const at = (el, where) => Object.assign(el.style, { left: "auto", right: "auto", top: "auto", bottom: "auto", ...where });
    a.hidden = b.hidden = false;
    at(a, { left: "1.2%", top: "2.2%" });
    if (twoUp) {
      a.textContent = names.raw;
      b.textContent = names.aged;
      // the second picture's top-left corner, in percent of the whole picture
      const r = plan.regions[1];
      const pad = this.view === "stacked" ? { left: "1.2%", top: "1.1%" } : { left: "1.2%", top: "2.2%" };
      const x = (r.x / plan.w) * 100;
      const y = (r.y / plan.h) * 100;
      at(a, pad);
      at(b, {
        left: `calc(${x.toFixed(3)}% + ${pad.left})`,
        top: `calc(${y.toFixed(3)}% + ${pad.top})`,
      });
    } else if (this.view === "side-by-side" || this.view === "stacked") {
      a.textContent = this.source.w ? `${layoutName} ONLY` : "";
      b.hidden = true;
    } else if (this.view === "wipe" && !missing) {
      a.textContent = names.raw;
      b.textContent = names.aged;
      at(b, { right: "1.2%", bottom: "2.2%" });
    } else {
      const shown = missing ? layoutName : names[this.view];
      a.textContent = missing ? `${shown} · ${missing.toUpperCase()} NOT IN STREAM` : shown;
      b.hidden = true;
    }
    a.classList.toggle("alert", Boolean(missing));
    this.wipeLine.hidden = this.view !== "wipe" || Boolean(missing);
    this.wipeLine.style.left = `${(this.split * 100).toFixed(3)}%`;
    this.placeAiMark();
  }

  /** A fill can crop away the "AI" the server burns into the aged picture's top-right corner:
   * then the page shows its own at the top-right of what is left of the aged picture. */
  placeAiMark() {
    const plan = this.plan;
    const show = Boolean(plan?.aged && plan.agedCropped && this.model.aiMark);
    this.aiMark.hidden = !show;
    if (!show) return;
    const r = plan.aged;
    Object.assign(this.aiMark.style, {
      right: `calc(${(((plan.w - r.x - r.w) / plan.w) * 100).toFixed(3)}% + 0.6%)`,
      top: `calc(${((r.y / plan.h) * 100).toFixed(3)}% + 1.2%)`,
    });
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
    const scaled = (r) => ({ x: r.x * sx, y: r.y * sy, w: r.w * sx, h: r.h * sy });
    for (const { clip, full } of this.plan.frames) {
      // safe areas and mattes of the whole frame, drawn only where the picture shows
      const c = scaled(clip);
      ctx.save();
      ctx.beginPath();
      ctx.rect(c.x, c.y, c.w, c.h);
      ctx.clip();
      this.drawRegionGuides(ctx, scaled(full), px);
      ctx.restore();
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

  // --- status -----------------------------------------------------------------------------

  /** The status model (status.js), the same for every window: the overlay shows it; a review
   * keeps its pictures and names the halves after the versions compared. */
  update(model) {
    const markChanged = Boolean(model.aiMark) !== Boolean(this.model.aiMark);
    this.model = model;
    this.overlay.update(model);
    if (markChanged) this.placeAiMark();
    if (Boolean(model.review) !== Boolean(this.keep)) this.keepPictures(Boolean(model.review));
    const names = model.names || { raw: "RAW", aged: "AGED" };
    if (names.raw !== this.names.raw || names.aged !== this.names.aged) {
      this.names = { raw: names.raw, aged: names.aged };
      this.placeLabels();
    }
    // A revoked viewer keeps nothing on screen: not even the last frame.
    this.picture.classList.toggle("withheld", model.state === "signed out");
  }

  /** Call `fn` whenever the canvas changes size (the dock picks its side from the picture). */
  onResize(fn) {
    this.resizeListeners.add(fn);
  }
}
