// agecast browser monitor: wires the parts together. Each part owns its own state:
//   live.js     the connection: camera, picture stream, control socket, the server's status
//   stream.js   one picture socket and its decoder
//   painter.js  every decoded picture into every window, frame-locked; latency and fps
//   display.js  one window's picture (views, wipe, guides, labels); overlay.js its read-outs
//   status.js   the status model the windows show, built from the parts on demand
//   controls.js record.js pickers.js  operator controls, REC, identity and preset pickers
//   cast.js tags.js  the cast's rows in the panel; name tags over the aged side's faces
//   takes.js rerender.js  recorded takes: list, review, re-render
//   dock.js     panels beside or under the picture; chrome.js buttons and keys
//
// Dual screen: the main window owns the one decoder. A second window (?role=second), opened
// from the main one, registers its Display with its opener (second.js); the painter then draws
// every decoded picture into every registered Display inside the same decoder-output task.

import { CameraPicker } from "./cameras.js";
import { CastPanel } from "./cast.js";
import { bindChrome } from "./chrome.js";
import { ControlPanel } from "./controls.js";
import { Display } from "./display.js";
import { Dock } from "./dock.js";
import { FleetHops } from "./fleet.js";
import { LiveFeed } from "./live.js";
import { Painter } from "./painter.js";
import { IdentityPicker, PresetPicker } from "./pickers.js";
import { loadPref } from "./prefs.js";
import { RecordBar } from "./record.js";
import { RenderForm } from "./rerender.js";
import { openerHub, SecondScreen, startSecond, windowHub } from "./second.js";
import { describeDropped, statusModel } from "./status.js";
import { nowMs, webCodecsUsable } from "./stream.js";
import { NameTags, TAGS_PREF } from "./tags.js";
import { TakesPanel } from "./takes.js";

const NO_FRAMES_MS = 1000; // no picture for this long while connected: NO SIGNAL
const MODEL_EVERY_MS = 250;
const STATS_EVERY_MS = 1000;

const params = new URLSearchParams(location.search);
const role = params.get("role") === "second" && openerHub(window)?._register ? "second" : "main";
const defaultView = params.get("view") || (role === "second" ? "aged" : "side-by-side");
document.body.dataset.role = role;
const display = new Display(window, { view: defaultView, role });

const fps = (value) => (Number.isFinite(value) ? value.toFixed(1) : "–");

/** window.agecast of the main window: what the second window registers with, and what tests
 * and the console read. */
function mainHub({ feed, painter, picker, takes, panel, tags, second, dock, model, openSecond }) {
  return windowHub(role, display, {
    get codec() {
      return feed.codec;
    },
    get state() {
      return model().state;
    },
    get glass() {
      return model().glass;
    },
    get status() {
      return feed.status;
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
      return { ...feed.counts };
    },
    get clock() {
      return { offsetMs: feed.clock.offsetMs, rttMs: feed.clock.rttMs };
    },
    /** ms from this page's start to its first painted picture (null before). */
    get firstPaintMs() {
      return painter.firstPaintPerf;
    },
    get second() {
      return second.window;
    },
    get displays() {
      return painter.windows.length;
    },
    /** Where the open panels sit: "right", "bottom" or "none". */
    get dock() {
      return dock.side;
    },
    /** The name tags now: on (this browser's choice), the painted picture's index, the index of
     * the faces message used and the tags placed (canvas pixels, name, state, text). */
    get tags() {
      return { on: tags.on, visible: tags.visible, ...tags.shown };
    },
    takes,
    openSecond,
    toggleBypass: () => panel.toggleBypass(),
    control: (values) => feed.channel.set(values),
    // A second window hands over its Display; idempotent (it re-registers after our reload).
    _register(d) {
      painter.add(d);
      second.adopt(d.win); // also after this window reloaded: the second one finds us again
      d.update(model());
      return true;
    },
    _registered: (d) => painter.has(d),
  });
}

