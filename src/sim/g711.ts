/**
 * G.711 (ITU-T, 8 kHz) μ-law and A-law companding: 16-bit linear PCM ↔ 8-bit codes, as the door
 * stations send and play them (door-protocol.md §5: 64 bytes = 8 ms per packet).
 *
 * The algorithms are the reference ones (Sun's public-domain `g711.c`, as Python's `audioop`): μ-law
 * on the 14-bit magnitude with bias 0x84 and clip at 8159, A-law on the 13-bit magnitude with even bits inverted (XOR 0x55).
 *
 * @module
 */

/** The two G.711 laws a door may use (per-door setting, default μ-law). */
export type G711Codec = "ulaw" | "alaw";

/** Accepted codec names, for flag validation. */
export const G711_CODECS: readonly G711Codec[] = ["ulaw", "alaw"] as const;

const ULAW_BIAS = 0x84;
const ULAW_CLIP = 8159;
const ULAW_SEG_END = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff] as const;
const ALAW_SEG_END = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff] as const;

function clamp16(sample: number): number {
  const s = Math.round(sample);
  return s > 32767 ? 32767 : s < -32768 ? -32768 : s;
}

/** Encodes one 16-bit linear sample to μ-law (0 → 0xFF, −1 → 0x7E, 32767 → 0x80). */
export function linearToUlaw(sample: number): number {
  let pcm = clamp16(sample) >> 2; // 14-bit magnitude, as the reference coder
  let mask: number;
  if (pcm < 0) {
    pcm = -pcm;
    mask = 0x7f;
  } else {
    mask = 0xff;
  }
  if (pcm > ULAW_CLIP) pcm = ULAW_CLIP;
  pcm += ULAW_BIAS >> 2;
  let seg = 0;
  while (seg < 8 && pcm > ULAW_SEG_END[seg]!) seg++;
  if (seg >= 8) return 0x7f ^ mask;
  return ((seg << 4) | ((pcm >> (seg + 1)) & 0x0f)) ^ mask;
}

/** Decodes one μ-law code to a 16-bit linear sample. */
export function ulawToLinear(code: number): number {
  const u = ~code & 0xff;
  const exponent = (u >> 4) & 0x07;
  const magnitude = ((((u & 0x0f) << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
  return u & 0x80 ? -magnitude : magnitude;
}

/** Encodes one 16-bit linear sample to A-law (0 → 0xD5). */
export function linearToAlaw(sample: number): number {
  let pcm = clamp16(sample) >> 3;
  let mask: number;
  if (pcm >= 0) {
    mask = 0xd5;
  } else {
    mask = 0x55;
    pcm = -pcm - 1;
  }
  let seg = 0;
  while (seg < 8 && pcm > ALAW_SEG_END[seg]!) seg++;
  if (seg >= 8) return 0x7f ^ mask;
  const mantissa = seg < 2 ? (pcm >> 1) & 0x0f : (pcm >> seg) & 0x0f;
  return ((seg << 4) | mantissa) ^ mask;
}

/** Decodes one A-law code to a 16-bit linear sample. */
export function alawToLinear(code: number): number {
  const a = (code & 0xff) ^ 0x55;
  let t = (a & 0x0f) << 4;
  const seg = (a & 0x70) >> 4;
  if (seg === 0) t += 8;
  else if (seg === 1) t += 0x108;
  else t = (t + 0x108) << (seg - 1);
  return a & 0x80 ? t : -t;
}

/** Encodes linear samples with `codec` into `out` (allocated when omitted). */
export function encodeG711(
  codec: G711Codec,
  samples: ArrayLike<number>,
  out: Uint8Array = new Uint8Array(samples.length),
): Uint8Array {
  const enc = codec === "ulaw" ? linearToUlaw : linearToAlaw;
  for (let i = 0; i < samples.length; i++) out[i] = enc(samples[i]!);
  return out;
}

/** Decodes G.711 codes with `codec` to 16-bit linear samples. */
export function decodeG711(codec: G711Codec, codes: Uint8Array): Int16Array {
  const dec = codec === "ulaw" ? ulawToLinear : alawToLinear;
  const out = new Int16Array(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = dec(codes[i]!);
  return out;
}

/** The code of digital silence: 0xFF in μ-law, 0xD5 in A-law. */
export function g711Silence(codec: G711Codec): number {
  return codec === "ulaw" ? 0xff : 0xd5;
}
