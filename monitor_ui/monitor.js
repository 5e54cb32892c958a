// agecast browser monitor: wires the stream, the painter, the windows and the controls.
//
// Dual screen: the main window owns the one decoder. A second window (?role=second), opened
// from the main one, registers its Display with its opener; the main window then draws every
// decoded picture into every registered Display inside the same decoder-output task, so both
// windows always hold the same frame index (see paintAll).

import { CameraPicker } from "./cameras.js";
import { ControlChannel, ControlPanel } from "./controls.js";
import { Display, VIEWS } from "./display.js";
import { MonitorStream, nowMs, webCodecsUsable } from "./stream.js";
import { TakesPanel } from "./takes.js";

const GLASS_WINDOW = 100; // frames in the shown p50/p95
const NO_FRAMES_MS = 1000; // no picture for this long while connected: NO SIGNAL
const MODEL_EVERY_MS = 250;
const STATS_EVERY_MS = 1000;
const TAKEOVER_AFTER_MS = 3000; // second window without its main one: run on its own after this

const params = new URLSearchParams(location.search);
const openerHub = (() => {
  try {
    return window.opener && !window.opener.closed ? window.opener.agecast : null;
  } catch {
    return null; // another origin
  }
})();
const role = params.get("role") === "second" && openerHub?._register ? "second" : "main";
const defaultView = params.get("view") || (role === "second" ? "aged" : "side-by-side");

document.body.dataset.role = role;
const display = new Display(window, { view: defaultView, role });

/** The server's drop counters ({"capture→device": n, …} or a number) as one short line. */
function describeDropped(dropped) {
  if (Number.isFinite(dropped)) return `server ${dropped}`;
  if (dropped && typeof dropped === "object") {
    const parts = Object.entries(dropped).map(([k, v]) => `${k} ${v}`);
    if (parts.length) return parts.join(" · ");
  }
  return "server –";
}

const fps = (value) => (Number.isFinite(value) ? value.toFixed(1) : "–");

/** `path` for one camera (null: the server's first), e.g. /ws/monitor?camera=B. */
const forCamera = (path, camera) => (camera ? `${path}?camera=${encodeURIComponent(camera)}` : path);

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

// --- main window: stream, painter, controls ----------------------------------------------

