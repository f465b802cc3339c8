// A PNG of the chart drawn in plain Node (node:zlib for the compression), so
// that chart.png renders on any machine: no librsvg, no fonts, no packages.
// It draws the chart's own primitives (rect, line, text) on an RGB canvas at
// twice the SVG's size, with a 5×7 bitmap font made for this file.
import zlib from 'node:zlib';

// ---- the font: 7 rows of 5 bits per glyph (0x10 = leftmost column), as 14 hex digits ----

const GLYPHS = {
  ' ': '00000000000000',
  '!': '04040404040004',
  '"': '0a0a0000000000',
  '#': '0a0a1f0a1f0a0a',
  $: '040f140e051e04',
  '%': '18190204081303',
  '&': '0c121408151209',
  "'": '04040000000000',
  '(': '02040808080402',
  ')': '08040202020408',
  '*': '0004150e150400',
  '+': '0004041f040400',
  ',': '00000000040408',
  '-': '0000001f000000',
  '.': '00000000000004',
  '/': '01010204081010',
  0: '0e11131519110e',
  1: '040c040404040e',
  2: '0e11010204081f',
  3: '1f02040201110e',
  4: '02060a121f0202',
  5: '1f101e0101110e',
  6: '0608101e11110e',
  7: '1f010204080808',
  8: '0e11110e11110e',
  9: '0e11110f01020c',
  ':': '00000400000400',
  ';': '00000400040408',
  '<': '02040810080402',
  '=': '00001f001f0000',
  '>': '08040201020408',
  '?': '0e110102040004',
  '@': '0e11010d15150e',
  A: '0e1111111f1111',
  B: '1e11111e11111e',
  C: '0e11101010110e',
  D: '1c12111111121c',
  E: '1f10101e10101f',
  F: '1f10101e101010',
  G: '0e11101711110f',
  H: '1111111f111111',
  I: '0e04040404040e',
  J: '0702020202120c',
  K: '11121418141211',
  L: '1010101010101f',
  M: '111b1515111111',
  N: '11111915131111',
  O: '0e11111111110e',
  P: '1e11111e101010',
  Q: '0e11111115120d',
  R: '1e11111e141211',
  S: '0f10100e01011e',
  T: '1f040404040404',
  U: '1111111111110e',
  V: '11111111110a04',
  W: '1111111515150a',
  X: '11110a040a1111',
  Y: '1111110a040404',
  Z: '1f01020408101f',
  '[': '0e08080808080e',
  '\\': '10100804020101',
  ']': '0e02020202020e',
  '^': '040a1100000000',
  _: '0000000000001f',
  '`': '08040000000000',
  a: '00000e010f110f',
  b: '1010161911111e',
  c: '00000e1010110e',
  d: '01010d1311110f',
  e: '00000e111f100e',
  f: '0609081c080808',
  g: '000f11110f010e',
  h: '10101619111111',
  i: '04000c0404040e',
  j: '0200060202120c',
  k: '10101214181412',
  l: '0c04040404040e',
  m: '00001a15151111',
  n: '00001619111111',
  o: '00000e1111110e',
  p: '00001e111e1010',
  q: '00000d130f0101',
  r: '00001619101010',
  s: '00000e100e011e',
  t: '08081c08080906',
  u: '0000111111130d',
  v: '00001111110a04',
  w: '0000111115150a',
  x: '0000110a040a11',
  y: '000011110f010e',
  z: '00001f0204081f',
  '{': '02040408040402',
  '|': '04040404040404',
  '}': '08040402040408',
  '~': '00000815020000',
  µ: '00111111131d10',
  '×': '0000110a040a11',
  '✗': '00110a040a1100',
  '→': '0004021f020400',
  '–': '0000000e000000',
  '—': '0000001f000000',
  '−': '0000001f000000',
  '≥': '0804020408001f',
  '≤': '0204080402001f',
  '÷': '0004001f000400',
  '·': '00000004000000',
  '’': '04040800000000',
  '…': '00000000000015',
  '½': '10101000040817',
};
const FONT = new Map();
for (const [ch, hex] of Object.entries(GLYPHS)) {
  const rows = [];
  for (let i = 0; i < 14; i += 2) rows.push(Number.parseInt(hex.slice(i, i + 2), 16));
  FONT.set(String(ch), rows);
}
const UNKNOWN = [0x1f, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1f];
/** Advance per character, in font pixels (5 columns and a gap). */
const ADVANCE = 6;

