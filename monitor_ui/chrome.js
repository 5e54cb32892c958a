// Buttons and keys, in every window: views, A/B, guides, full screen, the overlay, and (main
// window) the panels, dual screen and review transport.

import { VIEWS } from "./display.js";
import { lutList } from "./lut.js";
import { loadPref, savePref } from "./prefs.js";

/**
 * @param {Document} doc
 * @param {object} opts  display; openSecond() (null in a second window); toggleBypass();
 *   takes: TakesPanel (null in a second window); onEscape(): close what else is open
 */
export function bindChrome(doc, { display, openSecond, toggleBypass, takes = null, onEscape = null }) {
  const panelEl = doc.getElementById("panel");
  const panelButton = doc.querySelector('[data-action="panel"]');
  const menu = doc.getElementById("guide-menu");
  const menuButton = doc.querySelector('[data-action="guide-menu"]');
  const guidesButton = doc.querySelector('[data-action="guides"]');
  const fillButton = doc.querySelector('[data-action="fill"]');

  const syncButtons = () => {
    for (const b of doc.querySelectorAll("button[data-view]")) {
      b.setAttribute("aria-pressed", String(b.dataset.view === display.view));
    }
    guidesButton.setAttribute("aria-pressed", String(display.guides.on));
    fillButton.setAttribute("aria-pressed", String(display.fill));
    for (const box of menu.querySelectorAll("[data-guide]")) box.checked = display.guides[box.dataset.guide];
    luts.sync();
  };
  const luts = bindLuts(doc, display);
  display.onChange(syncButtons);
  syncButtons();

  const togglePanel = (open = panelEl.hidden) => {
    panelEl.hidden = !open;
    panelButton.setAttribute("aria-expanded", String(open));
  };
  const toggleMenu = (open = menu.hidden) => {
    menu.hidden = !open;
    menuButton.setAttribute("aria-expanded", String(open));
    if (open) luts.toggleMenu(false);
  };
  const toggleFullscreen = () => {
    if (doc.fullscreenElement) doc.exitFullscreen().catch(() => {});
    else
      doc.documentElement.requestFullscreen?.({ navigationUI: "hide" }).catch((err) => {
        console.warn("agecast: full screen refused", err?.message ?? err);
      });
  };
  const toggleGuides = () => display.setGuides({ on: !display.guides.on });
  const toggleChrome = () => doc.body.classList.toggle("bare");

  const actions = {
    ab: () => display.toggleAB(),
    guides: toggleGuides,
    fill: () => display.setFill(!display.fill),
    "guide-menu": () => toggleMenu(),
    lut: () => luts.toggle(),
    "lut-menu": () => {
      toggleMenu(false);
      luts.toggleMenu();
    },
    dual: () => openSecond?.(),
    fullscreen: toggleFullscreen,
    panel: () => togglePanel(),
    takes: () => takes?.toggle(),
  };
  const onToolClick = (event) => {
    const b = event.target.closest("button");
    if (!b) return;
    if (b.dataset.view) display.setView(b.dataset.view);
    else actions[b.dataset.action]?.();
    b.blur(); // keys (Space) must reach the monitor, not re-click the button
  };
  for (const nav of doc.querySelectorAll(".tools")) nav.addEventListener("click", onToolClick);
  menu.addEventListener("change", (event) => {
    const key = event.target.dataset.guide;
    if (key) display.setGuides({ [key]: event.target.checked, on: true });
  });

  const byKey = {
    1: () => display.setView(VIEWS[0]),
    2: () => display.setView(VIEWS[1]),
    3: () => display.setView(VIEWS[2]),
    4: () => display.setView(VIEWS[3]),
    5: () => display.setView(VIEWS[4]),
    " ": () => display.toggleAB(),
    t: () => display.toggleAB(),
    g: toggleGuides,
    z: () => display.setFill(!display.fill),
    l: () => luts.toggle(),
    f: toggleFullscreen,
    b: () => toggleBypass?.(),
    h: toggleChrome,
    o: () => openSecond && doc.body.dataset.access !== "viewer" && togglePanel(),
    r: () => takes?.toggle(),
    // reviewing a take: frame step, play/pause, loop in/out
    ",": () => takes?.reviewing && takes.step(-1),
    ".": () => takes?.reviewing && takes.step(1),
    k: () => takes?.reviewing && takes.togglePlay(),
    "[": () => takes?.reviewing && takes.mark("in"),
    "]": () => takes?.reviewing && takes.mark("out"),
    Escape: () => {
      toggleMenu(false);
      luts.toggleMenu(false);
      togglePanel(false);
      takes?.toggle(false);
      onEscape?.();
    },
  };
  doc.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const t = event.target;
    // Typing in a field or a select keeps its keys; a slider or checkbox does not need them.
    const typing =
      t instanceof HTMLSelectElement || (t instanceof HTMLInputElement && !["range", "checkbox"].includes(t.type));
    if (typing) return;
    if (t instanceof HTMLInputElement && event.key.startsWith("Arrow")) return;
    const k = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const fn = byKey[k];
    if (!fn) return;
    event.preventDefault();
    try {
      fn();
    } catch (err) {
      console.warn("agecast: key action failed", err);
    }
  });
  return { togglePanel };
}

/** The display LUT button (L), its menu (which LUT, which side) and this window's choice,
 * remembered per window role (the second screen keeps its own). */
function bindLuts(doc, display) {
  const menu = doc.getElementById("lut-menu");
  const button = doc.querySelector('[data-action="lut"]');
  const menuButton = doc.querySelector('[data-action="lut-menu"]');
  const select = doc.getElementById("lut-name");
  const note = doc.getElementById("lut-note");
  const pref = `lut.${display.role}`;
  const saved = loadPref(pref, { name: null, sides: "both", last: null });
  let last = saved.last ?? saved.name; // what L turns back on
  let offered = [];
  const plainNote = note.textContent;

  const sync = () => {
    button.setAttribute("aria-pressed", String(display.lutOn()));
    select.value = display.lut.name ?? "";
    for (const r of menu.querySelectorAll('input[name="lut-side"]')) r.checked = r.value === display.lut.sides;
    const error = display.lut.error;
    note.textContent = error ? `Plain picture: ${error}` : offered.length ? plainNote : "The server offers no display LUT (setting display_luts).";
    note.classList.toggle("alert", Boolean(error));
  };
  const choose = async (name, sides = display.lut.sides) => {
    if (name) last = name;
    await display.setLut(name, sides);
    savePref(pref, { name: display.lut.name, sides: display.lut.sides, last });
  };
  lutList().then((list) => {
    offered = list.map((l) => l.name);
    for (const name of offered) select.append(new Option(name, name));
    button.disabled = !offered.length;
    if (saved.name && offered.includes(saved.name)) choose(saved.name, saved.sides);
    else sync();
  });
  select.addEventListener("change", () => choose(select.value || null));
  menu.addEventListener("change", (event) => {
    if (event.target.name === "lut-side") choose(display.lut.name ?? (offered.includes(last) ? last : offered[0]), event.target.value);
  });
  return {
    sync,
    toggle: () => {
      if (display.lut.name) choose(null);
      else if (offered.length) choose(offered.includes(last) ? last : offered[0]);
    },
    toggleMenu: (open = menu.hidden) => {
      menu.hidden = !open;
      menuButton.setAttribute("aria-expanded", String(open));
    },
  };
}