function startMain() {
  let codec = params.get("codec") === "jpeg" || !webCodecsUsable() ? "jpeg" : "h264";
  if (codec === "jpeg" && params.get("codec") !== "jpeg") {
    console.warn("agecast: no WebCodecs here (needs a secure context); using the JPEG fallback");
  }
  const displays = [display];
  const glass = []; // the last GLASS_WINDOW glass-to-glass latencies, ms
  let unsent = []; // latencies not yet reported to the server
  const paintTimes = []; // performance.now() of paints in the last second
  let lastMeta = null;
  let lastPaintPerf = 0;
  let firstPaintPerf = null;
  let helloPerf = 0;
  let status = null;
  let second = null;
  let reviewing = false; // a take is on screen (takes.js) instead of the live picture
  let camera = params.get("camera") || null; // several cameras: the one shown (null: the first)
  const picker = new CameraPicker(document, { current: camera, onPick: (name) => showCamera(name) });

  const stream = new MonitorStream({
    codec,
    path: forCamera("/ws/monitor", camera),
    onPicture: (source, meta) => reviewing || paintAll(source, meta),
    onMessage: (msg) => {
      if (!(msg.type === "error" && msg.fatal && camera)) return false;
      // A camera this server does not run (an old link): show its first camera instead.
      console.warn("agecast: the server says:", msg.error);
      showCamera(null);
      return true;
    },
    onHello: (hello) => {
      picker.hello(hello);
      helloPerf = performance.now();
      fetchStatus(); // the socket's first status comes a second later
      pushModel();
    },
    onStatus: (s) => setStatus(s),
    onState: () => pushModel(),
    onCodec: (c) => {
      codec = c;
    },
  });

  // Every registered window gets this picture now, in this task: frame-locked by construction.
  function paintAll(source, meta) {
    const at = nowMs();
    for (let i = displays.length - 1; i >= 0; i--) {
      const d = displays[i];
      if (!d.alive()) {
        displays.splice(i, 1);
        continue;
      }
      try {
        d.paint(source, meta, at);
      } catch (err) {
        console.warn("agecast: painting a window failed", err);
      }
    }
    const done = nowMs();
    const latency = done + stream.clock.offsetMs - meta.captureMs;
    if (!reviewing && Number.isFinite(latency) && latency > -1000 && latency < 60000) {
      glass.push(latency);
      if (glass.length > GLASS_WINDOW) glass.shift();
      unsent.push(Math.round(latency * 10) / 10);
      if (unsent.length > GLASS_WINDOW) unsent.shift();
    }
    const perf = performance.now();
    paintTimes.push(perf);
    while (paintTimes.length && paintTimes[0] < perf - 1000) paintTimes.shift();
    lastPaintPerf = perf;
    firstPaintPerf ??= perf;
    lastMeta = meta;
  }

  function model() {
    const perf = performance.now();
    const sorted = [...glass].sort((a, b) => a - b);
    const flowing = lastMeta && perf - lastPaintPerf < NO_FRAMES_MS;
    const waitedLong = perf - Math.max(lastPaintPerf, helloPerf) > NO_FRAMES_MS;
    const sourceDown = status?.source?.state === "no signal" || status?.fx === "no signal";
    let state = reviewing ? takes.review.stream.state : stream.state;
    if (reviewing && state === "live") state = "review";
    if (state === "live" && (sourceDown || (!flowing && waitedLong))) state = "no signal";
    while (paintTimes.length && paintTimes[0] < perf - 1000) paintTimes.shift();
    const fmt = lastMeta
      ? `${lastMeta.jpeg ? "JPEG" : "H.264"} ${lastMeta.width}×${lastMeta.height}`
      : codec === "jpeg"
        ? "JPEG"
        : "H.264";
    const connected = !["reconnecting", "connecting", "signed out"].includes(state);
    // While the server is away the effect's state is unknown, not "error".
    const fx =
      !connected || state === "no signal" || reviewing
        ? null
        : flowing && lastMeta
          ? lastMeta.fx
          : (status?.fx ?? null);
    return {
      state,
      fx,
      identity: (reviewing ? takes.identity() : null) ?? status?.identity ?? null,
      fps: flowing ? paintTimes.length : 0,
      glass: { p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95) },
      serverLatency: connected && !reviewing ? (status?.server_latency_ms ?? null) : null,
      viewers: connected && !reviewing ? (status?.viewers ?? null) : null,
      index: lastMeta ? lastMeta.index : -1,
      format: fmt,
      sourceUri: status?.source?.uri ?? "",
      review: reviewing ? takes.label() : null,
      names: reviewing ? takes.names() : null,
    };
  }

  function pushModel() {
    const m = model();
    for (const d of displays) {
      try {
        if (d.alive()) d.update(m);
      } catch (err) {
        console.warn("agecast: updating a window failed", err);
      }
    }
    showDetails();
    return m;
  }

  function showDetails() {
    const set = (id, text) => {
      const el = document.getElementById(id);
      if (el.textContent !== text) el.textContent = text;
    };
    const s = status ?? {};
    set("d-source", s.source ? `${s.source.uri} (${s.source.state})` : "–");
    const sl = s.server_latency_ms;
    set(
      "d-server",
      sl ? `${Math.round(sl.p50)} / ${Math.round(sl.p95)} ms · in ${fps(s.fps_in)} · out ${fps(s.fps_out)} fps` : "–",
    );
    set("d-dropped", `${describeDropped(s.dropped)} · here ${stream.counts.dropped}`);
    const rtt = stream.clock.rttMs;
    set("d-clock", rtt == null ? "–" : `offset ${stream.clock.offsetMs.toFixed(1)} ms · rtt ${rtt.toFixed(1)} ms`);
  }

  function setStatus(s) {
    if (!s || typeof s !== "object" || Array.isArray(s)) return;
    if (camera && s.camera && s.camera !== camera) return; // late, from the camera shown before
    status = { ...(status ?? {}), ...s };
    panel.reflect(status);
    picker.reflect(status.cameras);
    pushModel();
  }

  /** Watch (and control) another camera: both sockets reconnect to it; the address keeps it. */
  function showCamera(name) {
    camera = name;
    picker.current = name;
    picker.render();
    const url = new URL(location.href);
    if (name) url.searchParams.set("camera", name);
    else url.searchParams.delete("camera");
    history.replaceState(history.state, "", url);
    status = null;
    lastMeta = null;
    glass.length = 0;
    unsent = [];
    helloPerf = performance.now();
    channel.setCamera(name);
    stream.switchPath(forCamera("/ws/monitor", name));
    pushModel();
  }

  async function fetchStatus() {
    try {
      const res = await fetch(forCamera("/api/status", camera), { cache: "no-store" });
      if (res.ok) setStatus(await res.json());
    } catch (err) {
      console.warn("agecast: /api/status did not answer", err?.message ?? err);
    }
  }

  setInterval(pushModel, MODEL_EVERY_MS);
  setInterval(() => {
    if (!unsent.length) return;
    stream.send({ type: "stats", glass_ms: unsent, frame: lastMeta ? lastMeta.index : -1 });
    unsent = [];
  }, STATS_EVERY_MS);

  const channel = new ControlChannel({
    camera,
    onStatus: (s) => setStatus(s),
    onError: (text) => panel.showError(text),
  });
  const panel = new ControlPanel(document, channel);
  // Reviewing a take: the live socket closes (the server keeps the live picture running for
  // everyone else) and the review stream's pictures go through the same painter and windows.
  const takes = new TakesPanel(document, {
    codec: () => codec,
    enter: () => {
      reviewing = true;
      stream.pause();
      glass.length = 0;
      lastMeta = null;
      pushModel();
    },
    leave: () => {
      reviewing = false;
      lastMeta = null;
      helloPerf = performance.now();
      stream.resume();
      pushModel();
    },
    paint: (source, meta) => paintAll(source, meta),
    update: () => pushModel(),
  });

  function openSecond() {
    if (second && !second.closed) {
      second.focus();
      return second;
    }
    const w = Math.min(1600, screen.availWidth || 1280);
    const h = Math.min(960, screen.availHeight || 800);
    const path = `/?role=second&view=aged${camera ? `&camera=${encodeURIComponent(camera)}` : ""}`;
    second = window.open(path, "agecast-second", `popup,width=${w},height=${h}`);
    if (!second) {
      panel.showError("The browser blocked the second window: allow pop-ups for this page.");
      return null;
    }
    display.setView("raw"); // main shows raw, the second screen aged
    return second;
  }

  window.agecast = {
    role,
    get codec() {
      return codec;
    },
    get view() {
      return display.view;
    },
    get lastPainted() {
      return display.lastPainted;
    },
    get painted() {
      return display.painted;
    },
    get state() {
      return model().state;
    },
    get glass() {
      return model().glass;
    },
    get status() {
      return status;
    },
    /** The camera on screen (its name; null before the first hello) and every camera's name. */
    get camera() {
      return picker.current;
    },
    get cameras() {
      return [...picker.names];
    },
    showCamera: (name) => picker.pick(name),
    get counts() {
      return { ...stream.counts };
    },
    get clock() {
      return { offsetMs: stream.clock.offsetMs, rttMs: stream.clock.rttMs };
    },
    /** ms from this page's start to its first painted picture (null before). */
    get firstPaintMs() {
      return firstPaintPerf;
    },
    get second() {
      return second && !second.closed ? second : null;
    },
    get displays() {
      return displays.filter((d) => d.alive()).length;
    },
    display,
    takes,
    setView: (v) => display.setView(v),
    openSecond,
    toggleBypass: () => panel.toggleBypass(),
    control: (values) => channel.set(values),
    // A second window hands over its Display; idempotent (it re-registers after our reload).
    _register(d) {
      if (!displays.includes(d)) displays.push(d);
      second = d.win; // also after this window reloaded: the second one finds us again
      d.update(model());
      return true;
    },
    _registered: (d) => displays.includes(d),
  };

  bindChrome({ openSecond, toggleBypass: () => panel.toggleBypass(), takes });
  stream.start();
  pushModel();
}

