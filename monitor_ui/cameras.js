// Camera picker: with several cameras (the server's hello lists them) the top bar gets a button
// per camera, a dot on each for its source's state. Picking one reconnects the monitor and
// control sockets to it (?camera=NAME). With one camera nothing shows.
// With a fleet (status.fleet, docs/fleet.md) the other nodes' cameras follow, grouped by node,
// each with its state; picking one hands over to fleet.js (the browser goes to that node).

const STATE_TONE = { live: "ok", "no signal": "bad", connecting: "warn", ended: "muted" };

/** What a fleet camera's dot says: on air, no signal, FX error, node unreachable … */
export function fleetState(node, cam) {
  if (!node.reachable) return { text: "node unreachable", tone: "bad" };
  if (cam.fx === "error" || cam.error) return { text: "FX error", tone: "bad" };
  if (cam.state === "live") return { text: "on air", tone: "ok" };
  return { text: String(cam.state ?? ""), tone: STATE_TONE[cam.state] ?? "muted" };
}

export class CameraPicker {
  /**
   * @param {Document} doc
   * @param {object} opts  current: the camera asked for (null: the server's first);
   *   onPick(name): switch to that camera; onPickNode(node, camera): another node's camera
   *   (camera null: that node's first), onBack(): back to the node this sign-in came from
   */
  constructor(doc, { current, onPick, onPickNode, onBack }) {
    this.doc = doc;
    this.el = doc.getElementById("camera-picker");
    this.current = current;
    this.onPick = onPick;
    this.onPickNode = onPickNode;
    this.onBack = onBack;
    this.names = [];
    this.peers = []; // status.fleet's other nodes
    this.via = null; // the node this sign-in came from (a fleet ticket)
    this.fleetKey = "";
    this.el?.addEventListener("click", (event) => {
      const b = event.target.closest("button[data-camera], button[data-node], button[data-back]");
      if (!b) return;
      b.blur(); // keys (Space) must reach the monitor, not re-click the button
      if (b.dataset.back !== undefined) this.onBack?.();
      else if (b.dataset.node) this.onPickNode?.(b.dataset.node, b.dataset.camera || null);
      else this.pick(b.dataset.camera);
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
    const parts = [];
    if (this.via) {
      const back = this.button(`← ${this.via}`, `Back to node ${this.via}, where you signed in`);
      back.dataset.back = "";
      parts.push(back);
    }
    parts.push(this.head(this.peers.length ? this.fleetName ?? "Cam" : "Cam"));
    parts.push(...this.names.map((name) => this.button(name, `Watch camera ${name}`, name)));
    for (const node of this.peers) {
      const group = doc.createElement("span");
      group.className = "fleet-node";
      group.dataset.fleetNode = node.name;
      group.append(this.head(node.name));
      const cams = node.cameras.length ? node.cameras.map((c) => c.name) : [null];
      for (const cam of cams) {
        const b = this.button(cam ?? "—", `Watch ${node.name}'s camera ${cam ?? ""}`, cam);
        b.dataset.node = node.name;
        group.append(b);
      }
      parts.push(group);
    }
    this.el?.replaceChildren(...parts);
  }

  head(text) {
    const head = this.doc.createElement("span");
    head.className = "cameras-head";
    head.textContent = text;
    return head;
  }

  button(text, title, camera) {
    const b = this.doc.createElement("button");
    b.type = "button";
    if (camera != null) b.dataset.camera = camera;
    b.title = title;
    const dot = this.doc.createElement("span");
    dot.className = "dot";
    dot.dataset.tone = "muted";
    b.append(dot, this.doc.createTextNode(text));
    return b;
  }

  /** status.fleet: every other node's cameras, grouped by node, with their state. */
  reflectFleet(fleet) {
    const nodes = Array.isArray(fleet?.nodes) ? fleet.nodes : [];
    this.peers = nodes.filter((n) => !n.here).map((n) => ({ ...n, cameras: n.cameras ?? [] }));
    this.via = fleet?.via ?? null;
    this.fleetName = fleet?.node ?? null;
    const key = JSON.stringify([this.via, this.peers.map((n) => [n.name, n.cameras.map((c) => c.name)])]);
    if (key !== this.fleetKey) {
      this.fleetKey = key;
      this.build();
    }
    for (const node of this.peers) {
      const group = this.el?.querySelector(`[data-fleet-node="${CSS.escape(node.name)}"]`);
      for (const b of group?.querySelectorAll("button[data-node]") ?? []) {
        const cam = node.cameras.find((c) => c.name === b.dataset.camera) ?? {};
        const { text, tone } = node.cameras.length ? fleetState(node, cam) : fleetState(node, { state: "no cameras" });
        b.dataset.state = text;
        b.querySelector(".dot").dataset.tone = tone;
        b.title = `${node.name} · ${b.dataset.camera ?? "no camera known"} — ${text}${node.error ? ` (${node.error})` : ""}`;
      }
    }
    this.render();
  }

  render() {
    if (!this.el) return;
    this.el.hidden = this.names.length < 2 && this.peers.length === 0;
    for (const b of this.el.querySelectorAll("button[data-camera]:not([data-node])")) {
      b.setAttribute("aria-pressed", String(b.dataset.camera === this.current));
    }
  }

  /** status.cameras: each camera's state on its dot, and in its button's title. */
  reflect(cameras) {
    if (!this.el || !Array.isArray(cameras)) return;
    for (const entry of cameras) {
      const b = [...this.el.querySelectorAll("button[data-camera]:not([data-node])")].find(
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
