/**
 * The web phone's pure core (`/app/core.js`, the `WP` global) run in Deno against the gateway's
 * own code: G.711 bit for bit as `src/sim/g711.ts`, the media header as `src/protocol/`, frame
 * reassembly from the door simulator's packets, codec sniffing on the video fixtures, the
 * provisioning link, DND times, backoff, the texts; and the other scripts parse.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { CORE_JS } from "../src/webapp/assets/core_js.ts";
import { APP_JS } from "../src/webapp/assets/app_js.ts";
import { WORKLET_JS } from "../src/webapp/assets/worklet_js.ts";
import { SW_JS_TEMPLATE } from "../src/webapp/assets/sw_js.ts";
import { alawToLinear, linearToAlaw, linearToUlaw, ulawToLinear } from "../src/sim/g711.ts";
import { CodedVideoSource, TestCard, videoPackets } from "../src/sim/media_source.ts";
import { decodePacket, encodeMedia, type MediaPacket } from "../src/protocol/mod.ts";

// deno-lint-ignore no-explicit-any
type Any = any;
const WP: Any = new Function(`${CORE_JS}\nreturn WP;`)();
const FIXTURES = new URL("./fixtures/video/", import.meta.url);
const PARTIES = {
  caller: "M00010100",
  callerIp: "127.0.0.2",
  callee: "S00010108090",
  calleeIp: "127.0.0.1",
};

Deno.test("web core: G.711 μ-law and A-law are the gateway's, for every code and sample", () => {
  for (let c = 0; c < 256; c++) {
    assertEquals(WP.ulawToLinear(c), ulawToLinear(c), `μ-law code ${c}`);
    assertEquals(WP.alawToLinear(c), alawToLinear(c), `A-law code ${c}`);
  }
  for (let s = -32768; s < 32768; s += 7) {
    assertEquals(WP.linearToUlaw(s), linearToUlaw(s), `μ-law of ${s}`);
    assertEquals(WP.linearToAlaw(s), linearToAlaw(s), `A-law of ${s}`);
  }
  // Float helpers round-trip within the law's step.
  const samples = Float32Array.from({ length: 64 }, (_, i) => 0.25 * Math.sin(i / 3));
  for (const law of ["ulaw", "alaw"]) {
    const back = WP.decodeG711(law, WP.encodeG711(law, samples));
    for (let i = 0; i < 64; i++) assert(Math.abs(back[i] - samples[i]!) < 0.01, `${law} ${i}`);
  }
  assertEquals(WP.encodeG711("ulaw", new Float32Array(4)), new Uint8Array(4).fill(0xff));
});

Deno.test("web core: the CALLDOWN packet it writes is what the gateway's codec reads", () => {
  const payload = Uint8Array.from({ length: 64 }, (_, i) => i * 3);
  const bytes = WP.audioPacket(payload, {
    timestamp: 0x01020304,
    frameNo: 65535,
    caller: "M00010100",
    callee: "S00010108090",
  });
  const p = decodePacket(bytes) as MediaPacket;
  assertEquals(p.kind, "media");
  assertEquals(
    [p.op, p.command, p.dataType, p.timestamp, p.frameNo, p.frameLen, p.totalPackets, p.packet],
    [8, 150, 1, 0x01020304, 65535, 64, 1, 1],
  );
  assertEquals([p.payloadOffset, p.dataLen, p.packLen], [77, 64, 1200]);
  assertEquals([p.caller, p.callee], ["M0001010", "S00010108090"]);
  assertEquals(p.payload, payload);
  // And it reads the gateway's packets, both header forms.
  for (const at of [77, 86] as const) {
    const m = WP.parseMedia(encodeMedia({
      op: 7,
      ...PARTIES,
      timestamp: 8,
      dataType: 3,
      frameNo: 9,
      frameLen: 2000,
      totalPackets: 2,
      packet: 2,
      payloadOffset: at,
      payload: new Uint8Array(800).fill(1),
    }));
    assertEquals([m.op, m.dataType, m.frameNo, m.frameLen, m.total, m.index, m.payload.length], [
      7,
      3,
      9,
      2000,
      2,
      2,
      800,
    ]);
  }
  assertEquals(WP.parseMedia(new Uint8Array(76)), null);
  const bad = WP.audioPacket(payload, { timestamp: 0, frameNo: 1 });
  bad[73] = 0; // Datalen 0: payload at neither 77 nor 86
  assertEquals(WP.parseMedia(bad), null);
});

function packetsOf(frame: Uint8Array, frameNo: number, iframe = true): Any[] {
  return videoPackets(frame, {
    parties: PARTIES,
    timestamp: frameNo * 66,
    frameNo,
    iframe,
    payloadOffset: 77,
  }).map((b) => WP.parseMedia(b));
}

Deno.test("web core: frames reassembled from 1200-byte chunks; a lost chunk drops that frame only", () => {
  const card = new TestCard();
  const r = new WP.Reassembler();
  const frames = [1, 2, 3, 4].map((n) => card.frame(n));
  const out: Any[] = [];
  // Frame 1 in order, frame 2 shuffled, frame 3 missing a chunk, frame 4 in order.
  for (const p of packetsOf(frames[0]!, 1)) out.push(r.push(p));
  for (const p of packetsOf(frames[1]!, 2).reverse()) out.push(r.push(p));
  for (const p of packetsOf(frames[2]!, 3).filter((p: Any) => p.index !== 2)) out.push(r.push(p));
  for (const p of packetsOf(frames[3]!, 4)) out.push(r.push(p));
  const done = out.filter(Boolean);
  assertEquals(done.map((f: Any) => f.frameNo), [1, 2, 4]);
  assertEquals(done[0].data, frames[0]);
  assertEquals(done[1].data, frames[1]);
  assertEquals(done[2].data, frames[3]);
  assertEquals([r.dropped, r.frames], [1, 3]);
  // A late chunk of an old frame, a duplicate, a bad index: ignored.
  assertEquals(r.push(packetsOf(frames[2]!, 3)[1]), null);
  assertEquals(r.push({ ...packetsOf(frames[0]!, 5)[0], index: 0 }), null);
  // Frame numbers wrap after 65535 to 1.
  const w = new WP.Reassembler();
  assert(w.push(packetsOf(frames[0]!, 65535).at(-1)) === null);
  for (const p of packetsOf(frames[0]!, 65535).slice(0, -1)) w.push(p);
  const after = packetsOf(frames[1]!, 1).map((p: Any) => w.push(p)).filter(Boolean);
  assertEquals(after.map((f: Any) => f.frameNo), [1]);
});

Deno.test("web core: the codec of a frame, and the WebCodecs string of an H.264 SPS", async () => {
  const h264 = new CodedVideoSource(await Deno.readFile(new URL("card.h264", FIXTURES)), "h264");
  const m4v = new CodedVideoSource(await Deno.readFile(new URL("card.m4v", FIXTURES)), "mpeg4");
  assertEquals(WP.sniffCodec(new TestCard().frame(1)), "jpeg");
  assertEquals(WP.sniffCodec(h264.frame(1)), "h264");
  assertEquals(WP.sniffCodec(h264.frame(2)), "h264");
  assertEquals(WP.sniffCodec(m4v.frame(1)), "mpeg4");
  assertEquals(WP.sniffCodec(m4v.frame(2)), "mpeg4");
  assertEquals(WP.sniffCodec(new Uint8Array(64)), "unknown");
  const key = WP.h264Info(h264.frame(1));
  assertEquals([key.key, key.codec], [true, "avc1.42C01E"]);
  assert(key.types.includes(7) && key.types.includes(8) && key.types.includes(5));
  const delta = WP.h264Info(h264.frame(2));
  assertEquals([delta.key, delta.codec], [false, null]);
});

/** A stand-in for WebCodecs: records what it was given, outputs one frame per chunk on flush. */
function fakeCodecs(refuse = false) {
  const log: string[] = [];
  class Chunk {
    constructor(readonly init: { type: string; timestamp: number; data: Uint8Array }) {}
  }
  class Decoder {
    decodeQueueSize = 0;
    #queue: Chunk[] = [];
    constructor(readonly init: { output: (f: unknown) => void; error: (e: unknown) => void }) {}
    configure(c: { codec: string }) {
      if (refuse) throw new TypeError("unsupported");
      log.push(`configure ${c.codec}`);
    }
    decode(c: Chunk) {
      log.push(`decode ${c.init.type} ${c.init.timestamp}`);
      this.#queue.push(c);
    }
    flush() {
      for (const c of this.#queue.splice(0)) {
        this.init.output({ timestamp: c.init.timestamp, close: () => log.push("frame closed") });
      }
      return Promise.resolve();
    }
    close() {
      log.push("close");
    }
  }
  return { log, env: { Decoder, Chunk } };
}

