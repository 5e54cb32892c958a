// Takes: the list of recorded takes, and review mode — a take played back through this page's
// own painter (every view, the second screen too) from a /ws/review stream of its own. The live
// picture keeps running on the server for everyone else; "Back to live" returns to it.

import { elements } from "./dom.js";
import { MonitorStream } from "./stream.js";

const SEND_GAP_MS = 70; // steps and scrubs are coalesced: the server takes ~20 messages/s
const NOTE_MS = 5000;
const REFRESH_MS = 2000; // the list, while it is open: a take's status and new takes show

function duration(frames, fps) {
  const s = fps > 0 ? frames / fps : 0;
  return `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, "0")}`;
}

/** A take as the list shows it: title and one line of facts. */
function describe(take) {
  const title = `Scene ${take.scene} · Take ${take.take}${take.camera ? ` · Cam ${take.camera}` : ""}`;
  const identity = take.identity?.display_name || take.identity?.id || "no identity";
  const age = take.age ?? take.settings?.age ?? take.identity?.age_label;
  const facts = [duration(take.frames ?? 0, take.fps ?? 0), identity];
  if (age != null && age !== "") facts.push(typeof age === "number" ? `age ${age}` : String(age));
  if (Array.isArray(take.versions) && take.versions.length) facts.push(take.versions.join(" "));
  if (take.status && take.status !== "complete") facts.push(take.status.toUpperCase());
  return { title, facts: facts.join(" · ") };
}

export class TakesPanel {
  /**
   * @param {Document} doc
   * @param {object} hub  codec() → "h264"|"jpeg"; enter(); leave(); paint(source, meta); update();
   *   reviewed(take, look): the take on screen and its compared version's look (null: live)
   */
  constructor(doc, hub) {
    this.doc = doc;
    this.hub = hub;
    Object.assign(
      this,
      elements(doc, { panel: "takes", list: "takes-list", note: "takes-message", bar: "transport" }),
    );
    this.button = doc.querySelector('[data-action="takes"]');
    this.el = (id) => doc.getElementById(id);
    this.review = null; // {take, stream, hello, position, shown, …} while a take is reviewed
    this.takes = [];
    this.dragging = false;
    this.refreshTimer = null;
    this.bind();
  }

  get reviewing() {
    return this.review !== null;
  }

  // --- the list ---------------------------------------------------------------------------

  toggle(open = this.panel.hidden) {
    const changed = this.panel.hidden === open;
    this.panel.hidden = !open;
    this.button?.setAttribute("aria-expanded", String(open));
    clearInterval(this.refreshTimer);
    this.refreshTimer = open ? setInterval(() => this.refresh(), REFRESH_MS) : null;
    if (open) this.refresh();
    if (changed) this.hub.docked?.();
  }

  get open() {
    return !this.panel.hidden;
  }

  /** Reload the list (a take started or stopped); nothing while the list is closed. */
  async refresh() {
    if (this.panel.hidden) return;
    try {
      const res = await fetch("/api/takes", { cache: "no-store" });
      if (!res.ok) throw new Error(`the server answered ${res.status}`);
      const body = await res.json();
      this.takes = Array.isArray(body) ? body : (body.takes ?? []);
      this.showList();
    } catch (err) {
      this.say(this.note, `Cannot list takes: ${err?.message ?? err}`);
    }
  }

  showList() {
    const key = JSON.stringify(this.takes.map((t) => [t.id, t.status, t.frames, t.versions]));
    if (key === this.shownKey) return; // the same list: keep the images and the scroll
    this.shownKey = key;
    const items = this.takes.map((take) => {
      const { title, facts } = describe(take);
      const li = this.doc.createElement("li");
      const b = this.doc.createElement("button");
      b.type = "button";
      b.className = "take";
      b.dataset.id = take.id;
      const img = this.doc.createElement("img");
      img.alt = "";
      img.loading = "lazy";
      img.src = `/api/takes/${encodeURIComponent(take.id)}/thumbnail.jpg`;
      img.onerror = () => img.classList.add("missing");
      const name = this.doc.createElement("span");
      name.className = "take-title";
      name.textContent = title;
      const meta = this.doc.createElement("span");
      meta.className = "take-meta";
      meta.textContent = facts;
      b.append(img, name, meta);
      b.addEventListener("click", () => this.open(take));
      li.append(b);
      return li;
    });
    this.list.replaceChildren(...items);
    this.say(this.note, items.length ? "" : "No takes recorded yet.", 0);
  }

  // --- review mode ------------------------------------------------------------------------

