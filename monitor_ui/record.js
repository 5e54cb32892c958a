// The record bar: ● REC / ■ STOP in the header (always in view), scene / take / camera in the
// operator panel, and the tally every screen shows while a take records (overlay.js). Start and
// stop go over /ws/control ({"type": "record"|"stop"}), or POST /api/takes/record|stop when the
// socket is down; the status document says what records.
//
// The tally's time runs on this page's clock from the take's start (the server's `created`
// time when this page started it, else its recorded seconds when first seen), so it counts wall
// time even when the pipeline delivers fewer frames than the camera sends.

import { errorText } from "./controls.js";

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class RecordBar {
  /**
   * @param {Document} doc
   * @param {object} opts  channel: ControlChannel; serverNow() → the server's clock, ms since
   *   the epoch; reveal(): show the fields (a name to fix); onChange(): a take started/stopped
   */
  constructor(doc, { channel, serverNow, reveal, onChange }) {
    this.channel = channel;
    this.serverNow = serverNow;
    this.reveal = reveal;
    this.onChange = onChange;
    this.recording = null; // {take, startPerf} while a take records
    this.mine = null; // the take this page started, until its take number has moved on
    this.el = {
      scene: doc.getElementById("r-scene"),
      take: doc.getElementById("r-take"),
      camera: doc.getElementById("r-camera"),
      rec: doc.getElementById("r-rec"),
      message: doc.getElementById("r-message"),
    };
    this.el.rec.addEventListener("click", (event) => {
      event.currentTarget.blur(); // keys (Space) must reach the monitor, not re-click REC
      if (this.recording) this.stop();
      else this.start();
    });
  }

  /** What the next REC records, "scene_take[_camera]"; null until a scene is given. */
  next() {
    const e = this.el;
    const scene = e.scene.value.trim();
    if (!scene) return null;
    return [scene, e.take.value.trim() || "?", e.camera.value.trim()].filter(Boolean).join("_");
  }

  names() {
    const e = this.el;
    const values = { scene: e.scene.value.trim(), take: e.take.value.trim() };
    const camera = e.camera.value.trim();
    if (camera) values.camera = camera;
    for (const [field, value] of Object.entries(values)) {
      if (!NAME_RE.test(value) || value.includes("..")) {
        return `${field}: letters, digits, '.', '_' or '-' (1–64, no '..')`;
      }
    }
    return values;
  }

  say(text) {
    this.el.message.textContent = text;
  }

  async start() {
    const names = this.names();
    this.say(typeof names === "string" ? names : "");
    if (typeof names === "string") {
      this.reveal();
      return;
    }
    await this.send({ type: "record", ...names }, "/api/takes/record", names);
  }

  async stop() {
    await this.send({ type: "stop" }, "/api/takes/stop", null);
  }

  async send(message, path, body) {
    const ws = this.channel.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(message));
      return;
    }
    const camera = this.channel.camera; // several cameras: the one on screen records
    const url = camera ? `${path}?camera=${encodeURIComponent(camera)}` : path;
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: body ? JSON.stringify(body) : undefined,
      });
      const reply = await res.json().catch(() => null);
      if (!res.ok) {
        this.say(errorText(reply) || `refused (${res.status})`);
        this.reveal();
      } else this.taken({ type: message.type === "stop" ? "take_stopped" : "take_started", take: reply });
    } catch (err) {
      this.say(`cannot reach the server: ${err.message ?? err}`);
      this.reveal();
    }
  }

  /** The server started or stopped a take (the status follows within a second). */
  taken(msg) {
    this.say("");
    const take = msg.take ?? {};
    if (msg.type === "take_started") {
      const created = Date.parse(take.created ?? "");
      const ago = Number.isFinite(created) ? Math.max(0, this.serverNow() - created) : 0;
      this.mine = take.id ?? null;
      this.show({ take: take.id, startPerf: performance.now() - ago });
    } else {
      this.show(null);
      this.say(`take ${take.id ?? ""} ${take.status ?? "stopped"}`);
      this.moveOn(take.id);
    }
    this.onChange();
  }

  /** Ready for the next take once ours has stopped: 3 → 4, 3A → 3A (a trailing number counts). */
  moveOn(id) {
    if (this.mine === null || (id != null && id !== this.mine)) return;
    this.mine = null;
    this.el.take.value = this.el.take.value.replace(/(\d+)$/, (d) => String(Number(d) + 1).padStart(d.length, "0"));
  }

  show(recording) {
    const was = this.recording;
    this.recording = recording;
    const e = this.el;
    const on = Boolean(recording);
    e.rec.setAttribute("aria-pressed", String(on));
    e.rec.textContent = on ? "■ STOP" : "● REC";
    const next = this.next();
    e.rec.title = on ? `Stop take ${recording.take}` : next ? `Record take ${next}` : "Record a take (scene and take: Controls)";
    for (const input of [e.scene, e.take, e.camera]) input.disabled = on;
    if (Boolean(was) !== on) this.onChange();
  }

  /** Mirror status.recording: the take, its start, and why it stopped (a full disk). */
  reflect(status) {
    const rec = status.recording ?? null;
    const was = this.recording;
    if (rec?.recording) {
      if (was?.take !== rec.take) {
        // Started elsewhere (or before this page opened): its recorded seconds for now, then
        // the take's own start time once the server says it.
        this.show({ take: rec.take, startPerf: performance.now() - 1000 * (rec.seconds ?? 0) });
        this.fetchStart(rec.take);
      }
      return;
    }
    if (!was) return;
    this.show(null);
    if (rec?.status?.startsWith("stopped")) this.say(rec.message || rec.status);
    this.moveOn(rec?.take ?? was.take);
  }

  async fetchStart(id) {
    try {
      const res = await fetch(`/api/takes/${encodeURIComponent(id)}`, { cache: "no-store" });
      const take = res.ok ? await res.json() : null;
      const created = Date.parse(take?.created ?? "");
      if (Number.isFinite(created) && this.recording?.take === id) {
        this.recording = { ...this.recording, startPerf: performance.now() - Math.max(0, this.serverNow() - created) };
      }
    } catch (err) {
      console.warn("agecast: cannot read the take's start", err?.message ?? err);
    }
  }

  /** The tally (null: not recording): the take and the seconds it has run. */
  tally() {
    const r = this.recording;
    return r ? { take: r.take, seconds: (performance.now() - r.startPerf) / 1000 } : null;
  }
}
