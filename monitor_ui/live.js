// The live connection of the main window: which camera it shows, its /ws/monitor picture
// stream and /ws/control socket, and the server's latest status document for that camera.

import { ControlChannel } from "./controls.js";
import { MonitorStream } from "./stream.js";

/** `path` for one camera (null: the server's first), e.g. /ws/monitor?camera=B. */
export const forCamera = (path, camera) => (camera ? `${path}?camera=${encodeURIComponent(camera)}` : path);

export class LiveFeed {
  /**
   * @param {object} opts
   *   codec: "h264" | "jpeg"; camera: the camera asked for (null: the first);
   *   onPicture(source, meta); onStatus(status); onHello(hello); onChange(); onError(text);
   *   onTake(message) (a take started or stopped); onUnknownCamera(); onFaces(message) (a
   *   picture's faces, with a cast)
   */
  constructor(opts) {
    this.opts = opts;
    this.camera = opts.camera ?? null;
    this.status = null; // the server's status, merged from /api/status and the sockets
    this.helloPerf = 0; // performance.now() of the last hello (or camera switch)
    this.stream = new MonitorStream({
      codec: opts.codec,
      path: forCamera("/ws/monitor", this.camera),
      onPicture: (source, meta) => opts.onPicture(source, meta),
      onMessage: (msg) => {
        if (!(msg.type === "error" && msg.fatal && this.camera)) return false;
        // A camera this server does not run (an old link): show its first camera instead.
        console.warn("agecast: the server says:", msg.error);
        opts.onUnknownCamera?.();
        return true;
      },
      onHello: (hello) => {
        this.helloPerf = performance.now();
        opts.onHello?.(hello);
        this.fetchStatus(); // the socket's first status comes a second later
        opts.onChange();
      },
      onStatus: (s) => this.setStatus(s),
      onFaces: (msg) => opts.onFaces?.(msg),
      onState: () => opts.onChange(),
    });
    this.channel = new ControlChannel({
      camera: this.camera,
      onStatus: (s) => this.setStatus(s),
      onError: (text) => opts.onError(text),
    });
    this.channel.onTake = (msg) => opts.onTake?.(msg);
  }

  start() {
    this.stream.start();
  }

  get codec() {
    return this.stream.codec;
  }

  get state() {
    return this.stream.state;
  }

  get clock() {
    return this.stream.clock;
  }

  get counts() {
    return this.stream.counts;
  }

  get fps() {
    return this.stream.hello?.fps ?? this.status?.source?.fps ?? null;
  }

  /** The server's UTC offset in minutes (its hello), for the live timecode; null if not sent. */
  get tzOffsetMin() {
    const offset = this.stream.hello?.tz_offset_min;
    return Number.isFinite(offset) ? offset : null;
  }

  setStatus(s) {
    if (!s || typeof s !== "object" || Array.isArray(s)) return;
    if (this.camera && s.camera && s.camera !== this.camera) return; // late, from the camera shown before
    this.status = { ...(this.status ?? {}), ...s };
    this.opts.onStatus(this.status);
  }

  /** Watch (and control) another camera: both sockets reconnect to it. */
  showCamera(name) {
    this.camera = name;
    this.status = null;
    this.helloPerf = performance.now();
    this.channel.setCamera(name);
    this.stream.switchPath(forCamera("/ws/monitor", name));
  }

  async fetchStatus() {
    try {
      const res = await fetch(forCamera("/api/status", this.camera), { cache: "no-store" });
      if (res.ok) this.setStatus(await res.json());
    } catch (err) {
      console.warn("agecast: /api/status did not answer", err?.message ?? err);
    }
  }

  /** Report the page's glass-to-glass latencies (the server's status shows them). */
  report(latencies, frame) {
    if (latencies.length) this.stream.send({ type: "stats", glass_ms: latencies, frame });
  }

  /** Close the picture socket while a take is reviewed; the server keeps the live picture. */
  pause() {
    this.stream.pause();
  }

  resume() {
    this.helloPerf = performance.now();
    this.stream.resume();
  }
}
