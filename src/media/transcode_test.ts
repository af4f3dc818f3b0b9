import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { assertTestCard } from "../../tests/helpers/test_card.ts";
import { FakeClock, memoryLogger, nullLogger } from "../testing/mod.ts";
import { Metrics } from "../metrics.ts";
import { decodePacket, type MediaPacket } from "../protocol/mod.ts";
import { audioPacket, CodedVideoSource, TestCard, videoPackets } from "../sim/media_source.ts";
import { type ConverterProcess, mayRunFfmpeg, sniffCodec, Transcoder } from "./transcode.ts";
import type { PhoneMedia } from "../phone/ports.ts";

Deno.test("transcoder: wrap hands the relay a converting send, and passes everything else on", () => {
  const { t } = setup();
  const calls: string[] = [];
  const relay: PhoneMedia = {
    enableWs: (callId, uid, send, _isOpen, codecs) => {
      calls.push(`ws ${callId} ${uid} ${codecs?.join("+")}`);
      send(new Uint8Array(10)); // not media: passes
      return true;
    },
    wsAudio: (uid) => void calls.push(`audio ${uid}`),
    enableUdp: (callId, uid) => void calls.push(`udp ${callId} ${uid}`),
  };
  const got: Uint8Array[] = [];
  const m = t.wrap(relay);
  assert(m.enableWs("c", "u", (b) => got.push(b), undefined, ["jpeg"]));
  m.wsAudio("u", new Uint8Array(77));
  m.enableUdp!("c", "u");
  assertEquals(calls, ["ws c u jpeg", "audio u", "udp c u"]);
  assertEquals(got.length, 1);
  assertEquals(m.detach, undefined);
});

const FIXTURES = new URL("../../tests/fixtures/video/", import.meta.url);
const M4V = new CodedVideoSource(Deno.readFileSync(new URL("card.m4v", FIXTURES)), "mpeg4");
const H264 = new CodedVideoSource(Deno.readFileSync(new URL("card.h264", FIXTURES)), "h264");
const PARTIES = {
  caller: "M00010100",
  callerIp: "127.0.0.2",
  callee: "S00010108090",
  calleeIp: "127.0.0.1",
};

/** The door's CALLUP packets of frame `n` of `source`. */
function doorFrame(source: CodedVideoSource | TestCard, n: number): Uint8Array[] {
  const key = source instanceof CodedVideoSource ? source.keyFrame(n) : true;
  return videoPackets(source.frame(n), {
    parties: PARTIES,
    timestamp: n * 100,
    frameNo: n,
    iframe: key,
    payloadOffset: 77,
  });
}

