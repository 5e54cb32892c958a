// One /ws/monitor connection: reconnects by itself, decodes pictures (WebCodecs H.264 or the
// JPEG fallback) and hands each decoded picture to `onPicture(source, meta)` synchronously;
// the picture is closed as soon as that call returns, so the painter must draw it right away.

import { parsePicture, parseText } from "./protocol.js";

const BACKOFF_MS = [250, 500, 1000, 2000]; // then 2000 ms for ever
const PING_EVERY_MS = 2000;
const PING_BURST = 5; // quick pings after connecting, so the clock offset is good at once
const KEYFRAME_REQUEST_GAP_MS = 500;
const MAX_DECODE_QUEUE = 6; // more pending than this: we are behind; skip to the next key frame
const MAX_JPEG_IN_FLIGHT = 3;
// BT.601 limited range, as the server encodes (PyAV converts RGB→YUV with BT.601).
const BT601 = { primaries: "smpte170m", transfer: "smpte170m", matrix: "smpte170m", fullRange: false };

/** This page's clock in ms since the epoch, sub-millisecond and monotonic within a page. */
export const nowMs = () => performance.timeOrigin + performance.now();

export function webCodecsUsable() {
  return window.isSecureContext && typeof window.VideoDecoder === "function";
}

/** Server-minus-page clock offset from ping/pong, keeping the lowest-round-trip samples. */
class ClockOffset {
  constructor() {
    this.samples = []; // {rtt, offset}
    this.offsetMs = 0;
    this.rttMs = null;
  }

  add(sentMs, serverMs, receivedMs) {
    const rtt = receivedMs - sentMs;
    if (!(rtt >= 0) || !Number.isFinite(serverMs)) return;
    this.samples.push({ rtt, offset: serverMs - (sentMs + receivedMs) / 2 });
    if (this.samples.length > 16) this.samples.shift();
    const best = this.samples.reduce((a, b) => (b.rtt < a.rtt ? b : a));
    this.offsetMs = best.offset;
    this.rttMs = best.rtt;
  }

  reset() {
    this.samples = [];
  }
}

export class MonitorStream {
  /**
   * @param {object} opts
   *   codec: "h264" | "jpeg"; onPicture(source, meta); onStatus(status); onState(state, detail);
   *   onHello(hello)
   */
  constructor(opts) {
    this.opts = opts;
    this.codec = opts.codec;
    this.clock = new ClockOffset();
    this.state = "connecting"; // connecting | live | reconnecting
    this.ws = null;
    this.attempt = 0;
    this.hello = null;
    this.decoder = null;
    this.decoderSize = null;
    this.waitingForKey = true;
    this.lastKeyRequest = 0;
    this.chunkTimestamp = 0;
    this.pending = new Map(); // chunk timestamp → meta, until the decoder outputs it
    this.jpegSeq = 0;
    this.jpegPainted = 0;
    this.jpegInFlight = 0;
    this.counts = { received: 0, decoded: 0, dropped: 0, errors: 0, keyframeRequests: 0 };
    this.lastPictureAt = 0;
    this.timers = [];
    this.stopped = false;
  }

  start() {
    this.connect();
    this.timers.push(setInterval(() => this.ping(), PING_EVERY_MS));
  }

  stop() {
    this.stopped = true;
    this.timers.forEach(clearInterval);
    if (this.ws) this.ws.close();
    this.closeDecoder();
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const path = this.opts.path ?? "/ws/monitor"; // a review: /ws/review?take=…
    return `${scheme}//${location.host}${path}${path.includes("?") ? "&" : "?"}codec=${this.codec}`;
  }

  setState(state, detail = "") {
    if (this.state === state) return;
    this.state = state;
    this.opts.onState?.(state, detail);
  }

  /** Close the socket until resume() (while a take is reviewed); nothing reconnects meanwhile. */
  pause() {
    this.stopped = true;
    const ws = this.ws;
    this.ws = null; // its close event finds another socket (none) and does not reconnect
    ws?.close();
    this.hello = null;
    this.closeDecoder();
  }

  resume() {
    if (!this.stopped || this.state === "signed out") return;
    this.stopped = false;
    this.attempt = 0;
    this.setState("connecting");
    this.connect();
  }