Deno.test("web core: the shared H.264 decoder waits for a key frame, resyncs after a loss, and decodes a still", async () => {
  const h264 = new CodedVideoSource(await Deno.readFile(new URL("card.h264", FIXTURES)), "h264");
  const { log, env } = fakeCodecs();
  const frames: unknown[] = [];
  const dec = new WP.H264Decoder((f: unknown) => frames.push(f), env);
  assertEquals(dec.decode(h264.frame(2), 1), "wait", "a delta frame first: nothing to decode");
  assertEquals(dec.decode(h264.frame(1), 2), "ok");
  assertEquals(dec.decode(h264.frame(2), 3), "ok");
  dec.resync();
  assertEquals(dec.decode(h264.frame(3), 4), "wait", "after a loss, deltas wait");
  assertEquals(dec.decode(h264.frame(11), 5), "ok", "frame 11 is the next IDR");
  await dec.flush();
  assertEquals(frames.length, 3);
  assertEquals(log, ["configure avc1.42C01E", "decode key 2", "decode delta 3", "decode key 5"]);
  dec.close();

  const still = await WP.decodeH264Still(h264.frame(1), env);
  assertEquals(still.timestamp, 0);
  assertEquals(await WP.decodeH264Still(h264.frame(2), env), null, "a delta frame is no still");
  assertEquals(await WP.decodeH264Still(h264.frame(1), fakeCodecs(true).env), null, "refused");
  assertEquals(
    new WP.H264Decoder(() => {}).decode(h264.frame(1), 0),
    "unsupported",
    "no WebCodecs in Deno",
  );
});

