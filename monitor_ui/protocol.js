// The /ws/monitor wire format (server/agecast/media/protocol.py is the reference).

export const HEADER_SIZE = 40;
const MAGIC = [0x41, 0x47, 0x43, 0x31]; // "AGC1"
const VERSION = 1;

export const FLAG_KEY = 1;
export const FLAG_JPEG = 2;
export const FLAG_FX_ERROR = 4;

export const LAYOUTS = ["side-by-side", "aged", "raw"];
export const FX_STATES = ["on", "no face", "bypass", "error", "no signal"]; // FxState, in wire order

/**
 * Parse one binary picture message. Returns {header, payload} or throws an Error saying why;
 * the caller drops the message with a warning.
 */
export function parsePicture(buffer) {
  if (!(buffer instanceof ArrayBuffer) || buffer.byteLength < HEADER_SIZE) {
    throw new Error(`picture message shorter than its ${HEADER_SIZE}-byte header`);
  }
  const view = new DataView(buffer);
  for (let i = 0; i < MAGIC.length; i++) {
    if (view.getUint8(i) !== MAGIC[i]) throw new Error("not an agecast picture message");
  }
  if (view.getUint8(4) !== VERSION) throw new Error(`unsupported version ${view.getUint8(4)}`);
  const flags = view.getUint8(5);
  const length = view.getUint32(32, true);
  if (HEADER_SIZE + length > buffer.byteLength) {
    throw new Error(`payload length ${length} runs past the message (${buffer.byteLength} B)`);
  }
  const header = {
    key: (flags & FLAG_KEY) !== 0,
    jpeg: (flags & FLAG_JPEG) !== 0,
    fxError: (flags & FLAG_FX_ERROR) !== 0,
    layout: LAYOUTS[view.getUint8(6)] ?? "side-by-side",
    fx: FX_STATES[view.getUint8(7)] ?? "error",
    index: view.getUint32(8, true),
    // ns since the epoch → ms; a double holds ms since 1970 with µs precision.
    captureMs: Number(view.getBigUint64(12, true)) / 1e6,
    sendMs: Number(view.getBigUint64(20, true)) / 1e6,
    width: view.getUint16(28, true),
    height: view.getUint16(30, true),
    length,
  };
  const payload = new Uint8Array(buffer, HEADER_SIZE, length);
  return { header, payload };
}

/** Parse a text message into an object with a string `type`; throws when it is not one. */
export function parseText(text) {
  const msg = JSON.parse(text);
  if (msg === null || typeof msg !== "object" || typeof msg.type !== "string") {
    throw new Error("text message without a type");
  }
  return msg;
}

/** Where raw and aged lie in a picture of the given layout (null = not in the picture). */
export function halves(layout, width, height) {
  if (layout === "side-by-side") {
    const w = Math.floor(width / 2);
    return { raw: { x: 0, y: 0, w, h: height }, aged: { x: w, y: 0, w, h: height } };
  }
  const full = { x: 0, y: 0, w: width, h: height };
  return layout === "raw" ? { raw: full, aged: null } : { raw: null, aged: full };
}