/** A converter that records what it is given and emits what the test pushes. */
class FakeConverter implements ConverterProcess {
  frames: Uint8Array[] = [];
  stopped = false;
  #push: ((c: IteratorResult<Uint8Array>) => void) | undefined;
  #queue: Uint8Array[] = [];
  write(frame: Uint8Array): Promise<void> {
    this.frames.push(frame);
    return Promise.resolve();
  }
  emit(bytes: Uint8Array): void {
    if (this.#push) {
      const p = this.#push;
      this.#push = undefined;
      p({ value: bytes, done: false });
    } else this.#queue.push(bytes);
  }
  readonly output: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({
      next: () => {
        if (this.#queue.length) {
          return Promise.resolve({ value: this.#queue.shift()!, done: false });
        }
        if (this.stopped) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => (this.#push = r));
      },
    }),
  };
  stop(): Promise<void> {
    this.stopped = true;
    this.#push?.({ value: undefined, done: true });
    return Promise.resolve();
  }
}

function setup(options: { allowed?: boolean; maxSessions?: number } = {}) {
  const clock = new FakeClock();
  const metrics = new Metrics();
  const logger = memoryLogger("debug");
  const converters: { input: string; proc: FakeConverter }[] = [];
  const t = new Transcoder({
    mode: "auto",
    clock,
    logger,
    metrics,
    allowed: () => options.allowed ?? true,
    maxSessions: options.maxSessions ?? 4,
    start: (input) => {
      const proc = new FakeConverter();
      converters.push({ input, proc });
      return proc;
    },
  });
  return { t, clock, metrics, logger, converters };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

function media(packets: Uint8Array[]): MediaPacket[] {
  return packets.map((p) => decodePacket(p) as MediaPacket);
}

Deno.test("sniffCodec: JPEG, H.264 and MPEG-4 frames from their first bytes", () => {
  assertEquals(sniffCodec(TestCard.shared().frame(1)), "jpeg");
  assertEquals(sniffCodec(H264.frame(1)), "h264");
  assertEquals(sniffCodec(H264.frame(2)), "h264");
  assertEquals(sniffCodec(M4V.frame(1)), "mpeg4");
  assertEquals(sniffCodec(M4V.frame(2)), "mpeg4", "a P-VOP alone");
  assertEquals(sniffCodec(new Uint8Array(100)), "unknown");
});

Deno.test("transcoder: a phone that decodes JPEG and H.264 gets an MPEG-4 door as JPEG packets", async () => {
  const { t, clock, converters, metrics } = setup();
  const got: Uint8Array[] = [];
  const send = t.sinkFor("c1", "u1", (b) => got.push(b.slice()), ["jpeg", "h264"]);
  // A mid-frame chunk first (the phone joined late): nothing to decide on yet, not forwarded.
  const first = doorFrame(M4V, 1);
  send(first[1]!);
  assertEquals([converters.length, got.length], [0, 0]);
  for (let n = 1; n <= 3; n++) for (const p of doorFrame(M4V, n)) send(p);
  const audio = audioPacket(new Uint8Array(64).fill(0xff), {
    parties: PARTIES,
    timestamp: 8,
    frameNo: 1,
    payloadOffset: 77,
  });
  send(audio);
  assertEquals(converters.map((c) => c.input), ["mpeg4"]);
  const conv = converters[0]!.proc;
  assertEquals(conv.frames.length, 3, "three whole frames to the converter");
  assertEquals(conv.frames[0], M4V.frame(1));
  assertEquals(got, [audio], "audio passes untouched; door video does not");

  const jpeg = TestCard.shared().frame(7);
  conv.emit(Uint8Array.from([0x00, ...jpeg.subarray(0, 500)])); // split across reads
  conv.emit(jpeg.subarray(500));
  await tick();
  const out = media(got.slice(1));
  assert(out.length === Math.ceil(jpeg.length / 1200), `packets ${out.length}`);
  assertEquals(out.map((p) => p.packet), out.map((_, i) => i + 1));
  assert(out.every((p) => p.op === 7 && p.dataType === 2 && p.frameNo === 1));
  assert(out.every((p) => p.frameLen === jpeg.length && p.totalPackets === out.length));
  assertEquals([out[0]!.caller, out[0]!.callee], ["M0001010", "S00010108090"], "the door's head");
  const joined = new Uint8Array(jpeg.length);
  let at = 0;
  for (const p of out) {
    joined.set(p.payload, at);
    at += p.payload.length;
  }
  assertEquals(joined, jpeg);
  assertEquals(metrics.get("transcode_frames_total"), 1);

  // No door video for 3 s: the converter stops.
  clock.advance(3000);
  await tick();
  assert(conv.stopped);
  assertEquals(t.size, 0);
  await t.close();
});

Deno.test("transcoder: passes the door's bytes when the phone decodes them or named no codecs", async () => {
  const { t, converters } = setup();
  const plain = (b: Uint8Array) => void b;
  assertEquals(t.sinkFor("c", "u0", plain), plain, "no codecs: the door's stream as it is");
  const got: Uint8Array[] = [];
  const h264 = t.sinkFor("c", "u1", (b) => got.push(b), ["jpeg", "h264"]);
  const frames = [...doorFrame(H264, 1), ...doorFrame(H264, 2)];
  for (const p of frames) h264(p);
  const jpegGot: Uint8Array[] = [];
  const jpeg = t.sinkFor("d", "u1", (b) => jpegGot.push(b), ["jpeg"]);
  for (const p of doorFrame(TestCard.shared(), 1)) jpeg(p);
  assertEquals([got.length, jpegGot.length, converters.length], [
    frames.length,
    doorFrame(TestCard.shared(), 1).length,
    0,
  ]);
  // A phone without H.264 gets an H.264 door converted.
  const noH264 = t.sinkFor("e", "u2", () => {}, ["jpeg"]);
  for (const p of doorFrame(H264, 1)) noH264(p);
  assertEquals(converters.map((c) => c.input), ["h264"]);
  await t.close();
  assert(converters[0]!.proc.stopped, "close stops the converters");
});

Deno.test("transcoder: without permission, over the bound, or off: the door's bytes, said once", async () => {
  const denied = setup({ allowed: false });
  const got: Uint8Array[] = [];
  const send = denied.t.sinkFor("c", "u", (b) => got.push(b), ["jpeg"]);
  for (let n = 1; n <= 2; n++) for (const p of doorFrame(M4V, n)) send(p);
  const other = denied.t.sinkFor("c2", "u", () => {}, ["jpeg"]);
  for (const p of doorFrame(M4V, 1)) other(p);
  assertEquals(got.length, doorFrame(M4V, 1).length + doorFrame(M4V, 2).length);
  assertEquals(denied.converters.length, 0);
  assertEquals(denied.metrics.get("transcode_refused_total", { reason: "permission" }), 2);
  const warned = denied.logger.records.filter((r) => /allow-run=ffmpeg/.test(String(r.msg)));
  assertEquals(warned.length, 1);

  const bound = setup({ maxSessions: 1 });
  for (const call of ["a", "b"]) {
    const s = bound.t.sinkFor(call, "u", () => {}, ["jpeg"]);
    for (const p of doorFrame(M4V, 1)) s(p);
  }
  assertEquals(bound.converters.length, 1);
  assertEquals(bound.metrics.get("transcode_refused_total", { reason: "limit" }), 1);
  await bound.t.close();

  const off = new Transcoder({
    mode: "off",
    clock: new FakeClock(),
    logger: nullLogger,
    metrics: new Metrics(),
  });
  const plain = (b: Uint8Array) => void b;
  assertEquals(off.sinkFor("c", "u", plain, ["jpeg"]), plain);
});

Deno.test("transcoder: one converter per call for all its phones, frames only to those still watching", async () => {
  const { t, clock, converters } = setup();
  const a: Uint8Array[] = [];
  const b: Uint8Array[] = [];
  const sa = t.sinkFor("c", "ua", (x) => a.push(x), ["jpeg"]);
  const sb = t.sinkFor("c", "ub", (x) => b.push(x), ["jpeg"]);
  // The relay fans each door datagram out to both phones.
  for (const p of doorFrame(M4V, 1)) {
    sa(p);
    sb(p);
  }
  assertEquals(converters.length, 1);
  assertEquals(converters[0]!.proc.frames.length, 1, "each frame converted once");
  converters[0]!.proc.emit(TestCard.shared().frame(1));
  await tick();
  assert(a.length > 0 && a.length === b.length);
  // Talk began on phone a: the relay sends video to it only; b stops getting converted frames.
  clock.advance(1500);
  const before = b.length;
  for (const p of doorFrame(M4V, 2)) sa(p);
  converters[0]!.proc.emit(TestCard.shared().frame(2));
  await tick();
  assertEquals(b.length, before);
  assert(a.length > before);
  await t.close();
});

Deno.test("transcoder: a full input queue drops frames until the next I-frame", async () => {
  const clock = new FakeClock();
  const metrics = new Metrics();
  const writes: Uint8Array[] = [];
  const pending: (() => void)[] = [];
  class SlowConverter extends FakeConverter {
    override write(f: Uint8Array): Promise<void> {
      writes.push(f);
      return new Promise<void>((r) => pending.push(r));
    }
  }
  const t = new Transcoder({
    mode: "auto",
    clock,
    logger: nullLogger,
    metrics,
    allowed: () => true,
    maxQueuedFrames: 2,
    start: () => new SlowConverter(),
  });
  const s = t.sinkFor("c", "u", () => {}, ["jpeg"]);
  for (let n = 1; n <= 10; n++) for (const p of doorFrame(M4V, n)) s(p);
  // Frames 1, 2 queued; 3 found the queue full, 4–10 are P-frames waiting for an I-frame.
  assertEquals(writes.length, 2);
  assertEquals(metrics.get("transcode_frames_dropped_total"), 1);
  pending.splice(0).forEach((r) => r());
  await tick();
  for (const p of doorFrame(M4V, 11)) s(p);
  assertEquals(writes.length, 3);
  assertEquals(writes[2], M4V.frame(11));
  await t.close();
});

Deno.test({
  name: "transcoder: ffmpeg turns the MPEG-4 fixture into JPEG frames, and is gone after close",
  ignore: !mayRunFfmpeg() || !(() => {
    try {
      return new Deno.Command("ffmpeg", { args: ["-version"], stdout: "null" }).outputSync()
        .success;
    } catch {
      return false;
    }
  })(),
  fn: async () => {
    const clock = new FakeClock();
    const t = new Transcoder({ mode: "auto", clock, logger: nullLogger, metrics: new Metrics() });
    const got: MediaPacket[] = [];
    let resolve!: () => void;
    const twoFrames = new Promise<void>((r) => (resolve = r));
    const send = t.sinkFor("c", "u", (b) => {
      got.push(decodePacket(b.slice()) as MediaPacket);
      if (new Set(got.map((p) => p.frameNo)).size >= 3) resolve();
    }, ["jpeg"]);
    const timer = setTimeout(resolve, 10_000);
    // The phone joins mid-stream: the converter starts at the door's next I-VOP (frame 11).
    for (let n = 5; n <= 20; n++) for (const p of doorFrame(M4V, n)) send(p);
    await twoFrames;
    clearTimeout(timer);
    await t.close();
    const first = got.filter((p) => p.frameNo === 1);
    assert(first.length > 0, "a converted frame");
    const jpeg = new Uint8Array(first[0]!.frameLen);
    let at = 0;
    for (const p of first) {
      jpeg.set(p.payload, at);
      at += p.payload.length;
    }
    assertEquals([jpeg[0], jpeg[1], jpeg.at(-2), jpeg.at(-1)], [0xff, 0xd8, 0xff, 0xd9]);
    assertEquals(t.size, 0);
    // The picture is the test card (a decoder that missed the stream's headers draws grey).
    const rgb = new Deno.Command("ffmpeg", {
      args: [
        "-loglevel",
        "error",
        "-f",
        "mjpeg",
        "-i",
        "pipe:0",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "pipe:1",
      ],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const w = rgb.stdin.getWriter();
    await w.write(jpeg);
    await w.close();
    const { stdout } = await rgb.output();
    const px = (
      x: number,
      y: number,
    ) => [...stdout.subarray((y * 352 + x) * 3, (y * 352 + x) * 3 + 3)];
    const bars = [22, 66, 110, 154, 198, 242, 286, 330].map((x) => px(x, 100));
    assertTestCard(bars, "MPEG-4 converted to JPEG", 44);
  },
});
