// Camera picker: with several cameras (the server's hello lists them) the top bar gets a button
// per camera, a dot on each for its source's state. Picking one reconnects the monitor and
// control sockets to it (?camera=NAME). With one camera nothing shows.

const STATE_TONE = { live: "ok", "no signal": "bad", connecting: "warn", ended: "muted" };

export class CameraPicker {
  /**
   * @param {Document} doc
   * @param {object} opts  current: the camera asked for (null: the server's first);
   *   onPick(name): switch to that camera
   */
  constructor(doc, { current, onPick }) {
    this.doc = doc;
    this.el = doc.getElementById("camera-picker");
    this.current = current;
    this.onPick = onPick;
    this.names = [];
    this.el?.addEventListener("click", (event) => {
      const b = event.target.closest("button[data-camera]");
      if (!b) return;
      b.blur(); // keys (Space) must reach the monitor, not re-click the button
      this.pick(b.dataset.camera);
    });
  }

  pick(name) {
    if (!this.names.includes(name) || name === this.current) return;
    this.current = name;
    this.render();
    this.onPick(name);
  }

  /** The monitor socket's hello: the cameras the server runs and the one this socket shows. */
  hello(hello) {
    const names = Array.isArray(hello.cameras) ? hello.cameras.map(String) : [];
    if (typeof hello.camera === "string") this.current = hello.camera;
    if (names.join("\n") !== this.names.join("\n")) {
      this.names = names;
      this.build();
    }
    this.render();
  }

  build() {
    const doc = this.doc;
    const head = doc.createElement("span");
    head.className = "cameras-head";
    head.textContent = "Cam";
    const buttons = this.names.map((name) => {
      const b = doc.createElement("button");
      b.type = "button";
      b.dataset.camera = name;
      b.title = `Watch camera ${name}`;
      const dot = doc.createElement("span");
      dot.className = "dot";
      dot.dataset.tone = "muted";
      b.append(dot, doc.createTextNode(name));
      return b;
    });
    this.el?.replaceChildren(head, ...buttons);
  }

  render() {
    if (!this.el) return;
    this.el.hidden = this.names.length < 2;
    for (const b of this.el.querySelectorAll("button[data-camera]")) {
      b.setAttribute("aria-pressed", String(b.dataset.camera === this.current));
    }
  }

  /** status.cameras: each camera's state on its dot, and in its button's title. */
  reflect(cameras) {
    if (!this.el || !Array.isArray(cameras)) return;
    for (const entry of cameras) {
      const b = [...this.el.querySelectorAll("button[data-camera]")].find(
        (x) => x.dataset.camera === entry?.name,
      );
      if (!b) continue;
      const state = String(entry.state ?? "");
      const tone = entry.error ? "bad" : (STATE_TONE[state] ?? "muted");
      const dot = b.querySelector(".dot");
      if (dot.dataset.tone !== tone) dot.dataset.tone = tone;
      dot.title = state;
      b.title = `Watch camera ${entry.name} — ${state}${entry.source ? ` · ${entry.source}` : ""}`;
    }
  }
}