Deno.test("web core: the provisioning link (uid, room, token, community) both ways; bad ones named", () => {
  const room = {
    uid: "359608060142756",
    roomAddress: "Y00010108090",
    token: "a-b_c".repeat(8),
    community: "花苑 A",
  };
  const fragment = WP.provisioningFragment(room);
  assertEquals(
    fragment,
    new URLSearchParams({
      uid: room.uid,
      room: room.roomAddress,
      token: room.token,
      community: room.community,
    }).toString(),
  );
  assertEquals(WP.parseProvisioning(fragment).room, room);
  assertEquals(WP.parseProvisioning("#" + fragment).room, room);
  assertEquals(WP.parseProvisioning(fragment.replace("Y00010108090", "Y0001")).error, "room");
  assertEquals(WP.parseProvisioning("uid=&room=Y00010108090&token=t").error, "uid");
  assertEquals(WP.parseProvisioning("uid=u&room=Y00010108090").error, "token");
  assertEquals(
    WP.parseProvisioning(`uid=u&room=Y00010108090&token=t&community=${"x".repeat(65)}`).error,
    "community",
  );
  // One device, several rooms; the same uid and room again is a new token, not a second entry.
  let list = WP.addRoom([], room, 1);
  list = WP.addRoom(list, { ...room, roomAddress: "Y00010108091" }, 2);
  list = WP.addRoom(list, { ...room, token: "new" }, 3);
  assertEquals(list.map((r: Any) => [r.roomAddress, r.token]), [["Y00010108091", room.token], [
    "Y00010108090",
    "new",
  ]]);
  assertEquals(WP.describeRoom("Y00010108091"), {
    building: "1",
    unit: "1",
    room: "0809",
    extension: "1",
  });
  assertEquals(WP.describeDoor("M00010100"), { building: "1", unit: "1", door: "1" });
});

Deno.test("web core: do-not-disturb times: off, until, nightly across midnight (local time)", () => {
  const at = (h: number, m = 0, day = 10) => new Date(2026, 0, day, h, m).getTime();
  assertEquals(WP.dndUntil({ mode: "off" }, at(12)), 0);
  assertEquals(WP.dndUntil({ mode: "until", until: at(13) }, at(12)), at(13));
  assertEquals(WP.dndUntil({ mode: "until", until: at(11) }, at(12)), 0);
  const nightly = { mode: "nightly", from: "22:00", to: "07:00" };
  assertEquals(WP.dndUntil(nightly, at(12)), 0);
  assertEquals(WP.dndUntil(nightly, at(23, 30)), at(7, 0, 11));
  assertEquals(WP.dndUntil(nightly, at(3)), at(7));
  assertEquals(WP.dndUntil(nightly, at(7)), 0);
  assertEquals(WP.dndUntil({ mode: "nightly", from: "13:00", to: "14:00" }, at(13, 30)), at(14));
  assertEquals(WP.nextLocal(at(8), 7 * 60), at(7, 0, 11));
  assertEquals(WP.nextLocal(at(6), 7 * 60), at(7));
});

