// Operator controls: a /ws/control socket (POST /api/control when it is down) and the panel.
// The panel always shows the server's status, so every viewer sees the same settings.

const BACKOFF_MS = [250, 500, 1000, 2000];
const SLIDER_SEND_GAP_MS = 80;

export class ControlChannel {
  constructor({ onStatus, onError, camera = null }) {
    this.onStatus = onStatus;
    this.onError = onError;
    this.camera = camera; // several cameras: the one these controls change (null: the first)
    this.ws = null;
    this.attempt = 0;
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      const query = this.camera ? `?camera=${encodeURIComponent(this.camera)}` : "";
      ws = new WebSocket(`${scheme}//${location.host}/ws/control${query}`);
    } catch (err) {
      console.warn("agecast: cannot open the control socket", err);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
    };
    ws.onmessage = (event) => {
      if (this.ws !== ws) return; // a socket of the camera shown before
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        console.warn("agecast: ignored a malformed control message");
        return;
      }
      if (msg?.type === "ack" && msg.status && typeof msg.status === "object") {
        this.onStatus(msg.status);
      } else if (msg?.type === "take_started" || msg?.type === "take_stopped") {
        this.onTake?.(msg); // the record bar (RecordBar)
      } else if (msg?.type === "error") {
        this.onError(String(msg.error ?? "the server refused the change"));
      } else {
        console.warn("agecast: ignored a control message of type", msg?.type);
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      const delay = BACKOFF_MS[Math.min(this.attempt++, BACKOFF_MS.length - 1)];
      setTimeout(() => this.connect(), delay);
    };
    ws.onerror = () => {};
  }

  /** Change another camera's settings from now on: reconnects at once. */
  setCamera(camera) {
    if (camera === this.camera) return;
    this.camera = camera;
    const ws = this.ws;
    this.ws = null; // its close event finds another socket and does not reconnect
    ws?.close();
    this.attempt = 0;
    this.connect();
  }

  /** Send a change; resolves when sent (the status comes back through onStatus). */
  async set(values) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: "set", values }));
      return;
    }
    try {
      const res = await fetch("/api/control", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(this.camera ? { ...values, camera: this.camera } : values),
      });
      const body = await res.json().catch(() => null);
      if (res.ok && body) this.onStatus(body);
      else this.onError(errorText(body) || `the server refused the change (${res.status})`);
    } catch (err) {
      this.onError(`cannot reach the server: ${err.message ?? err}`);
    }
  }
}

export function errorText(body) {
  if (!body) return "";
  if (typeof body.detail === "string") return body.detail;
  if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg ?? String(d)).join("; ");
  return body.error ? String(body.error) : "";
}

/** A slider that sends while it is dragged (at most every SLIDER_SEND_GAP_MS, and once more when
 * let go). While dragged it is in `editing`, so the server's echo does not move it under the
 * hand; `show(value)` shows its value, `send()` sends it. */
export function bindSlider(input, { editing, show, send }) {
  let lastSent = 0;
  let timer = null;
  const push = (final) => {
    show(Number(input.value));
    const now = performance.now();
    clearTimeout(timer);
    if (final || now - lastSent > SLIDER_SEND_GAP_MS) {
      lastSent = now;
      send();
    } else {
      timer = setTimeout(() => push(true), SLIDER_SEND_GAP_MS);
    }
  };
  input.addEventListener("pointerdown", () => editing.add(input));
  input.addEventListener("input", () => {
    editing.add(input);
    push(false);
  });
  input.addEventListener("change", () => {
    push(true);
    setTimeout(() => editing.delete(input), 400);
  });
}

function signedYears(v) {
  return v === 0 ? "0" : `${v > 0 ? "+" : "−"}${Math.abs(Math.round(v))} y`;
}

