// The status model every window shows: built, as a plain object, from what the live feed, the
// painter, the record bar and a review say now. No state of its own.

/** Time of day of an instant (ms since the epoch) as HH:MM:SS:FF at `fps`: the timecode a live
 * feed without one of its own is recorded with. `offsetMin` is the server's UTC offset (its
 * hello says it), so the page shows what the take will say wherever the browser is; without
 * it, this page's zone. */
export function timeOfDay(ms, fps, offsetMin = null) {
  if (!Number.isFinite(ms)) return null;
  const base = Math.max(1, Math.round(fps > 0 ? fps : 30));
  const zoned = Number.isFinite(offsetMin);
  const t = new Date(zoned ? ms + offsetMin * 60000 : ms);
  const [h, m, s] = zoned ? [t.getUTCHours(), t.getUTCMinutes(), t.getUTCSeconds()] : [t.getHours(), t.getMinutes(), t.getSeconds()];
  const ff = Math.floor((t.getUTCMilliseconds() / 1000) * base);
  const two = (n) => String(n).padStart(2, "0");
  return `${two(h)}:${two(m)}:${two(s)}:${two(ff)}`;
}

/** The server's drop counters ({"capture→device": n, …} or a number) as one short line. */
export function describeDropped(dropped) {
  if (Number.isFinite(dropped)) return `server ${dropped}`;
  if (dropped && typeof dropped === "object") {
    const parts = Object.entries(dropped).map(([k, v]) => `${k} ${v}`);
    if (parts.length) return parts.join(" · ");
  }
  return "server –";
}

/**
 * @param {object} now
 *   feed: LiveFeed; painted: Painter.stats(); review: TakesPanel or null (null: live);
 *   recording: RecordBar.tally(); nextTake: "scene/take" the next REC records; noFramesMs
 */
export function statusModel({ feed, painted, review, recording, nextTake, noFramesMs }) {
  const status = feed.status;
  const perf = performance.now();
  const meta = painted.lastMeta;
  const waitedLong = perf - Math.max(painted.lastPaintPerf, feed.helloPerf) > noFramesMs;
  const sourceDown = status?.source?.state === "no signal" || status?.fx === "no signal";
  let state = review ? review.review.stream.state : feed.state;
  if (review && state === "live") state = "review";
  if (state === "live" && (sourceDown || (!painted.flowing && waitedLong))) state = "no signal";
  const codec = feed.codec;
  const format = meta ? `${meta.jpeg ? "JPEG" : "H.264"} ${meta.width}×${meta.height}` : codec === "jpeg" ? "JPEG" : "H.264";
  const connected = !["reconnecting", "connecting", "signed out"].includes(state);
  const live = connected && !review;
  // While the server is away the effect's state is unknown, not "error".
  const fx = !connected || state === "no signal" || review ? null : painted.flowing && meta ? meta.fx : (status?.fx ?? null);
  let timecode = null;
  if (review) timecode = review.timecode();
  else if (meta && connected) timecode = timeOfDay(meta.captureMs, feed.fps, feed.tzOffsetMin);
  let take = nextTake ? `next ${nextTake}` : null;
  if (recording) take = `REC ${recording.take ?? ""}`;
  if (review) take = review.label();
  return {
    state,
    fx,
    identity: (review ? review.identity() : null) ?? status?.identity ?? null,
    fps: painted.fps,
    glass: painted.glass,
    serverLatency: live ? (status?.server_latency_ms ?? null) : null,
    viewers: live ? (status?.viewers ?? null) : null,
    // the cast's read-out: faces by recognition and what recognising costs (null: no cast)
    cast: live ? (status?.cast ?? null) : null,
    index: meta ? meta.index : -1,
    format,
    sourceUri: status?.source?.uri ?? "",
    review: review ? review.label() : null,
    names: review ? review.names() : null,
    recording,
    timecode,
    take,
    // the server burns "AI" into the aged picture now (a fill may crop it: the page shows one)
    aiMark: fx === "on" && status?.look?.ai_mark !== false,
  };
}