Deno.test("web core: reconnect backoff 1 s doubling to 30 s, jittered to at least half", () => {
  assertEquals([0, 1, 2, 3, 4, 5, 9].map((n) => WP.backoff(n, 1)), [
    1000,
    2000,
    4000,
    8000,
    16000,
    30000,
    30000,
  ]);
  assertEquals(WP.backoff(0, 0), 500);
});

Deno.test("web core: every text in English and Chinese; the buttons' names; the language pick", () => {
  const en = Object.keys(WP.STRINGS.en).sort();
  assertEquals(Object.keys(WP.STRINGS.zh).sort(), en);
  assertEquals(
    ["answer", "unlock", "hangup", "mute"].map((k) => [WP.t("en", k), WP.t("zh", k)]),
    [["Answer", "接听"], ["Open door", "开锁"], ["Hang up", "挂断"], ["Mute", "静音"]],
  );
  assertEquals(WP.t("en", "removed"), "This phone was removed by the building manager.");
  assertEquals(WP.t("zh", "removed"), "此手机已被物业管理员移除。");
  assertEquals(WP.t("en", "videoUnavailable"), "Video not available for this door");
  assertEquals(WP.t("en", "roomAdded", { room: "Y1" }), "Room Y1 added.");
  assertEquals(WP.pickLang(null, ["zh-CN"]), "zh");
  assertEquals(WP.pickLang(null, ["fr-FR", "zh-TW"]), "zh");
  assertEquals(WP.pickLang(null, ["en-GB", "zh"]), "en");
  assertEquals(WP.pickLang("en", ["zh-CN"]), "en");
  assertEquals(WP.pickLang(null, []), "en");
});

Deno.test("web core: the page, worklet and service worker scripts parse", () => {
  new Function(APP_JS);
  new Function(SW_JS_TEMPLATE.replace("@VERSION@", "v").replace("@SHELL@", "[]"));
  // The worklet is a module with classes; as a function body it parses too (no import/export).
  new Function(
    "AudioWorkletProcessor",
    "registerProcessor",
    "currentFrame",
    "sampleRate",
    WORKLET_JS,
  );
  for (const [name, text] of [["core", CORE_JS], ["app", APP_JS], ["worklet", WORKLET_JS]]) {
    assert(!text!.includes("${"), `${name}: no template placeholders left`);
  }
});

Deno.test("web push in the core: the notification's texts per language, the wake fragment, base64url", () => {
  const ring = {
    event: "ring",
    door: "M00010100",
    room: "Y00010108090",
    callId: "c-1",
    expiresAt: 2000,
  };
  assertEquals(WP.ringNotification("zh", ring, 1000), {
    title: "门口机来电",
    body: "1栋 1单元 1号门口机 呼叫 1栋 1单元 0809室",
    tag: "call-c-1",
    actions: [{ action: "answer", title: "接听" }, { action: "open", title: "开锁" }],
  });
  const en = WP.ringNotification("en", ring, 1000);
  assertEquals([en.title, en.actions.map((a: { title: string }) => a.title)], [
    "Door calling",
    ["Answer", "Open door"],
  ]);
  // Delivered after the call stopped waiting: a missed call, no actions.
  const late = WP.ringNotification("en", ring, 3000);
  assertEquals([late.title, late.actions], ["Missed call", []]);
  // The call ended: "Missed call" (nobody talked) or "Call ended", under the ring's tag.
  const end = { event: "ring ended", callId: "c-1", door: ring.door, room: ring.room };
  assertEquals(WP.endedNotification("zh", { ...end, missed: true }), {
    title: "未接来电",
    body: "1栋 1单元 1号门口机 呼叫过 1栋 1单元 0809室",
    tag: "call-c-1",
    missed: true,
  });
  const over = WP.endedNotification("en", { ...end, missed: false });
  assertEquals([over.title, over.tag, over.missed], ["Call ended", "call-c-1", false]);
  assertEquals(WP.parseWake("wake=c-1&action=answer"), { callId: "c-1", action: "answer" });
  assertEquals(WP.parseWake("#wake=c-1&action=evil"), { callId: "c-1", action: "show" });
  assertEquals(WP.parseWake("uid=u&room=Y00010108090&token=t"), null);
  assertEquals(WP.b64u(new Uint8Array([0xfb, 0xff, 0x01])), "-_8B");
});