// --- second window: painted by the opener ------------------------------------------------

function startSecond() {
  document.getElementById("role-tag").textContent = " · second screen";
  document.title = "agecast — second screen";
  const hub = () => {
    try {
      return window.opener && !window.opener.closed ? window.opener.agecast : null;
    } catch {
      return null;
    }
  };
  let goneSince = null;
  const keepRegistered = () => {
    const h = hub();
    if (!h?._register) {
      // The main window closed (or is reloading). Give it a moment, then carry on as an
      // independent monitor so the screen in front of the director never goes dark.
      goneSince ??= performance.now();
      display.update({ ...display.model, state: "main closed", fx: null, fps: NaN });
      if (performance.now() - goneSince > TAKEOVER_AFTER_MS) {
        const cam = params.get("camera");
        const also = cam ? `&camera=${encodeURIComponent(cam)}` : "";
        location.replace(`/?view=${encodeURIComponent(display.view)}${also}`);
      }
      return;
    }
    goneSince = null;
    try {
      if (!h._registered(display)) h._register(display);
    } catch (err) {
      console.warn("agecast: cannot register with the main window", err);
    }
  };
  keepRegistered();
  setInterval(keepRegistered, 500);
  window.agecast = {
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
  bindChrome({ openSecond: null, toggleBypass: () => hub()?.toggleBypass() });
}

// --- buttons and keys (every window) -----------------------------------------------------

function bindChrome({ openSecond, toggleBypass, takes = null }) {
  const doc = document;
  const panelEl = doc.getElementById("panel");
  const panelButton = doc.querySelector('[data-action="panel"]');
  const menu = doc.getElementById("guide-menu");
  const menuButton = doc.querySelector('[data-action="guide-menu"]');
  const guidesButton = doc.querySelector('[data-action="guides"]');

  const syncButtons = () => {
    for (const b of doc.querySelectorAll("[data-view]")) {
      b.setAttribute("aria-pressed", String(b.dataset.view === display.view));
    }
    guidesButton.setAttribute("aria-pressed", String(display.guides.on));
    for (const box of menu.querySelectorAll("[data-guide]")) box.checked = display.guides[box.dataset.guide];
  };
  display.onChange(syncButtons);
  syncButtons();

  const togglePanel = (open = panelEl.hidden) => {
    panelEl.hidden = !open;
    panelButton.setAttribute("aria-expanded", String(open));
  };
  const toggleMenu = (open = menu.hidden) => {
    menu.hidden = !open;
    menuButton.setAttribute("aria-expanded", String(open));
  };
  const toggleFullscreen = () => {
    if (doc.fullscreenElement) doc.exitFullscreen().catch(() => {});
    else doc.documentElement.requestFullscreen?.({ navigationUI: "hide" }).catch((err) => {
      console.warn("agecast: full screen refused", err?.message ?? err);
    });
  };
  const toggleGuides = () => display.setGuides({ on: !display.guides.on });
  const toggleChrome = () => doc.body.classList.toggle("bare");

  const actions = {
    ab: () => display.toggleAB(),
    guides: toggleGuides,
    "guide-menu": () => toggleMenu(),
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

  doc.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const t = event.target;
    // Typing in a field or a select keeps its keys; a slider or checkbox does not need them.
    const typing =
      t instanceof HTMLSelectElement ||
      (t instanceof HTMLInputElement && !["range", "checkbox"].includes(t.type));
    if (typing) return;
    if (t instanceof HTMLInputElement && event.key.startsWith("Arrow")) return;
    const k = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const byKey = {
      1: () => display.setView(VIEWS[0]),
      2: () => display.setView(VIEWS[1]),
      3: () => display.setView(VIEWS[2]),
      4: () => display.setView(VIEWS[3]),
      " ": () => display.toggleAB(),
      t: () => display.toggleAB(),
      g: toggleGuides,
      f: toggleFullscreen,
      b: () => toggleBypass?.(),
      h: toggleChrome,
      o: () => openSecond && togglePanel(),
      r: () => takes?.toggle(),
      // reviewing a take: frame step, play/pause, loop in/out
      ",": () => takes?.reviewing && takes.step(-1),
      ".": () => takes?.reviewing && takes.step(1),
      k: () => takes?.reviewing && takes.togglePlay(),
      "[": () => takes?.reviewing && takes.mark("in"),
      "]": () => takes?.reviewing && takes.mark("out"),
      Escape: () => {
        toggleMenu(false);
        togglePanel(false);
        takes?.toggle(false);
      },
    };
    const fn = byKey[k];
    if (!fn) return;
    event.preventDefault();
    try {
      fn();
    } catch (err) {
      console.warn("agecast: key action failed", err);
    }
  });
}

window.addEventListener("error", (event) => console.warn("agecast: uncaught", event.message));
window.addEventListener("unhandledrejection", (event) =>
  console.warn("agecast: unhandled rejection", event.reason),
);

if (role === "second") startSecond();
else startMain();
