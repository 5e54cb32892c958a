// One window's overlay: the header and footer read-outs (identity, FX and connection badges,
// the REC tally, timecode, take, fps, latency) and the notice over the picture. It only shows
// the status model it is given (see status.js); it owns no state of the stream.

// By the server's FxState names (server/agecast/frames.py); unknown: anything else.
export const FX_TEXT = {
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
const STATE_NOTICE = {
  connecting: ["CONNECTING", "Waiting for the agecast server"],
  reconnecting: ["RECONNECTING", "The agecast server is not answering — retrying"],
  "no signal": ["NO SIGNAL", (m) => (m.sourceUri ? `No pictures from ${m.sourceUri}` : "No pictures from the camera")],
  "main closed": ["MAIN WINDOW CLOSED", "Continuing on this screen alone in a moment"],
  "signed out": ["SIGNED OUT", "This link has expired or was revoked — ask the operator for a new one"],
};

const fmtMs = (value) => (Number.isFinite(value) ? `${Math.round(value)}` : "–");
const fmtMs1 = (value) => (Number.isFinite(value) ? value.toFixed(1) : "–");
const count = (value) => (Number.isFinite(value) ? String(value) : "–");

/** mm:ss (h:mm:ss past an hour) of a duration in seconds. */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const mm = String(Math.floor(s / 60) % 60).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return s >= 3600 ? `${Math.floor(s / 3600)}:${mm}:${ss}` : `${mm}:${ss}`;
}

export class Overlay {
  constructor(doc) {
    this.doc = doc;
    this.notice = doc.getElementById("notice");
  }

  set(id, text) {
    const el = this.doc.getElementById(id);
    if (el && el.textContent !== text) el.textContent = text;
    return el;
  }

  badge(id, [text, tone]) {
    const el = this.set(id, text);
    if (el && el.dataset.tone !== tone) el.dataset.tone = tone;
  }

  /** Show the status model (the same for every window); cheap enough for a few times a second. */
  update(model) {
    const d = this.doc;
    const id = model.identity || {};
    this.set("identity-name", id.display_name || id.id || "No identity");
    this.set("identity-age", id.age_label || "");
    d.getElementById("identity-age").hidden = !id.age_label;
    this.set("identity-actor", id.actor && id.actor !== "none" ? id.actor : "");
    this.badge("fx-badge", FX_TEXT[model.fx] || FX_TEXT.unknown);
    const review = model.state === "review" && model.review;
    this.badge("state-badge", review ? [model.review, "review"] : STATE_TEXT[model.state] || STATE_TEXT.connecting);
    this.showRecording(model.recording);
    this.set("m-tc", model.timecode || "--:--:--:--");
    this.set("m-take", model.take || "–");
    this.set("m-fps", Number.isFinite(model.fps) ? model.fps.toFixed(1) : "–");
    this.set("m-g2g", `${fmtMs(model.glass?.p50)} / ${fmtMs(model.glass?.p95)}`);
    this.set("m-server", fmtMs(model.serverLatency?.p50));
    this.set("m-viewers", model.viewers == null ? "–" : String(model.viewers));
    this.showCast(model.cast);
    this.set("m-frame", model.index >= 0 ? String(model.index).padStart(6, "0") : "–");
    this.set("m-format", model.format || "–");
    d.body.dataset.state = model.state;
    d.body.dataset.fx = model.fx || "";
    const notice = STATE_NOTICE[model.state];
    this.notice.hidden = !notice;
    if (notice) {
      this.set("notice-title", notice[0]);
      this.set("notice-detail", typeof notice[1] === "function" ? notice[1](model) : notice[1]);
    }
  }

  /** With a cast: the last picture's faces (recognised / unknown / ambiguous) and the time
   * recognising one face takes. */
  showCast(cast) {
    this.doc.body.classList.toggle("has-cast", Boolean(cast));
    if (!cast) return;
    const f = cast.faces ?? {};
    const faces = this.set("m-faces", `${count(f.recognised)} / ${count(f.unknown)} / ${count(f.ambiguous)}`);
    const waiting = f.pending ? `, ${f.pending} not checked yet` : "";
    faces.title = `${count(f.recognised)} recognised, ${count(f.unknown)} unknown, ${count(f.ambiguous)} ambiguous${waiting}`;
    const ms = cast.recognise_face_ms ?? {};
    this.set("m-recognise", `${fmtMs1(ms.p50)} / ${fmtMs1(ms.p95)}`);
  }

  /** The REC tally: solid red with the take and its running time, on every screen. */
  showRecording(recording) {
    const on = Boolean(recording);
    const badge = this.doc.getElementById("rec-badge");
    if (badge.hidden === on) badge.hidden = !on;
    this.doc.body.classList.toggle("recording", on);
    if (!on) return;
    this.set("rec-take", recording.take ?? "");
    this.set("rec-time", clock(recording.seconds ?? 0));
  }
}
