// The second window (?role=second), opened from the main one: it registers its Display with
// its opener, which paints every decoded picture into it (frame-locked). If the main window
// goes away it carries on as a monitor of its own after a moment.

import { bindChrome } from "./chrome.js";

const TAKEOVER_AFTER_MS = 3000; // without its main window: run on its own after this

/** The main window's side: opens the second window (once) and remembers it. */
export class SecondScreen {
  constructor(win, display, { onBlocked }) {
    this.win = win;
    this.display = display;
    this.onBlocked = onBlocked;
    this.other = null; // the second window, once opened (or found again after a reload)
  }

  get window() {
    return this.other && !this.other.closed ? this.other : null;
  }

  /** A second window registered itself (also one opened before this window reloaded). */
  adopt(other) {
    this.other = other;
  }

  /** Open (or bring forward) the aged picture on a second window; the main one shows raw. */
  open(camera) {
    if (this.window) {
      this.other.focus();
      return this.other;
    }
    const screen = this.win.screen;
    const w = Math.min(1600, screen.availWidth || 1280);
    const h = Math.min(960, screen.availHeight || 800);
    const path = `/?role=second&view=aged${camera ? `&camera=${encodeURIComponent(camera)}` : ""}`;
    this.other = this.win.open(path, "agecast-second", `popup,width=${w},height=${h}`);
    if (!this.other) {
      this.onBlocked("The browser blocked the second window: allow pop-ups for this page.");
      return null;
    }
    this.display.setView("raw");
    return this.other;
  }
}

/** window.agecast: what every window shows (read by tests and the console), plus `more`'s
 * properties (getters stay getters). */
export function windowHub(role, display, more = {}) {
  const hub = {
    role,
    get view() {
      return display.view;
    },
    get lastPainted() {
      return display.lastPainted;
    },
    get painted() {
      return display.painted;
    },
    display,
    setView: (v) => display.setView(v),
  };
  return Object.defineProperties(hub, Object.getOwnPropertyDescriptors(more));
}

/** The main window's hub (window.agecast of the opener), or null. */
export function openerHub(win) {
  try {
    return win.opener && !win.opener.closed ? win.opener.agecast : null;
  } catch {
    return null; // another origin
  }
}

export function startSecond(win, display, params) {
  const doc = win.document;
  doc.getElementById("role-tag").textContent = " · second screen";
  doc.title = "agecast — second screen";
  let goneSince = null;
  const keepRegistered = () => {
    const hub = openerHub(win);
    if (!hub?._register) {
      // The main window closed (or is reloading). Give it a moment, then carry on as an
      // independent monitor so the screen in front of the director never goes dark.
      goneSince ??= performance.now();
      display.update({ ...display.model, state: "main closed", fx: null, fps: NaN });
      if (performance.now() - goneSince > TAKEOVER_AFTER_MS) {
        const cam = params.get("camera");
        const also = cam ? `&camera=${encodeURIComponent(cam)}` : "";
        win.location.replace(`/?view=${encodeURIComponent(display.view)}${also}`);
      }
      return;
    }
    goneSince = null;
    try {
      if (!hub._registered(display)) hub._register(display);
    } catch (err) {
      console.warn("agecast: cannot register with the main window", err);
    }
  };
  keepRegistered();
  setInterval(keepRegistered, 500);
  win.agecast = windowHub("second", display);
  bindChrome(doc, { display, openSecond: null, toggleBypass: () => openerHub(win)?.toggleBypass() });
}
