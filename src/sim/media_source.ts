/**
 * Media of the door simulator (door-protocol.md §5): a test-card video source that produces real
 * baseline JPEG frames (MJPEG, as one door family sends), a 400 Hz G.711 tone, and the cutting of
 * frames into CALLUP packets of 1200-byte chunks.
 *
 * The test card is CIF (352×288): eight colour bars and a black box at the bottom with the frame
 * counter drawn in large digits, so a phone that shows the stream proves video is live. The frame
 * counter is also written in a JPEG comment (`COM`) segment, `door-sim frame=N`, for tests.
 *
 * Encoding cost: the DCT of the static bars is computed once; each frame recomputes only the
 * blocks of the counter box and entropy-codes the whole picture (a few ms per frame).
 *
 * @module
 */

import {
  AUDIO_FRAME_BYTES,
  type CallParties,
  CHUNK_SIZE,
  DATA_TYPE,
  DEFAULT_MAGIC,
  encodeMedia,
  type PayloadOffset,
} from "../protocol/mod.ts";
import { encodeG711, type G711Codec } from "./g711.ts";

// ---------------------------------------------------------------------------------------------
// Baseline JPEG encoder (ITU T.81, standard tables of Annex K), YCbCr 4:4:4.

// deno-fmt-ignore
const ZIGZAG = [
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
  13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
  52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
] as const;

// deno-fmt-ignore
const LUMA_Q = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
  14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
  92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
] as const;

// deno-fmt-ignore
const CHROMA_Q = [
  17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
  47, 66, 99, 99, 99, 99, 99, 99, ...new Array<number>(32).fill(99),
] as const;

/** A Huffman table as stored in DHT: code counts per length 1–16, then the symbols. */
interface HuffSpec {
  readonly bits: readonly number[];
  readonly vals: readonly number[];
}

