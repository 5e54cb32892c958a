// Going from node to node of the fleet (docs/fleet.md). Video always comes from the node that
// owns the camera: the browser goes there, carrying a one-time ticket this node signs
// (POST /api/fleet/ticket), and that node makes its own session from it.
// A page signed in through a ticket (status.fleet.via) asks nothing of its own node: the way
// on is back through the node it came from, whose session this browser still holds there
// (/?node=NAME&camera=CAM makes that node sign the next ticket).

import { errorText } from "./controls.js";

export class FleetHops {
  /** @param {object} opts  status(): the latest status; say(text): the page's message line */
  constructor(win, { status, say }) {
    this.win = win;
    this.status = status;
    this.say = say;
  }

  /** Watch ``node``'s ``camera`` (null: its first). */
  async go(node, camera) {
    const fleet = this.status()?.fleet;
    const via = fleet?.via;
    if (via) {
      const home = fleet.nodes.find((n) => n.name === via);
      const q = new URLSearchParams();
      if (node !== via) q.set("node", node);
      if (camera) q.set("camera", camera);
      this.win.location.assign(`${home?.url ?? ""}/?${q}`);
      return;
    }
    try {
      const res = await this.win.fetch("/api/fleet/ticket", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ node, camera }),
      });
      const body = await res.json().catch(() => null);
      if (!res.ok) throw new Error(errorText(body) || `the server refused (${res.status})`);
      this.win.location.assign(body.url);
    } catch (err) {
      this.say(`Cannot open ${node}: ${err.message ?? err}`);
    }
  }

  /** Back to the node this sign-in came from. */
  back() {
    const fleet = this.status()?.fleet;
    const home = fleet?.nodes.find((n) => n.name === fleet.via);
    if (home?.url) this.win.location.assign(`${home.url}/`);
  }

  /** The page opened as /?node=NAME[&camera=CAM] (from another node): go on to that node. */
  follow(params) {
    const node = params.get("node");
    if (!node) return false;
    this.go(node, params.get("camera"));
    return true;
  }
}
