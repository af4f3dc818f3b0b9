/**
 * The web phone's icons, drawn in code from one shape table: an SVG, and PNGs (192 and 512
 * pixels, plus a full-bleed "maskable" 512) rasterised with 4×4 supersampling and encoded here
 * (zlib from `node:zlib`). Built once, on first use.
 *
 * @module
 */

import { deflateSync } from "node:zlib";
import { concatBytes } from "../bytes.ts";

/** One shape on a 100×100 canvas. */
type Shape =
  | { kind: "rect"; x: number; y: number; w: number; h: number; r: number; fill: string }
  | { kind: "circle"; cx: number; cy: number; r: number; fill: string };

/** The app's colours (`theme_color` is the teal). */
export const ICON_COLORS = { teal: "#0f766e", white: "#ffffff" } as const;

/** A door station: white panel, camera, speaker grille, call button. */
const FOREGROUND: readonly Shape[] = [
  { kind: "rect", x: 32, y: 18, w: 36, h: 64, r: 7, fill: ICON_COLORS.white },
  { kind: "circle", cx: 50, cy: 30, r: 5, fill: ICON_COLORS.teal },
  { kind: "rect", x: 40, y: 42, w: 20, h: 3, r: 1.5, fill: ICON_COLORS.teal },
  { kind: "rect", x: 40, y: 48, w: 20, h: 3, r: 1.5, fill: ICON_COLORS.teal },
  { kind: "rect", x: 40, y: 54, w: 20, h: 3, r: 1.5, fill: ICON_COLORS.teal },
  { kind: "circle", cx: 50, cy: 70, r: 6, fill: ICON_COLORS.teal },
];

function background(rounded: boolean): Shape {
  return { kind: "rect", x: 0, y: 0, w: 100, h: 100, r: rounded ? 20 : 0, fill: ICON_COLORS.teal };
}

/** The SVG icon (rounded square). */
export function iconSvg(): string {
  const body = [background(true), ...FOREGROUND].map((s) =>
    s.kind === "rect"
      ? `<rect x="${s.x}" y="${s.y}" width="${s.w}" height="${s.h}" rx="${s.r}" fill="${s.fill}"/>`
      : `<circle cx="${s.cx}" cy="${s.cy}" r="${s.r}" fill="${s.fill}"/>`
  ).join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">${body}</svg>\n`;
}

function inside(s: Shape, x: number, y: number): boolean {
  if (s.kind === "circle") return (x - s.cx) ** 2 + (y - s.cy) ** 2 <= s.r * s.r;
  if (x < s.x || y < s.y || x > s.x + s.w || y > s.y + s.h) return false;
  const r = s.r;
  const dx = Math.max(s.x + r - x, 0, x - (s.x + s.w - r));
  const dy = Math.max(s.y + r - y, 0, y - (s.y + s.h - r));
  return dx * dx + dy * dy <= r * r;
}

function rgb(hex: string): [number, number, number] {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** RGBA pixels of the icon at `size` (rounded corners, or full bleed for maskable). */
export function rasterIcon(size: number, rounded: boolean): Uint8Array {
  const shapes = [background(rounded), ...FOREGROUND].map((s) => ({ s, c: rgb(s.fill) }));
  const out = new Uint8Array(size * size * 4);
  const N = 4;
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let r = 0, g = 0, b = 0, a = 0;
      for (let sy = 0; sy < N; sy++) {
        for (let sx = 0; sx < N; sx++) {
          const x = ((px + (sx + 0.5) / N) / size) * 100;
          const y = ((py + (sy + 0.5) / N) / size) * 100;
          let hit: [number, number, number] | undefined;
          for (const { s, c } of shapes) if (inside(s, x, y)) hit = c;
          if (hit) {
            r += hit[0];
            g += hit[1];
            b += hit[2];
            a++;
          }
        }
      }
      const i = (py * size + px) * 4;
      out[i] = a ? Math.round(r / a) : 0;
      out[i + 1] = a ? Math.round(g / a) : 0;
      out[i + 2] = a ? Math.round(b / a) : 0;
      out[i + 3] = Math.round((a / (N * N)) * 255);
    }
  }
  return out;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (PNG, zlib polynomial). */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** A PNG (8-bit RGBA, no filtering) of `rgba` pixels. */
export function encodePng(width: number, height: number, rgba: Uint8Array): Uint8Array {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([8, 6, 0, 0, 0], 8);
  const raw = new Uint8Array((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw.set(rgba.subarray(y * width * 4, (y + 1) * width * 4), y * (width * 4 + 1) + 1);
  }
  return concatBytes(
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", new Uint8Array(deflateSync(raw, { level: 9 }))),
    chunk("IEND", new Uint8Array(0)),
  );
}

const cache = new Map<string, Uint8Array>();

/** The PNG icon of `size` pixels; `maskable`: full bleed (the launcher cuts its own shape). */
export function iconPng(size: number, maskable = false): Uint8Array {
  const key = `${size}/${maskable}`;
  let png = cache.get(key);
  if (!png) {
    png = encodePng(size, size, rasterIcon(size, !maskable));
    cache.set(key, png);
  }
  return png;
}
