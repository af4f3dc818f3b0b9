import { assertEquals } from "../../tests/helpers/assert.ts";
import {
  alawToLinear,
  decodeG711,
  encodeG711,
  g711Silence,
  linearToAlaw,
  linearToUlaw,
  ulawToLinear,
} from "./g711.ts";

// Reference values from the public-domain Sun g711.c (as computed by Python's audioop).
// deno-fmt-ignore
const SAMPLES = [
  0, 1, -1, 100, -100, 1000, -1000, 4000, -4000, 8159, -8159, 12345, -12345, 32635, -32635, 32767,
  -32768, -33, 500
];
// deno-fmt-ignore
const ULAW = [
  0xff, 0xff, 0x7e, 0xf2, 0x72, 0xce, 0x4e, 0xaf, 0x2f, 0x9f, 0x1f, 0x97, 0x17, 0x80, 0x00, 0x80,
  0x00, 0x7a, 0xdc
];
// deno-fmt-ignore
const ALAW = [
  0xd5, 0xd5, 0x55, 0xd3, 0x53, 0xfa, 0x7a, 0x9a, 0x1a, 0x8a, 0x0a, 0xbd, 0x3d, 0xaa, 0x2a, 0xaa,
  0x2a, 0x57, 0xca
];

Deno.test("g711: μ-law of 0 is 0xFF and A-law of 0 is 0xD5 (silence)", () => {
  assertEquals(linearToUlaw(0), 0xff);
  assertEquals(linearToAlaw(0), 0xd5);
  assertEquals(g711Silence("ulaw"), 0xff);
  assertEquals(g711Silence("alaw"), 0xd5);
});

Deno.test("g711: encoders match the reference coder on known samples", () => {
  assertEquals(SAMPLES.map(linearToUlaw), ULAW);
  assertEquals(SAMPLES.map(linearToAlaw), ALAW);
  assertEquals([...encodeG711("ulaw", SAMPLES)], ULAW);
  assertEquals([...encodeG711("alaw", SAMPLES)], ALAW);
});

Deno.test("g711: encoders match the reference coder on a sweep of the 16-bit range", () => {
  // Weighted sums of the reference output for samples -32768, -32671, … (step 97).
  let u = 0, a = 0, i = 0;
  for (let s = -32768; s < 32768; s += 97, i++) {
    u += i * linearToUlaw(s);
    a += i * linearToAlaw(s);
  }
  assertEquals([i, u, a], [676, 27138435, 31558668]);
});

Deno.test("g711: decoders match the reference tables", () => {
  const codes = Uint8Array.from({ length: 256 }, (_, i) => i);
  const ul = decodeG711("ulaw", codes);
  const al = decodeG711("alaw", codes);
  assertEquals([ul[0], ul[126], ul[127], ul[128], ul[255]], [-32124, -8, 0, 32124, 0]);
  assertEquals([al[0], al[1], al[213], al[85]], [-5504, -5248, 8, -8]);
  let ws = 0, wa = 0, sum = 0;
  for (let i = 0; i < 256; i++) {
    ws += i * ul[i]!;
    wa += i * al[i]!;
    sum += ul[i]!;
  }
  assertEquals([sum, ws, wa], [0, 98107392, 100139008]);
  assertEquals(ulawToLinear(0xff), 0);
  assertEquals(alawToLinear(0xd5), 8);
});

Deno.test("g711: decode then encode returns every code (except μ-law's negative zero)", () => {
  for (let c = 0; c < 256; c++) {
    assertEquals(linearToAlaw(alawToLinear(c)), c, `alaw ${c}`);
    if (c !== 0x7f) assertEquals(linearToUlaw(ulawToLinear(c)), c, `ulaw ${c}`);
  }
});