  /** Review `take` (a list item), comparing pictures `a` | `b`. */
  open(take, a = "raw", b = (take.versions ?? ["v1"])[0] ?? "v1") {
    if (this.review) this.stopStream();
    const review = { take, a, b, hello: null, position: null, shown: -1, restore: null };
    review.stream = new MonitorStream({
      codec: this.hub.codec(),
      path: this.path(take.id, a, b),
      onPicture: (source, meta) => {
        if (this.review !== review) return;
        review.shown = meta.index;
        this.hub.paint(source, meta);
        this.showFrame(meta.index);
      },
      onHello: (hello) => this.onHello(review, hello),
      onMessage: (msg) => this.onMessage(review, msg),
      onState: () => this.hub.update(),
    });
    this.review = review;
    review.stream.start();
    this.toggle(false);
    this.bar.hidden = false;
    this.doc.body.classList.add("reviewing");
    this.hub.enter();
    this.hub.reviewed?.(take, null);
  }

  /** Back to live. */
  close() {
    if (!this.review) return;
    this.stopStream();
    this.bar.hidden = true;
    this.doc.body.classList.remove("reviewing");
    this.hub.reviewed?.(null, null);
    this.hub.leave();
  }

  stopStream() {
    const { stream } = this.review;
    this.review = null;
    clearTimeout(this.flushTimer);
    this.flushTimer = null;
    stream.stop();
  }

  path(id, a, b) {
    const q = new URLSearchParams({ take: id, a, b });
    return `/ws/review?${q}`;
  }

  onHello(review, hello) {
    const first = review.hello === null;
    review.hello = hello;
    const info = hello.review ?? {};
    this.fillPickers(review);
    this.hub.reviewed?.(review.take, info.looks?.[review.b] ?? info.looks?.v1 ?? null);
    const scrub = this.el("t-scrub");
    scrub.max = String(Math.max(0, (info.frames ?? 1) - 1));
    if (!first && review.position) {
      // A reconnect starts a fresh player: put it back where it was.
      const p = review.position;
      review.stream.send({ type: "seek", frame: review.shown >= 0 ? review.shown : p.frame });
      if (p.speed !== 1) review.stream.send({ type: "speed", speed: p.speed });
      if (p.in != null || p.out != null) review.stream.send({ type: "loop", in: p.in, out: p.out });
      if (p.playing) review.stream.send({ type: "play" });
    }
    this.hub.update();
  }

  /** The compare pickers: raw and every version of the take. */
  fillPickers(review) {
    const names = ["raw", ...(review.hello?.review?.versions ?? [])];
    const pick = (select, value) =>
      select.replaceChildren(
        ...names.map((n) => new Option(n === "raw" ? "Raw" : n.toUpperCase(), n, false, n === value)),
      );
    pick(this.el("t-a"), review.a);
    pick(this.el("t-b"), review.b);
  }

  /** Messages of the review socket the stream does not handle itself; true when handled. */
  onMessage(review, msg) {
    if (this.review !== review) return msg.type !== "hello";
    if (msg.type === "position") {
      review.position = msg;
      if (msg.a !== review.a || msg.b !== review.b) {
        review.a = msg.a;
        review.b = msg.b;
        review.stream.opts.path = this.path(review.take.id, msg.a, msg.b); // for a reconnect
        this.hub.update();
      }
      this.showPosition(msg);
      return true;
    }
    if (msg.type === "error") {
      if (msg.fatal) {
        this.close();
        this.toggle(true);
        this.say(this.note, String(msg.error), 0);
      } else {
        this.say(this.el("t-message"), String(msg.error));
      }
      return true;
    }
    return false;
  }

  /** The review stream's connection state (connecting, live, reconnecting …). */
  streamState() {
    return this.review?.stream.state ?? "connecting";
  }

  /** The timecode of the frame shown, as recorded (null before the first position). */
  timecode() {
    return this.review?.position?.timecode ?? null;
  }

  /** A re-render of `takeId` made `version`: list it, and compare it with the raw picture. */
  rendered(takeId, version) {
    this.shownKey = null;
    this.refresh();
    const r = this.review;
    if (!r || r.take.id !== takeId || !r.hello) return;
    const info = r.hello.review ?? {};
    info.versions = [...new Set([...(info.versions ?? []), version])];
    r.take = { ...r.take, versions: info.versions };
    this.fillPickers(r);
    this.send({ type: "compare", a: "raw", b: version });
  }

  /** The state badge while reviewing: "REVIEW — take 12_3 V1" (or "V1 | V2"). */
  label() {
    const r = this.review;
    if (!r) return null;
    const pair = r.a === "raw" ? r.b.toUpperCase() : `${r.a.toUpperCase()} | ${r.b.toUpperCase()}`;
    return `REVIEW — take ${r.take.id} ${pair}`;
  }

  /** The identity that made the take, for the header while it is reviewed. */
  identity() {
    const r = this.review;
    const info = r?.hello?.review;
    const look = info?.looks?.[r.b] ?? {};
    const id = look.identity ?? info?.take?.identity?.id ?? r?.take?.identity?.id;
    if (!id) return null;
    const age = look.age;
    return { id, display_name: id, age_label: typeof age === "number" ? `age ${age}` : "" };
  }

  /** What the two halves of the picture are, for the labels on it. */
  names() {
    const r = this.review;
    const name = (n) => (n === "raw" ? "RAW" : n.toUpperCase());
    return r ? { raw: name(r.a), aged: name(r.b) } : null;
  }