function startMain() {
  const askedJpeg = params.get("codec") === "jpeg";
  const codec = askedJpeg || !webCodecsUsable() ? "jpeg" : "h264";
  if (codec === "jpeg" && !askedJpeg) {
    console.warn("agecast: no WebCodecs here (needs a secure context); using the JPEG fallback");
  }
  const painter = new Painter(display);
  const tags = new NameTags(display, { on: loadPref(TAGS_PREF, false) });
  // Reviewing a take: the live socket closes (the server keeps the live picture running for
  // everyone else) and the review stream's pictures go through the same painter and windows.
  const takes = new TakesPanel(document, {
    codec: () => feed.codec,
    enter: () => {
      feed.pause();
      painter.forget();
      tags.clear();
      pushModel();
    },
    leave: () => {
      painter.forget({ latencies: false });
      feed.resume();
      pushModel();
    },
    paint: (source, meta) => painter.paint(source, meta, { measure: false }),
    update: () => pushModel(),
    reviewed: (take, look) => render.reviewing(take, look),
  });

  const feed = new LiveFeed({
    codec,
    camera: (!params.get("node") && params.get("camera")) || null, // node: another node's camera
    onPicture: (source, meta) => {
      if (takes.reviewing) return;
      painter.paint(source, meta, { offsetMs: feed.clock.offsetMs });
      tags.show(meta); // the same task: the tags are this picture's
    },
    onFaces: (msg) => tags.add(msg),
    onHello: (hello) => {
      picker.hello(hello);
      access(hello.role);
    },
    onStatus: (status) => {
      panel.reflect(status);
      cast.reflect(status);
      record.reflect(status);
      identities.reflect(status);
      presets.reflect(status);
      picker.reflectFleet(status.fleet); // first: a changed fleet rebuilds the buttons
      picker.reflect(status.cameras);
      pushModel();
    },
    onChange: () => pushModel(),
    onError: (text) => {
      panel.showError(text);
      cast.refused(text);
      identities.refused();
    },
    onTake: (msg) => record.taken(msg),
    onUnknownCamera: () => showCamera(null),
  });
  const hops = new FleetHops(window, { status: () => feed.status, say: (text) => panel.showError(text) });
  const picker = new CameraPicker(document, {
    current: feed.camera,
    onPick: (name) => showCamera(name),
    onPickNode: (node, camera) => hops.go(node, camera),
    onBack: () => hops.back(),
  });
  const panel = new ControlPanel(document, feed.channel);
  const say = (text) => panel.showError(text);
  const identities = new IdentityPicker(document, { channel: feed.channel, say });
  const cast = new CastPanel(document, { channel: feed.channel, identities: () => identities.identities, tags });
  const presets = new PresetPicker(document, { channel: feed.channel, say, applied: (s) => feed.setStatus(s) });
  const record = new RecordBar(document, {
    channel: feed.channel,
    serverNow: () => nowMs() + feed.clock.offsetMs,
    reveal: () => chrome.togglePanel(true),
    onChange: () => {
      takes.refresh();
      pushModel();
    },
  });
  const second = new SecondScreen(window, display, { onBlocked: say });
  const render = new RenderForm(document, {
    identities: () => identities.identities,
    done: (takeId, version) => takes.rendered(takeId, version),
  });

  function model() {
    return statusModel({
      feed,
      painted: painter.stats(NO_FRAMES_MS),
      review: takes.reviewing ? takes : null,
      recording: record.tally(),
      nextTake: record.next(),
      noFramesMs: NO_FRAMES_MS,
    });
  }

  function pushModel() {
    const m = model();
    for (const d of painter.windows) {
      try {
        d.update(m);
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
    const s = feed.status ?? {};
    set("d-source", s.source ? `${s.source.uri} (${s.source.state})` : "–");
    const sl = s.server_latency_ms;
    set(
      "d-server",
      sl ? `${Math.round(sl.p50)} / ${Math.round(sl.p95)} ms · in ${fps(s.fps_in)} · out ${fps(s.fps_out)} fps` : "–",
    );
    set("d-dropped", `${describeDropped(s.dropped)} · here ${feed.counts.dropped}`);
    const rtt = feed.clock.rttMs;
    set("d-clock", rtt == null ? "–" : `offset ${feed.clock.offsetMs.toFixed(1)} ms · rtt ${rtt.toFixed(1)} ms`);
  }

  /** Watch (and control) another camera: both sockets reconnect to it; the address keeps it. */
  function showCamera(name) {
    picker.current = name;
    picker.render();
    const url = new URL(location.href);
    if (name) url.searchParams.set("camera", name);
    else url.searchParams.delete("camera");
    history.replaceState(history.state, "", url);
    painter.forget();
    tags.clear();
    feed.showCamera(name);
    identities.load();
    presets.load();
    pushModel();
  }

  const openSecond = () => second.open(feed.camera);

  /** What this sign-in may do (the hello says): a view-only link gets no operator controls. */
  function access(role) {
    const viewer = role === "viewer";
    document.body.dataset.access = viewer ? "viewer" : "operator";
    tags.allowed = !viewer;
    if (viewer) chrome.togglePanel(false);
  }

  setInterval(pushModel, MODEL_EVERY_MS);
  setInterval(() => {
    const meta = painter.lastMeta;
    feed.report(painter.takeUnsent(), meta ? meta.index : -1);
  }, STATS_EVERY_MS);

  const dock = new Dock(document, display);
  window.agecast = mainHub({ feed, painter, picker, takes, panel, tags, second, dock, model, openSecond });
  const chrome = bindChrome(document, {
    display,
    openSecond,
    toggleBypass: () => panel.toggleBypass(),
    takes,
    onEscape: () => render.toggle(false),
  });
  identities.load();
  presets.load();
  feed.start();
  pushModel();
  hops.follow(params); // /?node=NAME: on to that node of the fleet
}

window.addEventListener("error", (event) => console.warn("agecast: uncaught", event.message));
window.addEventListener("unhandledrejection", (event) => console.warn("agecast: unhandled rejection", event.reason));

if (role === "second") startSecond(window, display, params);
else startMain();