/** Binds the operator panel's inputs to a ControlChannel and mirrors the server's status. */
export class ControlPanel {
  constructor(doc, channel) {
    this.doc = doc;
    this.channel = channel;
    this.status = null;
    this.el = {
      bypass: doc.getElementById("c-bypass"),
      blend: doc.getElementById("c-blend"),
      blendValue: doc.getElementById("c-blend-value"),
      age: doc.getElementById("c-age"),
      ageRow: doc.getElementById("c-age-row"),
      ageValue: doc.getElementById("c-age-value"),
      regions: doc.getElementById("c-regions"),
      regionInputs: [...doc.querySelectorAll("#c-regions input[data-region]")],
      colour: doc.getElementById("c-colour"),
      aiMark: doc.getElementById("c-aimark"),
      feather: doc.getElementById("c-feather"),
      featherValue: doc.getElementById("c-feather-value"),
      layout: doc.getElementById("c-layout"),
      message: doc.getElementById("c-message"),
    };
    this.editing = new Set(); // inputs being dragged: the server's echo must not move them
    const e = this.el;
    e.bypass.addEventListener("click", () => this.toggleBypass());
    e.colour.addEventListener("click", () =>
      this.send({ color_transfer: this.look().color_transfer === "none" ? "rct" : "none" }),
    );
    e.aiMark.addEventListener("click", () => this.send({ ai_mark: !this.look().ai_mark }));
    e.layout.addEventListener("change", () => this.send({ layout: e.layout.value }));
    this.slider(e.blend, "blend", e.blendValue, (v) => `${Math.round(v * 100)}%`);
    this.slider(e.feather, "mask_feather", e.featherValue, (v) => v.toFixed(2));
    this.slider(e.age, "age", e.ageValue, (v) => `${Math.round(v)} years`);
    for (const input of e.regionInputs) {
      const out = this.doc.getElementById(`${input.id}-value`);
      // every region is sent together: the server takes the four offsets as one value
      this.slider(input, "age_offsets", out, signedYears, () =>
        e.regionInputs.map((i) => Number(i.value)),
      );
    }
  }

  look() {
    return this.status?.look ?? {};
  }

  slider(input, key, out, fmt, valueOf = () => Number(input.value)) {
    bindSlider(input, {
      editing: this.editing,
      show: (v) => (out.textContent = fmt(v)),
      send: () => this.send({ [key]: valueOf() }),
    });
  }

  toggleBypass() {
    return this.send({ bypass: !this.look().bypass });
  }

  send(values) {
    this.el.message.textContent = "";
    return this.channel.set(values);
  }

  showError(text) {
    this.el.message.textContent = text;
  }

  /** Mirror a status document from the server. */
  reflect(status) {
    this.status = status;
    const look = status.look ?? {};
    const e = this.el;
    const bypass = Boolean(look.bypass);
    e.bypass.setAttribute("aria-pressed", String(bypass));
    e.bypass.textContent = bypass ? "FX OFF — bypassed" : "FX ON";
    e.bypass.dataset.tone = bypass ? "warn" : "ok";
    const matched = look.color_transfer !== "none";
    e.colour.setAttribute("aria-pressed", String(matched));
    const kind = { auto: "auto", "rct-lab": "Lab" }[look.color_transfer] ?? "RCT";
    e.colour.textContent = matched ? `Colour: ${kind}` : "Colour OFF";
    e.colour.title = matched
      ? `Colour match on (${kind === "auto" ? "auto: as the identity asks" : kind}); click: off`
      : "Colour match off; click: on (RCT)";
    const marked = look.ai_mark !== false;
    e.aiMark.setAttribute("aria-pressed", String(marked));
    e.aiMark.textContent = marked ? "AI mark ON" : "AI mark OFF";
    if (Number.isFinite(look.blend) && !this.editing.has(e.blend)) {
      e.blend.value = String(look.blend);
      e.blendValue.textContent = `${Math.round(look.blend * 100)}%`;
    }
    // Age: only for identities trained over a range of ages (identity.age_control =
    // [youngest, oldest, default]); the look's age is null until the operator moves it.
    const ages = status.identity?.age_control;
    e.ageRow.hidden = !Array.isArray(ages);
    // Local age (agecast-reage identities): years per region, in the server's region order
    e.regions.hidden = !status.identity?.local_ages;
    const offsets = Array.isArray(look.age_offsets) ? look.age_offsets : [];
    e.regionInputs.forEach((input, i) => {
      if (this.editing.has(input) || !Number.isFinite(offsets[i])) return;
      input.value = String(offsets[i]);
      this.doc.getElementById(`${input.id}-value`).textContent = signedYears(offsets[i]);
    });
    if (Array.isArray(ages) && !this.editing.has(e.age)) {
      const [lo, hi, def] = ages;
      e.age.min = String(lo);
      e.age.max = String(hi);
      const years = Number.isFinite(look.age) ? Math.min(Math.max(look.age, lo), hi) : def;
      e.age.value = String(years);
      e.ageValue.textContent = `${Math.round(years)} years`;
    }
    if (Number.isFinite(look.mask_feather) && !this.editing.has(e.feather)) {
      e.feather.value = String(look.mask_feather);
      e.featherValue.textContent = look.mask_feather.toFixed(2);
    }
    if (typeof status.layout === "string" && this.doc.activeElement !== e.layout) {
      e.layout.value = status.layout;
    }
  }
}