  // --- transport --------------------------------------------------------------------------

  send(message) {
    this.review?.stream.send(message);
  }

  togglePlay() {
    this.send({ type: this.review?.position?.playing ? "pause" : "play" });
  }

  /** Frame step; quick presses and key repeat are added up and sent as one step. */
  step(by) {
    this.pendingStep = (this.pendingStep ?? 0) + by;
    this.pendingSeek = null;
    this.schedule();
  }

  seek(frame) {
    this.pendingSeek = frame;
    this.pendingStep = 0;
    this.schedule();
  }

  schedule() {
    if (this.flushTimer) return;
    this.flush();
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      if (this.pendingStep || this.pendingSeek != null) this.schedule();
    }, SEND_GAP_MS);
  }

  flush() {
    if (this.pendingSeek != null) this.send({ type: "seek", frame: this.pendingSeek });
    else if (this.pendingStep) this.send({ type: "step", by: this.pendingStep });
    this.pendingSeek = null;
    this.pendingStep = 0;
  }

  /** Loop in or out at the frame shown (an in after the out, or out before in, clears the other). */
  mark(which) {
    const r = this.review;
    if (!r) return;
    const here = r.shown >= 0 ? r.shown : (r.position?.frame ?? 0);
    let { in: start = null, out: end = null } = r.position ?? {};
    if (which === "in") {
      start = here;
      if (end != null && end < here) end = null;
    } else {
      end = here;
      if (start != null && start > here) start = null;
    }
    this.send({ type: "loop", in: start, out: end });
  }

  /** Compare what the pickers say; picking the other side's picture swaps the two sides. */
  compare(changed) {
    const r = this.review;
    if (!r) return;
    let a = this.el("t-a").value;
    let b = this.el("t-b").value;
    if (a === b) {
      if (changed === "t-a") b = r.a;
      else a = r.b;
    }
    this.send({ type: "compare", a, b });
  }

  // --- the transport bar ------------------------------------------------------------------

  /** Frame painted (exact, every picture) and the timecode the server gave for the position
   * (as recorded; a tenth of a second behind while playing). */
  showFrame(index) {
    const r = this.review;
    const frames = r?.position?.frames ?? r?.hello?.review?.frames;
    if (!frames) return;
    const n = (v) => String(v).padStart(5, "0");
    const text = `${n(index)} / ${n(Math.max(0, frames - 1))} · ${r.position?.timecode ?? "–"}`;
    const pos = this.el("t-pos");
    if (pos.textContent !== text) pos.textContent = text;
    if (!this.dragging) this.el("t-scrub").value = String(index);
  }

  showPosition(p) {
    if (this.review?.shown < 0 || !p.playing) this.showFrame(p.frame);
    const play = this.el("t-play");
    play.textContent = p.playing ? "❚❚ Pause" : "▶ Play";
    play.setAttribute("aria-pressed", String(Boolean(p.playing)));
    this.el("t-speed").value = String(p.speed);
    const loop = p.in != null || p.out != null;
    this.el("t-loop").textContent = loop ? `Loop ${p.in ?? 0}–${p.out ?? p.frames - 1}` : "No loop";
    this.el("t-clear").disabled = !loop;
    this.el("t-scrub").max = String(Math.max(0, p.frames - 1));
    for (const [id, v] of [["t-a", p.a], ["t-b", p.b]]) {
      if (this.el(id).value !== v) this.el(id).value = v;
    }
  }

  say(el, text, ms = NOTE_MS) {
    el.textContent = text;
    clearTimeout(el._timer);
    if (text && ms) el._timer = setTimeout(() => (el.textContent = ""), ms);
  }

  bind() {
    const actions = {
      prev: () => this.step(-1),
      next: () => this.step(1),
      play: () => this.togglePlay(),
      in: () => this.mark("in"),
      out: () => this.mark("out"),
      clear: () => this.send({ type: "loop", in: null, out: null }),
      live: () => this.close(),
      refresh: () => this.refresh(),
    };
    const onClick = (event) => {
      const b = event.target.closest("button[data-t]");
      if (!b) return;
      actions[b.dataset.t]?.();
      b.blur(); // keys must reach the monitor, not re-click the button
    };
    this.bar.addEventListener("click", onClick);
    this.panel.addEventListener("click", onClick);
    const scrub = this.el("t-scrub");
    scrub.addEventListener("pointerdown", () => (this.dragging = true));
    scrub.addEventListener("input", () => this.seek(Number(scrub.value)));
    scrub.addEventListener("change", () => {
      this.dragging = false;
      this.seek(Number(scrub.value));
    });
    this.el("t-speed").addEventListener("change", (e) => {
      this.send({ type: "speed", speed: Number(e.target.value) });
      e.target.blur();
    });
    for (const id of ["t-a", "t-b"]) {
      this.el(id).addEventListener("change", (e) => {
        this.compare(id);
        e.target.blur();
      });
    }
  }
}
