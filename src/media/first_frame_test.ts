import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { encodeMedia, OP } from "../protocol/mod.ts";
import { FirstFrame, type Frame } from "./first_frame.ts";
import { MediaRelay } from "./relay.ts";
import { Metrics } from "../metrics.ts";
import { nullLogger } from "../testing/mod.ts";
import type { LiveCallInfo } from "../call/ports.ts";

const parties = {
  caller: "M00010100",
  callerIp: "10.0.0.5",
  callee: "S00010108090",
  calleeIp: "10.0.0.2",
};

/** A frame's chunks as the door sends them (1200 bytes each, 1-based index). */
function chunks(
  frame: Uint8Array,
  frameNo: number,
  dataType = 2,
  payloadOffset: 77 | 86 = 77,
): Uint8Array[] {
  const total = Math.ceil(frame.length / 1200);
  return Array.from({ length: total }, (_, i) =>
    encodeMedia({
      op: OP.CALLUP,
      ...parties,
      timestamp: frameNo * 40,
      dataType,
      frameNo,
      frameLen: frame.length,
      totalPackets: total,
      packet: i + 1,
      payloadOffset,
      payload: frame.subarray(i * 1200, (i + 1) * 1200),
    }));
}

const audio = encodeMedia({
  op: OP.CALLUP,
  ...parties,
  timestamp: 8,
  dataType: 1,
  frameNo: 1,
  payload: new Uint8Array(64),
});

function jpeg(size: number, seed: number): Uint8Array {
  const b = new Uint8Array(size).map((_, i) => (i * 7 + seed) & 0xff);
  b.set([0xff, 0xd8, 0xff, 0xe0], 0);
  b.set([0xff, 0xd9], size - 2);
  return b;
}

function feed(ff: FirstFrame, packets: Uint8Array[], at: 77 | 86 = 77): Frame | undefined {
  for (const p of packets) {
    const r = ff.push(p, at);
    if (typeof r === "object") return r;
  }
  return undefined;
}

Deno.test("first frame: a JPEG from chunks out of order (index 1 last), audio between", () => {
  const frame = jpeg(3000, 1);
  const [c1, c2, c3] = chunks(frame, 9, 3);
  const got = feed(new FirstFrame(), [c3!, audio, c2!, audio, c1!]);
  assertEquals(got?.bytes, frame);
  assertEquals(got?.dataType, 3, "MJPEG: any frame that is a JPEG");
});

Deno.test("first frame: joined mid-frame, a lost chunk, a P-frame and an oversize I-frame are skipped", () => {
  const ff = new FirstFrame({ maxBytes: 10_000 });
  const mid = chunks(new Uint8Array(3000).fill(1), 4, 2).slice(1); // its index 1 went by
  const lost = chunks(new Uint8Array(3000).fill(2), 5, 2);
  lost.splice(1, 1);
  const pFrame = chunks(new Uint8Array(2500).fill(3), 6, 3);
  const big = chunks(new Uint8Array(12_000).fill(4), 7, 2);
  const good = new Uint8Array(2600).map((_, i) => i & 0xff);
  const got = feed(ff, [...mid, ...lost, ...pFrame, ...big, ...chunks(good, 8, 4, 86)], 86);
  assertEquals(got?.bytes, good);
  assertEquals(got?.dataType, 4);
  assertEquals(ff.push(chunks(good, 9, 4, 86)[0]!, 86), "give_up", "done: nothing more to do");
});

Deno.test("first frame: gives up after its tries", () => {
  const ff = new FirstFrame({ maxTries: 3 });
  const results = [1, 2, 3, 4, 5].map((n) => ff.push(chunks(new Uint8Array(3000), n, 3)[0]!, 77));
  assertEquals(results, ["more", "more", "more", "give_up", "give_up"]);
});

const info: LiveCallInfo = {
  callId: "c1",
  mediaKeyOf: () => "k".repeat(32),
  roomKey: "00010108090",
  door: { hostname: "10.0.0.5", port: 8302 },
  doorAddress: "M00010100",
  parties,
};

Deno.test("relay snapshot tap: the first complete frame once per call, while forwarding goes on; none without the option", () => {
  const taken: { callId: string; bytes: Uint8Array; dataType: number }[] = [];
  let sent = 0;
  const relay = new MediaRelay({
    logger: nullLogger,
    metrics: new Metrics(),
    sendToPhone: () => sent++,
    sendToDoor: () => {},
    onFirstFrame: (callId, bytes, dataType) => taken.push({ callId, bytes, dataType }),
  });
  relay.open(info);
  relay.route("c1", [], undefined);
  const first = jpeg(5000, 2);
  for (const p of [...chunks(first, 1, 2), ...chunks(jpeg(5000, 3), 2, 2)]) {
    relay.onDoorMedia(p, info.door);
  }
  assertEquals(taken.length, 1);
  assertEquals(taken[0]!.callId, "c1");
  assertEquals(taken[0]!.bytes, first);
  assertEquals(relay.countersOf("c1")!.doorIn, 10, "every chunk still counted");

  const plain = new MediaRelay({
    logger: nullLogger,
    metrics: new Metrics(),
    sendToPhone: () => {},
    sendToDoor: () => {},
  });
  plain.open(info);
  for (const p of chunks(first, 1, 2)) plain.onDoorMedia(p, info.door);
  assert(plain.countersOf("c1")!.doorIn === 5);
});