// deno-fmt-ignore
const DC_LUMA: HuffSpec = {
  bits: [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
  vals: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
};
// deno-fmt-ignore
const DC_CHROMA: HuffSpec = {
  bits: [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
  vals: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
};
// deno-fmt-ignore
const AC_LUMA: HuffSpec = {
  bits: [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d],
  vals: [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
    0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52,
    0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25,
    0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45,
    0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64,
    0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83,
    0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
    0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
    0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3,
    0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8,
    0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
  ],
};
// deno-fmt-ignore
const AC_CHROMA: HuffSpec = {
  bits: [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
  vals: [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61,
    0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33,
    0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18,
    0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44,
    0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63,
    0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a,
    0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
    0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
    0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
    0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7,
    0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
  ],
};

/** Code and length per symbol. */
interface HuffCodes {
  readonly code: Uint16Array;
  readonly len: Uint8Array;
}

function buildCodes(spec: HuffSpec): HuffCodes {
  const code = new Uint16Array(256);
  const len = new Uint8Array(256);
  let c = 0;
  let k = 0;
  for (let l = 1; l <= 16; l++) {
    for (let i = 0; i < spec.bits[l - 1]!; i++) {
      const sym = spec.vals[k++]!;
      code[sym] = c++;
      len[sym] = l;
    }
    c <<= 1;
  }
  return { code, len };
}

function scaleQuant(base: readonly number[], quality: number): Uint8Array {
  const q = Math.min(100, Math.max(1, quality));
  const scale = q < 50 ? 5000 / q : 200 - 2 * q;
  return Uint8Array.from(
    base,
    (v) => Math.min(255, Math.max(1, Math.floor((v * scale + 50) / 100))),
  );
}

/** Zig-zag position of each natural (row-major) coefficient index. */
const INV_ZIGZAG = new Uint8Array(64);
ZIGZAG.forEach((natural, k) => (INV_ZIGZAG[natural] = k));

const TMP = new Float64Array(64);

// cos table: C[u][x] = c(u)/2 · cos((2x+1)uπ/16)
const DCT = new Float64Array(64);
for (let u = 0; u < 8; u++) {
  for (let x = 0; x < 8; x++) {
    DCT[u * 8 + x] = (u === 0 ? Math.SQRT1_2 : 1) / 2 * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
  }
}

/**
 * Forward DCT, quantization (`quant` in natural order) and zig-zag of the 8×8 block at (bx, by).
 */
function quantBlock(
  plane: Float32Array,
  width: number,
  bx: number,
  by: number,
  quant: Uint8Array,
  out: Int16Array,
): void {
  const tmp = TMP;
  // tmp[u][y] = Σx C[u][x] · (p[y][x] − 128)
  for (let y = 0; y < 8; y++) {
    const row = (by * 8 + y) * width + bx * 8;
    for (let u = 0; u < 8; u++) {
      let s = 0;
      for (let x = 0; x < 8; x++) s += DCT[u * 8 + x]! * (plane[row + x]! - 128);
      tmp[u * 8 + y] = s;
    }
  }
  for (let v = 0; v < 8; v++) {
    for (let u = 0; u < 8; u++) {
      let s = 0;
      for (let y = 0; y < 8; y++) s += DCT[v * 8 + y]! * tmp[u * 8 + y]!;
      const natural = v * 8 + u; // row v, column u
      out[INV_ZIGZAG[natural]!] = Math.round(s / quant[natural]!);
    }
  }
}

class BitWriter {
  bytes: number[] = [];
  #acc = 0;
  #n = 0;

  write(bits: number, len: number): void {
    this.#acc = (this.#acc << len) | (bits & ((1 << len) - 1));
    this.#n += len;
    while (this.#n >= 8) {
      const b = (this.#acc >>> (this.#n - 8)) & 0xff;
      this.bytes.push(b);
      if (b === 0xff) this.bytes.push(0); // byte stuffing
      this.#n -= 8;
    }
    this.#acc &= (1 << this.#n) - 1;
  }

  flush(): void {
    if (this.#n > 0) this.write((1 << (8 - this.#n)) - 1, 8 - this.#n);
  }
}

function magnitude(v: number): [number, number] {
  const a = Math.abs(v);
  let size = 0;
  while ((1 << size) <= a) size++;
  return [size, v >= 0 ? v : v + (1 << size) - 1];
}

const CODES = {
  dc: [buildCodes(DC_LUMA), buildCodes(DC_CHROMA)],
  ac: [buildCodes(AC_LUMA), buildCodes(AC_CHROMA)],
} as const;

function encodeBlock(w: BitWriter, block: Int16Array, prevDc: number, table: 0 | 1): number {
  const dc = CODES.dc[table];
  const ac = CODES.ac[table];
  const [dcSize, dcBits] = magnitude(block[0]! - prevDc);
  w.write(dc.code[dcSize]!, dc.len[dcSize]!);
  if (dcSize) w.write(dcBits, dcSize);
  let run = 0;
  for (let k = 1; k < 64; k++) {
    const v = block[k]!;
    if (v === 0) {
      run++;
      continue;
    }
    while (run > 15) {
      w.write(ac.code[0xf0]!, ac.len[0xf0]!);
      run -= 16;
    }
    const [size, bits] = magnitude(v);
    const sym = (run << 4) | size;
    w.write(ac.code[sym]!, ac.len[sym]!);
    w.write(bits, size);
    run = 0;
  }
  if (run > 0) w.write(ac.code[0]!, ac.len[0]!);
  return block[0]!;
}

function segment(marker: number, body: number[]): number[] {
  const len = body.length + 2;
  return [0xff, marker, len >> 8, len & 0xff, ...body];
}

function dht(cls: number, id: number, spec: HuffSpec): number[] {
  return [(cls << 4) | id, ...spec.bits, ...spec.vals];
}

// ---------------------------------------------------------------------------------------------
// The test card.

/** Width and height of the test card (CIF, as the door's data types 2/3 announce). */
export const TEST_CARD_SIZE = { width: 352, height: 288 } as const;

/** The test card's eight colour bars, left to right (RGB, video range). */
// deno-fmt-ignore
export const TEST_CARD_BARS: readonly (readonly [number, number, number])[] = [
  [235, 235, 235],
  [235, 235, 16],
  [16, 235, 235],
  [16, 235, 16],
  [235, 16, 235],
  [235, 16, 16],
  [16, 16, 235],
  [16, 16, 16],
];
const BARS = TEST_CARD_BARS;

// deno-fmt-ignore
const DIGITS_5X7 = [
  [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
  [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
  [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
  [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
  [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
  [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
  [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
  [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
  [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
  [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
] as const;

/** The counter box, in 8×8 blocks: x 96–255, y 232–271. */
const BOX = { bx0: 12, bx1: 32, by0: 29, by1: 34 } as const;
const DIGIT_SCALE = 4;
const COUNTER_DIGITS = 6;

/** Options of {@linkcode TestCard}. */
export interface TestCardOptions {
  /** JPEG quality 1–100. @default {75} */
  quality?: number;
}

/**
 * A CIF MJPEG test card: `frame(n)` returns a complete baseline JPEG (SOI … EOI) showing colour
 * bars and the number `n`.
 */
export class TestCard {
  readonly width: number = TEST_CARD_SIZE.width;
  readonly height: number = TEST_CARD_SIZE.height;
  #planes: [Float32Array, Float32Array, Float32Array];
  #quant: [Uint8Array, Uint8Array];
  #blocks: Int16Array[][]; // per component, per block (row-major), zig-zag order
  #header: Uint8Array;
  #jfif: Uint8Array = Uint8Array.from(
    segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]),
  );

  static #shared: TestCard | undefined;

  /**
   * The default card, built once per process: every simulated door of a test run shares it
   * (building one takes ~50 ms natively, ~1.5 s under qemu-user; frames depend only on `n`).
   */
  static shared(): TestCard {
    return TestCard.#shared ??= new TestCard();
  }

  /** Renders the bars and precomputes their DCT. */
  constructor(options: TestCardOptions = {}) {
    const quality = options.quality ?? 75;
    this.#quant = [scaleQuant(LUMA_Q, quality), scaleQuant(CHROMA_Q, quality)];
    const n = this.width * this.height;
    this.#planes = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
    for (let y = 0; y < this.height; y++) {
      for (let x = 0; x < this.width; x++) {
        const [r, g, b] = BARS[Math.floor((x * BARS.length) / this.width)]!;
        this.#setPixel(x, y, r, g, b);
      }
    }
    const bw = this.width / 8;
    const bh = this.height / 8;
    this.#blocks = [0, 1, 2].map((c) => {
      const list: Int16Array[] = [];
      for (let by = 0; by < bh; by++) {
        for (let bx = 0; bx < bw; bx++) {
          const block = new Int16Array(64);
          quantBlock(this.#planes[c]!, this.width, bx, by, this.#quant[c === 0 ? 0 : 1], block);
          list.push(block);
        }
      }
      return list;
    });
    this.#header = this.#buildHeader();
  }

  #setPixel(x: number, y: number, r: number, g: number, b: number): void {
    const i = y * this.width + x;
    this.#planes[0][i] = 0.299 * r + 0.587 * g + 0.114 * b;
    this.#planes[1][i] = -0.168736 * r - 0.331264 * g + 0.5 * b + 128;
    this.#planes[2][i] = 0.5 * r - 0.418688 * g - 0.081312 * b + 128;
  }

  #drawCounter(n: number): void {
    const x0 = BOX.bx0 * 8;
    const y0 = BOX.by0 * 8;
    const w = (BOX.bx1 - BOX.bx0) * 8;
    const h = (BOX.by1 - BOX.by0) * 8;
    for (let y = y0; y < y0 + h; y++) {
      for (let x = x0; x < x0 + w; x++) this.#setPixel(x, y, 16, 16, 16);
    }
    const text = String(n % 10 ** COUNTER_DIGITS).padStart(COUNTER_DIGITS, "0");
    const cell = 6 * DIGIT_SCALE;
    const left = x0 + Math.floor((w - cell * COUNTER_DIGITS + DIGIT_SCALE) / 2);
    const top = y0 + Math.floor((h - 7 * DIGIT_SCALE) / 2);
    for (let d = 0; d < text.length; d++) {
      const glyph = DIGITS_5X7[text.charCodeAt(d) - 48]!;
      for (let row = 0; row < 7; row++) {
        for (let col = 0; col < 5; col++) {
          if (!((glyph[row]! >> (4 - col)) & 1)) continue;
          for (let sy = 0; sy < DIGIT_SCALE; sy++) {
            for (let sx = 0; sx < DIGIT_SCALE; sx++) {
              this.#setPixel(
                left + d * cell + col * DIGIT_SCALE + sx,
                top + row * DIGIT_SCALE + sy,
                235,
                235,
                235,
              );
            }
          }
        }
      }
    }
    const bw = this.width / 8;
    for (let by = BOX.by0; by < BOX.by1; by++) {
      for (let bx = BOX.bx0; bx < BOX.bx1; bx++) {
        for (let c = 0; c < 3; c++) {
          quantBlock(
            this.#planes[c]!,
            this.width,
            bx,
            by,
            this.#quant[c === 0 ? 0 : 1],
            this.#blocks[c]![by * bw + bx]!,
          );
        }
      }
    }
  }

  #buildHeader(): Uint8Array {
    // DQT lists the tables in zig-zag order.
    const zz = (q: Uint8Array) => ZIGZAG.map((natural) => q[natural]!);
    const dqt = segment(0xdb, [0, ...zz(this.#quant[0]), 1, ...zz(this.#quant[1])]);
    const sof = segment(0xc0, [
      8,
      this.height >> 8,
      this.height & 0xff,
      this.width >> 8,
      this.width & 0xff,
      3,
      1,
      0x11,
      0,
      2,
      0x11,
      1,
      3,
      0x11,
      1,
    ]);
    const huff = segment(0xc4, [
      ...dht(0, 0, DC_LUMA),
      ...dht(1, 0, AC_LUMA),
      ...dht(0, 1, DC_CHROMA),
      ...dht(1, 1, AC_CHROMA),
    ]);
    const sos = segment(0xda, [3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
    return Uint8Array.from([...dqt, ...sof, ...huff, ...sos]);
  }

  /** A complete JPEG of frame `n`: SOI, APP0 JFIF, COM `door-sim frame=n`, tables, scan, EOI. */
  frame(n: number): Uint8Array {
    this.#drawCounter(n);
    const w = new BitWriter();
    const prev = [0, 0, 0];
    const count = this.#blocks[0]!.length;
    for (let i = 0; i < count; i++) {
      for (let c = 0; c < 3; c++) {
        prev[c] = encodeBlock(w, this.#blocks[c]![i]!, prev[c]!, c === 0 ? 0 : 1);
      }
    }
    w.flush();
    const comment = segment(0xfe, [...new TextEncoder().encode(`door-sim frame=${n}`)]);
    const parts = [[0xff, 0xd8], this.#jfif, comment, this.#header, w.bytes];
    const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 2));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    out.set([0xff, 0xd9], at);
    return out;
  }
}

/** Reads the frame counter of the `COM` segment written by {@linkcode TestCard.frame}. */
export function testCardFrameNumber(jpeg: Uint8Array): number | undefined {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) return undefined;
  let at = 2;
  // Walk the marker segments up to the scan.
  while (at + 4 <= jpeg.length && jpeg[at] === 0xff && jpeg[at + 1] !== 0xda) {
    const len = (jpeg[at + 2]! << 8) | jpeg[at + 3]!;
    if (jpeg[at + 1] === 0xfe) {
      const text = new TextDecoder().decode(jpeg.subarray(at + 4, at + 2 + len));
      const m = /^door-sim frame=(\d+)$/.exec(text);
      return m ? Number(m[1]) : undefined;
    }
    at += 2 + len;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Packetizing and audio.

/** What {@linkcode videoPackets} needs besides the frame. */
export interface VideoPacketInit {
  parties: CallParties;
  timestamp: number;
  frameNo: number;
  /** I-frame (data type 2) or P-frame (3). */
  iframe: boolean;
  payloadOffset: PayloadOffset;
  magic?: string;
}

/**
 * Cuts one video frame into CALLUP packets of at most 1200 payload bytes (UDP 1277 or 1286
 * bytes), packet indexes 1-based, every packet carrying the whole frame length and count.
 */
export function videoPackets(frame: Uint8Array, init: VideoPacketInit): Uint8Array[] {
  const total = Math.max(1, Math.ceil(frame.length / CHUNK_SIZE));
  const out: Uint8Array[] = [];
  for (let i = 0; i < total; i++) {
    out.push(encodeMedia({
      op: 7,
      ...init.parties,
      timestamp: init.timestamp,
      dataType: init.iframe ? DATA_TYPE.CIF_I : DATA_TYPE.CIF_P,
      frameNo: init.frameNo,
      frameLen: frame.length,
      totalPackets: total,
      packet: i + 1,
      payloadOffset: init.payloadOffset,
      payload: frame.subarray(i * CHUNK_SIZE, Math.min(frame.length, (i + 1) * CHUNK_SIZE)),
    }, init.magic ?? DEFAULT_MAGIC));
  }
  return out;
}

/** Options of {@linkcode ToneSource}. */
export interface ToneOptions {
  codec: G711Codec;
  /** @default {400} */
  frequencyHz?: number;
  /** Peak amplitude, fraction of full scale. @default {0.25} */
  level?: number;
}

/** A continuous sine tone at 8 kHz, cut into 64-byte (8 ms) G.711 packets. */
export class ToneSource {
  #packets: Uint8Array[];
  #next = 0;

  /** Precomputes one period's worth of packets (400 Hz: 320 samples, 5 packets). */
  constructor(options: ToneOptions) {
    const f = options.frequencyHz ?? 400;
    const amp = 32767 * (options.level ?? 0.25);
    // The pattern repeats after lcm(period, 64) samples when 8000/f is an integer.
    const period = Number.isInteger(8000 / f) ? 8000 / f : 8000;
    const samplesPerCycle = lcm(period, AUDIO_FRAME_BYTES);
    const samples = Array.from(
      { length: samplesPerCycle },
      (_, i) => amp * Math.sin((2 * Math.PI * f * i) / 8000),
    );
    const codes = encodeG711(options.codec, samples);
    this.#packets = [];
    for (let at = 0; at < codes.length; at += AUDIO_FRAME_BYTES) {
      this.#packets.push(codes.slice(at, at + AUDIO_FRAME_BYTES));
    }
  }

  /** The next 64 bytes (8 ms) of the tone. Do not modify the returned bytes. */
  next(): Uint8Array {
    const p = this.#packets[this.#next]!;
    this.#next = (this.#next + 1) % this.#packets.length;
    return p;
  }
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}

/** Encodes one audio CALLUP packet (data type 1). */
export function audioPacket(
  payload: Uint8Array,
  init: { parties: CallParties; timestamp: number; frameNo: number; payloadOffset: PayloadOffset },
  magic: string = DEFAULT_MAGIC,
): Uint8Array {
  return encodeMedia({
    op: 7,
    ...init.parties,
    timestamp: init.timestamp,
    dataType: DATA_TYPE.AUDIO,
    frameNo: init.frameNo,
    payloadOffset: init.payloadOffset,
    payload,
  }, magic);
}

/** The next frame or packet number: +1, wrapping to 1 after 65535 (§5). */
export function nextFrameNo(n: number): number {
  return n >= 0xffff ? 1 : n + 1;
}

// ---------------------------------------------------------------------------------------------
// Coded video from a file: H.264 (Annex B) and MPEG-4 Part 2 elementary streams.

/** The codecs of {@linkcode CodedVideoSource}. */
export type CodedVideo = "h264" | "mpeg4";

/** Offsets of the start codes (`00 00 01`, also the 4-byte form) in `b`: where each unit begins. */
function startCodes(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 3 <= b.length; i++) {
    if (b[i] === 0 && b[i + 1] === 0 && b[i + 2] === 1) {
      out.push(i > 0 && b[i - 1] === 0 ? i - 1 : i);
      i += 2;
    }
  }
  return out;
}

/** The byte after the start code at `at`: NAL header (H.264) or start-code value (MPEG-4). */
function unitType(b: Uint8Array, at: number): number {
  return b[b[at + 2] === 1 ? at + 3 : at + 4] ?? -1;
}

function unitPayload(b: Uint8Array, at: number): number {
  return b[at + 2] === 1 ? at + 3 : at + 4;
}

/**
 * Splits an elementary stream into frames (access units): H.264 at an access unit delimiter,
 * SPS, PPS or SEI after a picture, or at a slice with `first_mb_in_slice` 0; MPEG-4 at each VOP
 * (`00 00 01 B6`), the headers before it (VOS, VO, VOL, GOV) going with it. Each frame comes with
 * whether it is an I-frame (an IDR slice, an I-VOP).
 */
export function splitVideoStream(
  stream: Uint8Array,
  codec: CodedVideo,
): { data: Uint8Array; key: boolean }[] {
  const starts = startCodes(stream);
  const frames: { data: Uint8Array; key: boolean }[] = [];
  let begin = starts[0] ?? 0;
  let picture = false;
  let key = false;
  const cut = (at: number) => {
    if (picture && at > begin) frames.push({ data: stream.slice(begin, at), key });
    begin = at;
    picture = false;
    key = false;
  };
  for (const at of starts) {
    const v = unitType(stream, at);
    const p = unitPayload(stream, at);
    if (codec === "h264") {
      const type = v & 0x1f;
      const vcl = type === 1 || type === 5;
      const newPicture = vcl && ((stream[p + 1] ?? 0) & 0x80) !== 0; // ue(first_mb) = 0
      if (picture && ((type >= 6 && type <= 9) || newPicture)) cut(at);
      if (vcl) {
        picture = true;
        if (type === 5) key = true;
      }
    } else {
      if (picture) cut(at);
      if (v === 0xb6) {
        picture = true;
        key = ((stream[p + 1] ?? 0) >> 6) === 0; // vop_coding_type 0: I-VOP
      }
    }
  }
  cut(stream.length);
  return frames;
}

/**
 * A door's coded video from a file (`tests/fixtures/video/`): frame `n` is the file's frame
 * `(n − 1) mod count`, looping; {@linkcode CodedVideoSource.keyFrame} tells the I-frames, so the
 * data type (2/3) the door sends matches the stream.
 */
export class CodedVideoSource {
  readonly codec: CodedVideo;
  readonly frames: readonly { data: Uint8Array; key: boolean }[];

  /** Splits `stream` into frames; a stream without any frame is a `RangeError`. */
  constructor(stream: Uint8Array, codec: CodedVideo) {
    this.codec = codec;
    this.frames = splitVideoStream(stream, codec);
    if (!this.frames.length) {
      throw new RangeError(
        `Cannot use the ${codec} stream: no frame in its ${stream.length} bytes`,
      );
    }
  }

  /** Frame `n` (1-based). */
  frame(n: number): Uint8Array {
    return this.frames[(n - 1) % this.frames.length]!.data;
  }

  /** Whether frame `n` is an I-frame. */
  keyFrame(n: number): boolean {
    return this.frames[(n - 1) % this.frames.length]!.key;
  }
}