function rgb(color) {
  let c = String(color ?? '#000').replace('#', '');
  if (c === 'none') return null;
  if (c.length === 3) c = [...c].map((x) => x + x).join('');
  const n = Number.parseInt(c, 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** An RGB canvas, drawn in SVG coordinates times `scale`. */
class Canvas {
  constructor(width, height, scale) {
    this.scale = scale;
    this.w = Math.round(width * scale);
    this.h = Math.round(height * scale);
    this.px = Buffer.alloc(this.w * this.h * 3, 255);
  }

  /** Fills device pixels [x0, x1) × [y0, y1). */
  fill(x0, y0, x1, y1, color) {
    const c = rgb(color);
    if (!c) return;
    const xa = Math.max(0, Math.round(x0));
    const xb = Math.min(this.w, Math.round(x1));
    const ya = Math.max(0, Math.round(y0));
    const yb = Math.min(this.h, Math.round(y1));
    for (let y = ya; y < yb; y++) {
      for (let x = xa; x < xb; x++) {
        const i = (y * this.w + x) * 3;
        this.px[i] = c[0];
        this.px[i + 1] = c[1];
        this.px[i + 2] = c[2];
      }
    }
  }

  rect({ x, y, w, h, fill }) {
    const s = this.scale;
    this.fill(x * s, y * s, (x + w) * s, (y + h) * s, fill);
  }

  /** Straight lines (the chart's are horizontal or vertical), optionally dashed. */
  line({ x1, y1, x2, y2, stroke, dash }) {
    const s = this.scale;
    const len = Math.hypot(x2 - x1, y2 - y1);
    const steps = Math.max(1, Math.ceil(len * s));
    const [on, off] = dash ?? [len + 1, 0];
    for (let i = 0; i <= steps; i++) {
      const d = (i / steps) * len;
      if (d % (on + off) >= on) continue;
      const x = (x1 + ((x2 - x1) * i) / steps) * s;
      const y = (y1 + ((y2 - y1) * i) / steps) * s;
      this.fill(x - s / 2, y - s / 2, x + s / 2, y + s / 2, stroke);
    }
  }

  /** Text in the bitmap font; `size` is the SVG font size, (x, y) its baseline point. */
  text({ x, y, s, size = 12, anchor = 'start', weight = 'normal', fill = '#222', rotate, halo }) {
    const str = String(s);
    const p = (size / 9) * this.scale; // one font pixel, in device pixels
    const width = (str.length * ADVANCE - 1) * p;
    let start = 0;
    if (anchor === 'middle') start = -width / 2;
    else if (anchor === 'end') start = -width;
    const ox = x * this.scale;
    const oy = y * this.scale;
    // Text space (u along the baseline, v down from the top of the glyphs) to device space.
    const at = rotate === -90 ? (u, v) => [ox + v - 7 * p, oy - u] : (u, v) => [ox + u, oy - 7 * p + v];
    const draw = (color, du, dv) => {
      for (let k = 0; k < str.length; k++) {
        const rows = FONT.get(str[k]) ?? UNKNOWN;
        const gu = start + k * ADVANCE * p;
        for (let r = 0; r < 7; r++) {
          const bits = rows[r];
          if (!bits) continue;
          for (let c = 0; c < 5; c++) {
            if (!(bits & (0x10 >> c))) continue;
            const u0 = gu + c * p + du;
            const v0 = r * p + dv;
            const [ax, ay] = at(u0, v0);
            const [bx, by] = at(u0 + p, v0 + p);
            this.fill(Math.min(ax, bx), Math.min(ay, by), Math.max(ax, bx), Math.max(ay, by), color);
            if (weight === 'bold') {
              const [cx, cy] = at(u0 + p * 0.5, v0);
              const [dx, dy] = at(u0 + p * 1.5, v0 + p);
              this.fill(Math.min(cx, dx), Math.min(cy, dy), Math.max(cx, dx), Math.max(cy, dy), color);
            }
          }
        }
      }
    };
    if (halo) {
      for (const [du, dv] of [
        [-p, 0],
        [p, 0],
        [0, -p],
        [0, p],
      ]) {
        draw('#fff', du, dv);
      }
    }
    draw(fill, 0, 0);
  }
}

// ---- PNG encoding ----

const CRC_TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  CRC_TABLE[n] = c;
}

function crc32(buf) {
  let c = -1;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 255] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

function encodePng(canvas) {
  const { w, h, px } = canvas;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0; // filter: none
    px.copy(raw, y * (w * 3 + 1) + 1, y * w * 3, (y + 1) * w * 3);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A PNG of the primitives ({type: 'rect'|'line'|'text', …}) on a `width`×`height` white page. */
export function renderPng(width, height, primitives, scale = 2) {
  const canvas = new Canvas(width, height, scale);
  for (const p of primitives) canvas[p.type](p);
  return encodePng(canvas);
}