  connect() {
    if (this.stopped || this.ws) return;
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (err) {
      console.warn("agecast: cannot open the monitor socket", err);
      this.scheduleReconnect();
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.clock.reset();
      for (let i = 0; i < PING_BURST; i++) setTimeout(() => this.ping(), i * 150);
    };
    ws.onmessage = (event) => {
      try {
        if (typeof event.data === "string") this.onText(event.data);
        else this.onBinary(event.data);
      } catch (err) {
        console.warn("agecast: ignored a malformed monitor message:", err.message ?? err);
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.hello = null;
      this.closeDecoder();
      this.scheduleReconnect();
    };
    ws.onerror = () => {}; // a close event follows; reconnecting happens there
  }

  scheduleReconnect() {
    if (this.stopped) return;
    this.setState("reconnecting");
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    setTimeout(async () => {
      // Refused again and again: a revoked or expired link, not a server that is down.
      if (this.attempt >= 2 && (await signedOut())) {
        this.stopped = true;
        this.setState("signed out");
        return;
      }
      this.connect();
    }, delay);
  }

  /** Watch another stream (another camera's /ws/monitor?camera=…): reconnects at once, or on
   * resume() when paused. */
  switchPath(path) {
    this.opts.path = path;
    if (this.stopped) return;
    const ws = this.ws;
    this.ws = null; // its close event finds another socket and does not reconnect
    ws?.close();
    this.hello = null;
    this.closeDecoder();
    this.attempt = 0;
    this.setState("connecting");
    this.connect();
  }

  switchCodec(codec) {
    this.codec = codec;
    this.opts.onCodec?.(codec);
    if (this.ws) this.ws.close(); // reconnects at once with the new codec
    this.attempt = 0;
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  ping() {
    this.send({ type: "ping", t: nowMs() });
  }

  requestKeyframe() {
    const now = performance.now();
    if (now - this.lastKeyRequest < KEYFRAME_REQUEST_GAP_MS) return;
    this.lastKeyRequest = now;
    this.counts.keyframeRequests += 1;
    this.send({ type: "keyframe" });
  }

  onText(text) {
    const msg = parseText(text);
    if (this.opts.onMessage?.(msg)) return; // a message the owner handles itself (reviews)
    switch (msg.type) {
      case "hello":
        this.onHello(msg);
        break;
      case "status":
        this.opts.onStatus?.(msg);
        break;
      case "faces": // with a cast: who is where in picture msg.i (name tags)
        this.opts.onFaces?.(msg);
        break;
      case "pong":
        this.clock.add(Number(msg.t), Number(msg.server_time_ms), nowMs());
        break;
      case "error":
        console.warn("agecast: the server says:", msg.error ?? msg);
        break;
      default:
        console.warn("agecast: ignored a monitor message of type", msg.type);
    }
  }

  onHello(hello) {
    if (typeof hello.codec !== "string") throw new Error("hello without a codec");
    this.hello = hello;
    this.waitingForKey = true;
    // The hello carries the server clock too: a first offset before any pong comes back.
    if (Number.isFinite(hello.server_time_ms) && this.clock.samples.length === 0) {
      this.clock.offsetMs = hello.server_time_ms - nowMs();
    }
    this.setState("live");
    this.opts.onHello?.(hello);
  }

  onBinary(buffer) {
    const { header, payload } = parsePicture(buffer);
    const meta = { ...header, receivedMs: nowMs(), seq: 0 };
    this.counts.received += 1;
    this.lastPictureAt = performance.now();
    if (header.jpeg) this.decodeJpeg(payload, meta);
    else this.decodeH264(payload, meta);
  }

  // --- WebCodecs -------------------------------------------------------------------------

  ensureDecoder(meta) {
    const size = `${meta.width}x${meta.height}`;
    if (this.decoder && this.decoder.state === "configured" && this.decoderSize === size) {
      return true;
    }
    if (!meta.key) return false; // (re)configure only on a key frame, which carries SPS/PPS
    this.closeDecoder();
    const decoder = new VideoDecoder({
      output: (frame) => this.onDecoded(frame),
      error: (err) => this.onDecoderError(decoder, err),
    });
    this.decoder = decoder;
    this.decoderSize = size;
    try {
      decoder.configure({
        codec: this.hello?.codec || "avc1.42C01F",
        codedWidth: meta.width,
        codedHeight: meta.height,
        optimizeForLatency: true,
        colorSpace: BT601,
      });
    } catch (err) {
      // A codec string this browser cannot even parse: same as unsupported.
      this.onDecoderError(decoder, new DOMException(err.message, "NotSupportedError"));
      return false;
    }
    return true;
  }

  closeDecoder() {
    if (this.decoder && this.decoder.state !== "closed") {
      try {
        this.decoder.close();
      } catch (err) {
        console.warn("agecast: closing the decoder", err);
      }
    }
    this.decoder = null;
    this.decoderSize = null;
    this.pending.clear();
    this.waitingForKey = true;
  }

  onDecoderError(decoder, err) {
    if (decoder !== this.decoder) return;
    if (err?.name === "NotSupportedError") {
      // This browser cannot decode what the server sends: ask for JPEG pictures instead.
      console.warn(`agecast: cannot decode ${this.hello?.codec}; using the JPEG fallback`);
      this.closeDecoder();
      this.switchCodec("jpeg");
      return;
    }
    console.warn("agecast: decoder error, waiting for a key frame:", err?.message ?? err);
    this.counts.errors += 1;
    this.closeDecoder(); // the next key frame configures a fresh one
    this.requestKeyframe();
  }

  decodeH264(payload, meta) {
    if (this.waitingForKey && !meta.key) {
      this.counts.dropped += 1;
      this.requestKeyframe();
      return;
    }
    if (!this.ensureDecoder(meta)) {
      this.counts.dropped += 1;
      this.waitingForKey = true;
      this.requestKeyframe();
      return;
    }
    if (!meta.key && this.decoder.decodeQueueSize > MAX_DECODE_QUEUE) {
      // Behind: skip deltas until the next key frame rather than fall further behind.
      this.counts.dropped += 1;
      this.waitingForKey = true;
      this.requestKeyframe();
      return;
    }
    this.waitingForKey = false;
    const timestamp = (this.chunkTimestamp += 1);
    this.pending.set(timestamp, meta);
    if (this.pending.size > 64) this.pending.delete(this.pending.keys().next().value);
    try {
      this.decoder.decode(
        new EncodedVideoChunk({ type: meta.key ? "key" : "delta", timestamp, data: payload }),
      );
    } catch (err) {
      this.onDecoderError(this.decoder, err);
    }
  }

  onDecoded(frame) {
    const meta = this.pending.get(frame.timestamp);
    this.pending.delete(frame.timestamp);
    try {
      if (meta) {
        this.counts.decoded += 1;
        this.opts.onPicture(frame, meta);
      }
    } catch (err) {
      console.warn("agecast: painting failed", err);
    } finally {
      frame.close();
    }
  }

  // --- JPEG fallback ---------------------------------------------------------------------

  decodeJpeg(payload, meta) {
    if (this.jpegInFlight >= MAX_JPEG_IN_FLIGHT) {
      this.counts.dropped += 1;
      return;
    }
    meta.seq = ++this.jpegSeq;
    this.jpegInFlight += 1;
    createImageBitmap(new Blob([payload], { type: "image/jpeg" }))
      .then((bitmap) => {
        // Decodes of a burst can finish out of order: paint only what is newer than shown.
        if (meta.seq <= this.jpegPainted) {
          this.counts.dropped += 1;
          bitmap.close();
          return;
        }
        this.jpegPainted = meta.seq;
        this.counts.decoded += 1;
        try {
          this.opts.onPicture(bitmap, meta);
        } catch (err) {
          console.warn("agecast: painting failed", err);
        } finally {
          bitmap.close();
        }
      })
      .catch((err) => {
        this.counts.errors += 1;
        console.warn("agecast: a JPEG picture did not decode", err?.message ?? err);
      })
      .finally(() => {
        this.jpegInFlight -= 1;
      });
  }
}

/** True when the server answers but no longer lets this browser in. */
async function signedOut() {
  try {
    const res = await fetch("/api/status", { cache: "no-store" });
    return res.status === 401;
  } catch {
    return false; // the server is not answering: keep trying
  }
}
