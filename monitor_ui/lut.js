// Display LUTs: this browser views the raw side, the aged side or both through a 3D LUT the
// server offers (setting display_luts; GET /api/luts). Only what this window shows changes: the
// picture, the takes and every output stay as they are. The LUT is applied on this machine's GPU
// (WebGL2: the decoded picture as a texture, the LUT as a 3D texture sampled trilinearly), in
// the same paint as the plain canvas would be, so a LUT costs no frame.

export const LUT_SIDES = ["both", "raw", "aged"];

const VERTEX = `#version 300 es
in vec2 corner;          // the unit square
uniform vec4 src;        // the part of the picture: x, y, w, h as fractions of the picture
uniform vec4 dst;        // where it goes: x, y, w, h as fractions of the canvas
out vec2 uv;
void main() {
  uv = src.xy + corner * src.zw;
  vec2 p = dst.xy + corner * dst.zw;
  gl_Position = vec4(p.x * 2.0 - 1.0, 1.0 - p.y * 2.0, 0.0, 1.0);
}`;

const FRAGMENT = `#version 300 es
precision highp float;
precision highp sampler3D;
uniform sampler2D picture;
uniform sampler3D lut;
uniform float points;    // the LUT's points per axis
uniform bool through;    // this part is viewed through the LUT
in vec2 uv;
out vec4 colour;
void main() {
  vec3 c = texture(picture, uv).rgb;
  if (through) c = texture(lut, (c * (points - 1.0) + 0.5) / points).rgb;
  colour = vec4(c, 1.0);
}`;

// --- the server's LUTs -----------------------------------------------------------------------

let listing = null; // Promise of [{name, size}]
const textures = new Map(); // name → Promise of {size, data: Uint8Array}

/** The LUTs the server offers (fetched once per page). */
export function lutList() {
  listing ??= fetch("/api/luts", { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : { luts: [] }))
    .then((body) => body.luts ?? [])
    .catch(() => []);
  return listing;
}

/** One LUT's texels (fetched once per page): {size, data}. Rejects with a message to show. */
export function lutTexture(name) {
  if (!textures.has(name)) {
    const got = fetch(`/api/luts/${encodeURIComponent(name)}`, { credentials: "same-origin" }).then(async (r) => {
      if (!r.ok) throw new Error(`display LUT ${name}: the server said ${r.status}`);
      const size = Number(r.headers.get("X-Lut-Size"));
      const data = new Uint8Array(await r.arrayBuffer());
      if (!(size >= 2) || data.length !== size * size * size * 4) throw new Error(`display LUT ${name}: a malformed texture`);
      return { size, data };
    });
    got.catch(() => textures.delete(name)); // a failure may be tried again
    textures.set(name, got);
  }
  return textures.get(name);
}

// --- drawing through a LUT -------------------------------------------------------------------

function compile(gl, type, text) {
  const shader = gl.createShader(type);
  gl.shaderSource(shader, text);
  gl.compileShader(shader);
  if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader) || "shader");
  return shader;
}

/** A WebGL2 canvas that draws a view's parts, each plain or through the LUT. */
export class LutPainter {
  /** Throws if this browser has no WebGL2 (the caller says so and stays plain). */
  constructor(canvas) {
    const gl = canvas.getContext("webgl2", { alpha: false, antialias: false, desynchronized: true, preserveDrawingBuffer: true });
    if (!gl) throw new Error("this browser has no WebGL2: a display LUT needs it");
    this.canvas = canvas;
    this.gl = gl;
    const program = gl.createProgram();
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program) || "link");
    gl.useProgram(program);
    this.at = Object.fromEntries(["src", "dst", "picture", "lut", "points", "through"].map((n) => [n, gl.getUniformLocation(program, n)]));
    const square = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, square);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([0, 0, 1, 0, 0, 1, 1, 1]), gl.STATIC_DRAW);
    const corner = gl.getAttribLocation(program, "corner");
    gl.enableVertexAttribArray(corner);
    gl.vertexAttribPointer(corner, 2, gl.FLOAT, false, 0, 0);
    this.picture = this.texture(gl.TEXTURE0, gl.TEXTURE_2D, gl.NEAREST); // drawn 1:1
    this.lut = this.texture(gl.TEXTURE1, gl.TEXTURE_3D, gl.LINEAR); // trilinear
    gl.uniform1i(this.at.picture, 0);
    gl.uniform1i(this.at.lut, 1);
    this.loaded = null; // the name of the LUT in the 3D texture
  }

  texture(unit, target, filter) {
    const gl = this.gl;
    const t = gl.createTexture();
    gl.activeTexture(unit);
    gl.bindTexture(target, t);
    for (const p of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(target, p, filter);
    for (const p of [gl.TEXTURE_WRAP_S, gl.TEXTURE_WRAP_T, gl.TEXTURE_WRAP_R]) gl.texParameteri(target, p, gl.CLAMP_TO_EDGE);
    return t;
  }

  /** Put LUT `name`'s texels ({size, data}) in the 3D texture. */
  load(name, { size, data }) {
    const gl = this.gl;
    gl.activeTexture(gl.TEXTURE1);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    gl.texImage3D(gl.TEXTURE_3D, 0, gl.RGBA8, size, size, size, 0, gl.RGBA, gl.UNSIGNED_BYTE, data);
    gl.uniform1f(this.at.points, size);
    this.loaded = name;
  }

  /** Draw `parts` ({src, dx, dy, side}) of `source` (w × h); parts whose side is in `sides`
   * go through the LUT. */
  draw(source, w, h, parts, sides) {
    const gl = this.gl;
    const cw = this.canvas.width;
    const ch = this.canvas.height;
    gl.viewport(0, 0, cw, ch);
    gl.activeTexture(gl.TEXTURE0);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, source);
    for (const { src, dx, dy, side } of parts) {
      gl.uniform4f(this.at.src, src.x / w, src.y / h, src.w / w, src.h / h);
      gl.uniform4f(this.at.dst, dx / cw, dy / ch, src.w / cw, src.h / ch);
      gl.uniform1i(this.at.through, sides.includes(side) ? 1 : 0);
      gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    }
  }
}
