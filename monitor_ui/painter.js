// The painter: every decoded picture goes to every registered window (Display) in the same
// task, so the main window and a second screen always hold the same frame index. It also
// measures what it paints: glass-to-glass latency (capture → painted) and painted fps.

import { nowMs } from "./stream.js";

const GLASS_WINDOW = 100; // frames in the shown p50/p95

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

export class Painter {
  constructor(display) {
    this.displays = [display];
    this.glass = []; // the last GLASS_WINDOW glass-to-glass latencies, ms
    this.unsent = []; // latencies not yet reported to the server
    this.paintTimes = []; // performance.now() of paints in the last second
    this.lastMeta = null; // the header of the last picture painted
    this.lastPaintPerf = 0;
    this.firstPaintPerf = null;
  }

  /** Draw `source` in every window now. `offsetMs` (server − page clock) turns the capture
   * time into a latency; `measure` false (a review) paints without counting latency. */
  paint(source, meta, { offsetMs = 0, measure = true } = {}) {
    const at = nowMs();
    for (let i = this.displays.length - 1; i >= 0; i--) {
      const d = this.displays[i];
      if (!d.alive()) {
        this.displays.splice(i, 1);
        continue;
      }
      try {
        d.paint(source, meta, at);
      } catch (err) {
        console.warn("agecast: painting a window failed", err);
      }
    }
    const latency = nowMs() + offsetMs - meta.captureMs;
    if (measure && Number.isFinite(latency) && latency > -1000 && latency < 60000) {
      this.glass.push(latency);
      if (this.glass.length > GLASS_WINDOW) this.glass.shift();
      this.unsent.push(Math.round(latency * 10) / 10);
      if (this.unsent.length > GLASS_WINDOW) this.unsent.shift();
    }
    const perf = performance.now();
    this.paintTimes.push(perf);
    this.trim(perf);
    this.lastPaintPerf = perf;
    this.firstPaintPerf ??= perf;
    this.lastMeta = meta;
  }

  trim(perf) {
    while (this.paintTimes.length && this.paintTimes[0] < perf - 1000) this.paintTimes.shift();
  }

  /** Forget the pictures and latencies so far (another camera, a review, back to live). */
  forget({ latencies = true } = {}) {
    this.lastMeta = null;
    if (latencies) {
      this.glass.length = 0;
      this.unsent = [];
    }
  }

  /** Latencies measured since the last call, for the server's status. */
  takeUnsent() {
    const out = this.unsent;
    this.unsent = [];
    return out;
  }

  /** What was painted: {flowing, fps, glass: {p50, p95}, lastMeta, sinceLastPaintMs}. */
  stats(noFramesMs) {
    const perf = performance.now();
    this.trim(perf);
    const sorted = [...this.glass].sort((a, b) => a - b);
    const flowing = Boolean(this.lastMeta) && perf - this.lastPaintPerf < noFramesMs;
    return {
      flowing,
      fps: flowing ? this.paintTimes.length : 0,
      glass: { p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95) },
      lastMeta: this.lastMeta,
      lastPaintPerf: this.lastPaintPerf,
    };
  }

  add(display) {
    if (!this.displays.includes(display)) this.displays.push(display);
  }

  has(display) {
    return this.displays.includes(display);
  }

  get windows() {
    return this.displays.filter((d) => d.alive());
  }
}
