// Where the open panels (takes, operator controls) sit: beside the picture or under it,
// whichever leaves the picture larger. The picture shrinks into the space left; a panel never
// covers it. A side-by-side picture on a 16:9 screen is wide and short, so its panels go under
// it, into the height it does not use; an over/under picture is tall, so they go beside it.

const px = (style, name, fallback) => {
  const v = parseFloat(style.getPropertyValue(name));
  return Number.isFinite(v) && v > 0 ? v : fallback;
};

/** "right" or "bottom": the side that leaves a `cw`×`ch` picture the larger scale in a
 * `w`×`h` stage, with `n` panels of `side` px wide beside it or one row `below` px high. */
export function chooseSide({ w, h, cw, ch, n, side, below }) {
  const scale = (aw, ah) => (aw > 0 && ah > 0 ? Math.min(aw / cw, ah / ch) : 0);
  const right = scale(w - n * side, h);
  const bottom = scale(w, h - below);
  return bottom > right * 1.02 ? "bottom" : "right";
}

export class Dock {
  constructor(doc, display) {
    this.doc = doc;
    this.display = display;
    this.stage = doc.getElementById("stage");
    this.panels = [...doc.querySelectorAll("#dock > aside")];
    const place = () => this.place();
    new ResizeObserver(place).observe(this.stage);
    new MutationObserver(place).observe(doc.getElementById("dock"), {
      subtree: true,
      attributes: true,
      attributeFilter: ["hidden"],
    });
    display.onResize(place);
    place();
  }

  get side() {
    return this.stage.dataset.dock;
  }

  place() {
    const shown = this.panels.filter((p) => !p.hidden);
    const open = shown.length;
    const names = shown.map((p) => p.id).join(" ");
    if (this.stage.dataset.panels !== names) this.stage.dataset.panels = names;
    let side = "none";
    if (open) {
      const style = getComputedStyle(this.stage);
      const natural = this.display.natural(); // uncropped: a fill must not move the panels
      const w = this.stage.clientWidth;
      const h = this.stage.clientHeight;
      const cw = natural.w || 16;
      const ch = natural.h || 9;
      const sideW = px(style, "--dock-w", 340);
      const belowH = px(style, "--dock-h", 280);
      side = chooseSide({ w, h, cw, ch, n: open, side: sideW, below: belowH });
      // The panels take the room the picture leaves anyway (up to a limit), not just their least.
      const room =
        side === "bottom"
          ? Math.min(Math.max(h - (w * ch) / cw, belowH), 0.5 * h)
          : Math.min(Math.max((w - (h * cw) / ch) / open, sideW), 1.3 * sideW);
      this.stage.style.setProperty(side === "bottom" ? "--dock-h-now" : "--dock-w-now", `${Math.floor(room)}px`);
    }
    if (this.stage.dataset.dock !== side) this.stage.dataset.dock = side;
  }
}
