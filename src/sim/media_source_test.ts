import { assert, assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { decodePacket, type MediaPacket, PacketDecodeError } from "../protocol/mod.ts";
import { alawToLinear, ulawToLinear } from "./g711.ts";
import {
  audioPacket,
  CodedVideoSource,
  nextFrameNo,
  splitVideoStream,
  TEST_CARD_SIZE,
  TestCard,
  testCardFrameNumber,
  ToneSource,
  videoPackets,
} from "./media_source.ts";

const PARTIES = {
  caller: "M00010100",
  callerIp: "10.0.0.2",
  callee: "S00010108090",
  calleeIp: "10.0.0.1",
};

function media(bytes: Uint8Array): MediaPacket {
  const p = decodePacket(bytes);
  if (p instanceof PacketDecodeError || p.kind !== "media") throw new Error("not media");
  return p;
}

/** Walks the JPEG marker segments; returns the markers seen up to the scan, and the SOF size. */
function jpegMarkers(jpeg: Uint8Array): { markers: number[]; width: number; height: number } {
  assertEquals([jpeg[0], jpeg[1]], [0xff, 0xd8]);
  const markers: number[] = [];
  let width = 0, height = 0;
  let at = 2;
  for (;;) {
    assertEquals(jpeg[at], 0xff, `marker at ${at}`);
    const m = jpeg[at + 1]!;
    markers.push(m);
    const len = (jpeg[at + 2]! << 8) | jpeg[at + 3]!;
    if (m === 0xc0) {
      height = (jpeg[at + 5]! << 8) | jpeg[at + 6]!;
      width = (jpeg[at + 7]! << 8) | jpeg[at + 8]!;
    }
    at += 2 + len;
    if (m === 0xda) break;
  }
  // Entropy-coded data: every 0xFF is stuffed (0xFF00) up to the EOI.
  for (let i = at; i < jpeg.length - 2; i++) {
    if (jpeg[i] === 0xff) assertEquals(jpeg[i + 1], 0x00, `stuffing at ${i}`);
  }
  assertEquals([jpeg.at(-2), jpeg.at(-1)], [0xff, 0xd9]);
  return { markers, width, height };
}

Deno.test("test card: a well-formed baseline JPEG per frame, numbered in a COM segment", () => {
  const card = new TestCard();
  const a = card.frame(1);
  const b = card.frame(2);
  const s = jpegMarkers(a);
  assertEquals(s.markers, [0xe0, 0xfe, 0xdb, 0xc0, 0xc4, 0xda]);
  assertEquals([s.width, s.height], [TEST_CARD_SIZE.width, TEST_CARD_SIZE.height]);
  jpegMarkers(b);
  assertEquals([testCardFrameNumber(a), testCardFrameNumber(b)], [1, 2]);
  assert(a.length > 3 * 1200, `a CIF frame spans several chunks (${a.length} B)`);
  assert(a.toHex() !== b.toHex(), "the counter is drawn into the picture");
  assertEquals(card.frame(1).toHex(), a.toHex(), "deterministic");
  assertEquals(testCardFrameNumber(new Uint8Array([0xff, 0xd8, 0xff, 0xd9])), undefined);
});

Deno.test("video packets: 1200-byte chunks, 1-based, frame length and count in each", () => {
  const frame = Uint8Array.from({ length: 3000 }, (_, i) => i & 0xff);
  for (const payloadOffset of [77, 86] as const) {
    const packets = videoPackets(frame, {
      parties: PARTIES,
      timestamp: 1234,
      frameNo: 7,
      iframe: true,
      payloadOffset,
    });
    assertEquals(packets.map((p) => p.length), [
      payloadOffset + 1200,
      payloadOffset + 1200,
      payloadOffset + 600,
    ]);
    const decoded = packets.map(media);
    assertEquals(decoded.map((p) => p.packet), [1, 2, 3]);
    for (const p of decoded) {
      assertEquals(
        [p.op, p.dataType, p.frameNo, p.frameLen, p.totalPackets, p.packLen, p.timestamp],
        [7, 2, 7, 3000, 3, 1200, 1234],
      );
      assertEquals(p.payloadOffset, payloadOffset);
    }
    const joined = new Uint8Array(3000);
    decoded.forEach((p, i) => joined.set(p.payload, i * 1200));
    assertEquals(joined, frame);
  }
  const p = videoPackets(new Uint8Array(10), {
    parties: PARTIES,
    timestamp: 0,
    frameNo: 8,
    iframe: false,
    payloadOffset: 77,
  });
  assertEquals(media(p[0]!).dataType, 3, "P-frame");
});

Deno.test("tone: 64-byte G.711 packets of a continuous 400 Hz sine", () => {
  for (const [codec, decode] of [["ulaw", ulawToLinear], ["alaw", alawToLinear]] as const) {
    const tone = new ToneSource({ codec });
    const packets = Array.from({ length: 10 }, () => tone.next().slice());
    assert(packets.every((p) => p.length === 64));
    const pcm = packets.flatMap((p) => [...p].map(decode));
    // Period 20 samples, over packet boundaries; the pattern repeats every 5 packets.
    for (let i = 20; i < pcm.length; i++) assertEquals(pcm[i], pcm[i - 20], `${codec} ${i}`);
    assertEquals(packets[5], packets[0]);
    const peak = Math.max(...pcm);
    assert(peak > 7000 && peak < 9000, `${codec} peak ${peak}`);
  }
});

Deno.test("audio packet: 141 bytes, data type 1; frame numbers wrap to 1 after 65535", () => {
  const bytes = audioPacket(new Uint8Array(64).fill(0xff), {
    parties: PARTIES,
    timestamp: 1000,
    frameNo: 42,
    payloadOffset: 77,
  });
  assertEquals(bytes.length, 141);
  const p = media(bytes);
  assertEquals([p.dataType, p.frameNo, p.timestamp, p.dataLen], [1, 42, 1000, 64]);
  assertEquals([nextFrameNo(0), nextFrameNo(1), nextFrameNo(65534), nextFrameNo(65535)], [
    1,
    2,
    65535,
    1,
  ]);
});

Deno.test("coded video: the fixtures split into 20 frames, I-frames at 1 and 11, bytes kept whole", async () => {
  const dir = new URL("../../tests/fixtures/video/", import.meta.url);
  for (const [file, codec] of [["card.h264", "h264"], ["card.m4v", "mpeg4"]] as const) {
    const bytes = await Deno.readFile(new URL(file, dir));
    const s = new CodedVideoSource(bytes, codec);
    assertEquals(s.frames.length, 20, file);
    assertEquals(s.frames.map((f, i) => f.key ? i + 1 : 0).filter(Boolean), [1, 11], file);
    assertEquals(s.frames.reduce((n, f) => n + f.data.length, 0), bytes.length, file);
    assertEquals([s.frame(21), s.keyFrame(21)], [s.frame(1), true], "loops");
  }
  assertThrows(() => new CodedVideoSource(new Uint8Array(100), "h264"), RangeError);
});

Deno.test("coded video: H.264 access units cut at a delimiter, parameter sets, or a new picture's first slice", () => {
  const nal = (...b: number[]) => [0, 0, 0, 1, ...b];
  // No delimiters: SPS PPS IDR(first_mb 0) | slice(first_mb 0) slice(first_mb > 0) | SEI slice.
  const stream = Uint8Array.from([
    ...nal(0x67, 1, 2),
    ...nal(0x68, 3),
    ...nal(0x65, 0x88, 1),
    ...nal(0x41, 0x9a, 2),
    ...nal(0x41, 0x40, 3),
    ...nal(0x06, 5),
    ...nal(0x41, 0x9a, 4),
  ]);
  const frames = splitVideoStream(stream, "h264");
  assertEquals(frames.map((f) => [f.key, f.data.length]), [[true, 20], [false, 14], [false, 13]]);
});
