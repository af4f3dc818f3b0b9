import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { nullLogger } from "../testing/mod.ts";
import { Metrics } from "../metrics.ts";
import type { Endpoint } from "../net/port.ts";
import { decodePacket, encodeMedia, OP, PacketDecodeError } from "../protocol/mod.ts";
import type { LiveCallInfo } from "../call/ports.ts";
import { MediaRelay } from "./relay.ts";
import { COLLECT_LENGTH, COUNTER, type MediaOffload } from "./offload.ts";

const DOOR: Endpoint = { hostname: "10.0.0.5", port: 8302 };
/** Each phone's own media key in the call. */
const KEYS: Record<string, string> = { a: "a".repeat(32), b: "b".repeat(32) };
const info: LiveCallInfo = {
  callId: "c1",
  mediaKeyOf: (uid) => KEYS[uid],
  roomKey: "00010108090",
  door: DOOR,
  doorAddress: "M00010100",
  parties: {
    caller: "M00010100",
    callerIp: "10.0.0.5",
    callee: "S00010108090",
    calleeIp: "10.0.0.2",
  },
};
const PHONE_A: Endpoint = { hostname: "10.0.1.1", port: 40000 };
const PHONE_B: Endpoint = { hostname: "10.0.1.2", port: 40001 };

function setup(now = () => 0) {
  const toPhones: { to: Endpoint; bytes: Uint8Array }[] = [];
  const toDoor: { to: Endpoint; bytes: Uint8Array }[] = [];
  const metrics = new Metrics();
  const relay = new MediaRelay({
    logger: nullLogger,
    metrics,
    sendToPhone: (bytes, to) => toPhones.push({ to, bytes: bytes.slice() }),
    sendToDoor: (bytes, to) => toDoor.push({ to, bytes: bytes.slice() }),
    now,
  });
  relay.open(info);
  return { relay, toPhones, toDoor, metrics };
}

const control = (uid: string, key = KEYS[uid] ?? "k".repeat(32), callId = "c1") =>
  new TextEncoder().encode(JSON.stringify({ order: "enable_video", uid, callId, mediaKey: key }));

const doorVideo = (frameNo: number, payloadOffset: 77 | 86 = 77) =>
  encodeMedia({
    op: OP.CALLUP,
    ...info.parties,
    timestamp: frameNo * 40,
    dataType: 3,
    frameNo,
    payloadOffset,
    payload: new Uint8Array(1200),
  });

const phoneAudio = (ts: number, frameNo: number, payloadOffset: 77 | 86 = 77) =>
  encodeMedia({
    op: OP.CALLDOWN,
    caller: "X1",
    callerIp: "1.2.3.4",
    callee: "Y00010108090",
    calleeIp: "5.6.7.8",
    timestamp: ts,
    dataType: 1,
    frameNo,
    payloadOffset,
    payload: new Uint8Array(64).fill(0x55),
  });

Deno.test("relay: door video reaches both ringing phones, then only the talker", () => {
  const { relay, toPhones, toDoor } = setup();
  relay.route("c1", ["a", "b"], undefined);
  relay.onPhoneDatagram(control("a"), PHONE_A);
  assertEquals(toDoor.length, 0, "no I-frame request before the door streams");
  relay.onDoorMedia(doorVideo(0), DOOR);
  relay.onPhoneDatagram(control("b"), PHONE_B);
  relay.onPhoneDatagram(control("b"), PHONE_B);
  assertEquals(
    toDoor.filter((p) => p.bytes[8] === OP.FORCEIFRAME).length,
    1,
    "one I-frame request per new watcher",
  );
  toPhones.length = 0;
  relay.onDoorMedia(doorVideo(1), DOOR);
  assertEquals(toPhones.map((p) => p.to.port).sort(), [40000, 40001]);
  assertEquals(toPhones[0]!.bytes.length, 1277);
  relay.route("c1", ["a"], "a");
  toPhones.length = 0;
  relay.onDoorMedia(doorVideo(2), DOOR);
  assertEquals(toPhones.map((p) => p.to.port), [40000]);
});

Deno.test("relay: door audio reaches no phone until there is a talker (a door talking for an unlock)", () => {
  const { relay, toPhones } = setup();
  relay.route("c1", ["a", "b"], undefined);
  relay.onPhoneDatagram(control("a"), PHONE_A);
  relay.onPhoneDatagram(control("b"), PHONE_B);
  const doorAudio = encodeMedia({
    op: OP.CALLUP,
    ...info.parties,
    timestamp: 8,
    dataType: 1,
    frameNo: 1,
    payloadOffset: 77,
    payload: new Uint8Array(64),
  });
  toPhones.length = 0;
  relay.onDoorMedia(doorAudio, DOOR);
  relay.onDoorMedia(doorVideo(1), DOOR);
  assertEquals(toPhones.map((p) => p.bytes[61]), [3, 3], "video to both, audio to none");
  assertEquals(relay.totals.dropped.door_audio_before_talk, 1);
  relay.route("c1", ["a"], "a");
  toPhones.length = 0;
  relay.onDoorMedia(doorAudio, DOOR);
  assertEquals(toPhones.map((p) => [p.to.port, p.bytes[61]]), [[40000, 1]]);
});

Deno.test("relay: enable_video is acknowledged; a wrong key or unknown call is dropped and counted", () => {
  const { relay, toPhones } = setup();
  relay.route("c1", ["a"], undefined);
  relay.onPhoneDatagram(control("a", "wrong"), PHONE_A);
  relay.onPhoneDatagram(control("a", KEYS.a, "nope"), PHONE_A);
  relay.onPhoneDatagram(new TextEncoder().encode("{not json"), PHONE_A);
  assertEquals(toPhones.length, 0);
  assertEquals([
    relay.totals.dropped.bad_key,
    relay.totals.dropped.no_call,
    relay.totals.dropped.bad_control,
  ], [1, 1, 1]);
  relay.onPhoneDatagram(control("a"), PHONE_A);
  assertEquals(new TextDecoder().decode(toPhones[0]!.bytes), '{"order":"enable_video ok"}');
});

Deno.test("relay: phone audio is dropped before talk, forwarded after with the call's header, +8 ms / +1", () => {
  const { relay, toDoor } = setup();
  relay.route("c1", ["a"], undefined);
  relay.onPhoneDatagram(control("a"), PHONE_A);
  toDoor.length = 0;
  relay.onPhoneDatagram(phoneAudio(5000, 7), PHONE_A);
  assertEquals([toDoor.length, relay.totals.dropped.before_talk], [0, 1]);
  relay.route("c1", ["a"], "a");
  relay.onPhoneDatagram(phoneAudio(5000, 7), PHONE_A);
  relay.onPhoneDatagram(phoneAudio(4000, 3), PHONE_A); // phone's own clock goes back: door must not see it
  assertEquals(toDoor.length, 2);
  const p1 = decodePacket(toDoor[0]!.bytes);
  const p2 = decodePacket(toDoor[1]!.bytes);
  assert(!(p1 instanceof PacketDecodeError) && p1.kind === "media");
  assert(!(p2 instanceof PacketDecodeError) && p2.kind === "media");
  assertEquals([p1.caller, p1.callerIp, p1.callee, p1.calleeIp], [
    "M0001010",
    "10.0.0.5",
    "S00010108090",
    "10.0.0.2",
  ]);
  assertEquals([p1.op, p1.dataType, p1.payload.length, p1.payloadOffset], [OP.CALLDOWN, 1, 64, 77]);
  assertEquals([p2.timestamp - p1.timestamp, p2.frameNo - p1.frameNo], [8, 1]);
  assertEquals(toDoor[0]!.to, DOOR);
});

Deno.test("relay: audio to a door that uses payload at 86 is re-framed to 86", () => {
  const { relay, toDoor } = setup();
  relay.route("c1", ["a"], "a");
  relay.onDoorMedia(doorVideo(1, 86), DOOR);
  relay.onPhoneDatagram(control("a"), PHONE_A);
  toDoor.length = 0;
  relay.onPhoneDatagram(phoneAudio(100, 1, 77), PHONE_A);
  const p = decodePacket(toDoor[0]!.bytes);
  assert(!(p instanceof PacketDecodeError) && p.kind === "media");
  assertEquals([toDoor[0]!.bytes.length, p.payloadOffset, p.payload[0]], [150, 86, 0x55]);
});

Deno.test("relay: a phone that moves to a new address with its key keeps receiving; the old one is dropped", () => {
  let t = 0;
  const { relay, toPhones } = setup(() => t);
  relay.route("c1", ["a"], "a");
  relay.onPhoneDatagram(control("a"), PHONE_A);
  const moved = { hostname: "172.16.0.9", port: 50000 };
  t = 3000; // the old address has been silent for 3 s: the phone changed network
  relay.onPhoneDatagram(control("a"), moved);
  toPhones.length = 0;
  relay.onDoorMedia(doorVideo(3), DOOR);
  assertEquals(toPhones.map((p) => p.to), [moved]);
  relay.onPhoneDatagram(phoneAudio(1, 1), PHONE_A);
  assertEquals(relay.totals.dropped.unknown_source, 1);
});

Deno.test("relay: a control datagram replayed from another source cannot steal a live stream", () => {
  let t = 0;
  const { relay, toPhones } = setup(() => t);
  relay.route("c1", ["a"], "a");
  relay.onPhoneDatagram(control("a"), PHONE_A);
  t = 1000;
  relay.onPhoneDatagram(phoneAudio(1, 1), PHONE_A); // the phone is alive
  t = 2500;
  relay.onPhoneDatagram(control("a"), { hostname: "10.9.9.9", port: 1234 });
  assertEquals(relay.totals.dropped.relatch_refused, 1);
  toPhones.length = 0;
  relay.onDoorMedia(doorVideo(3), DOOR);
  assertEquals(toPhones.map((p) => p.to), [PHONE_A]);
  // The phone itself re-asks on its authenticated socket: its next new address latches at once.
  relay.enableUdp("c1", "a");
  const moved = { hostname: "172.16.0.9", port: 50000 };
  relay.onPhoneDatagram(control("a"), moved);
  toPhones.length = 0;
  relay.onDoorMedia(doorVideo(4), DOOR);
  assertEquals(toPhones.map((p) => p.to), [moved]);
});

Deno.test("relay: a key replayed from another source for a phone outside the call does not latch", () => {
  const { relay, toPhones } = setup();
  relay.route("c1", ["a"], undefined);
  relay.onPhoneDatagram(control("mallory"), { hostname: "6.6.6.6", port: 1 });
  relay.onDoorMedia(doorVideo(1), DOOR);
  assertEquals(toPhones.length, 0);
});

Deno.test("relay: nothing flows after the call is closed", () => {
  const { relay, toPhones, toDoor } = setup();
  relay.route("c1", ["a"], "a");
  relay.onPhoneDatagram(control("a"), PHONE_A);
  relay.close("c1");
  toPhones.length = 0;
  toDoor.length = 0;
  relay.onDoorMedia(doorVideo(9), DOOR);
  relay.onPhoneDatagram(phoneAudio(1, 1), PHONE_A);
  relay.onPhoneDatagram(control("a"), PHONE_A);
  assertEquals([toPhones.length, toDoor.length], [0, 0]);
});

Deno.test("relay: WebSocket transport carries the same datagrams both ways", () => {
  const { relay, toDoor } = setup();
  const frames: Uint8Array[] = [];
  relay.route("c1", ["a"], "a");
  assert(relay.enableWs("c1", "a", (b) => frames.push(b.slice())));
  const video = doorVideo(4);
  relay.onDoorMedia(video, DOOR);
  assertEquals(frames.map((f) => f.toHex()), [video.toHex()]);
  toDoor.length = 0;
  relay.wsAudio("a", phoneAudio(1, 1));
  assertEquals(toDoor.length, 1);
  assertEquals(toDoor[0]!.bytes[8], OP.CALLDOWN);
});

Deno.test("relay: /metrics shows totals only; per-call counters are in countersOf (live state)", () => {
  const { relay, metrics } = setup();
  relay.route("c1", ["a"], undefined);
  relay.onPhoneDatagram(control("a"), PHONE_A);
  relay.onDoorMedia(doorVideo(1), DOOR);
  const text = metrics.render();
  assert(text.includes("media_door_packets_in_total 1"), text);
  assert(text.includes("media_phone_packets_out_total 1"), text);
  assert(!text.includes("callId"), text);
  assertEquals(relay.countersOf("c1")?.toPhones, 1);
  assert(text.includes("# TYPE media_dropped_total counter"), text);
});

Deno.test("relay: binary frames from a phone that has not enabled video are dropped and counted", () => {
  const { relay, toDoor } = setup();
  relay.route("c1", ["a"], "a");
  relay.wsAudio("a", phoneAudio(1, 1));
  assertEquals([toDoor.length, relay.totals.dropped.unknown_source], [0, 1]);
});

Deno.test("relay: an OEM door (magic QIUSHI) gets the phone's XXXCID audio in its own magic", () => {
  const toDoor: Uint8Array[] = [];
  const relay = new MediaRelay({
    logger: nullLogger,
    metrics: new Metrics(),
    magic: "QIUSHI",
    sendToPhone: () => {},
    sendToDoor: (bytes) => void toDoor.push(bytes.slice()),
  });
  relay.open(info);
  relay.route("c1", ["a"], "a");
  relay.onPhoneDatagram(control("a"), PHONE_A);
  relay.onPhoneDatagram(phoneAudio(1, 1), PHONE_A);
  assertEquals(new TextDecoder().decode(toDoor.at(-1)!.subarray(0, 6)), "QIUSHI");
});

Deno.test("relay: a phone of the call cannot latch for another uid: its key is its own", () => {
  const { relay, toPhones, toDoor } = setup();
  relay.route("c1", ["a"], "a"); // b was told "answered elsewhere"
  assert(relay.enableWs("c1", "a", () => {}));
  const rogue = { hostname: "10.0.1.2", port: 40009 };
  relay.onPhoneDatagram(control("a", KEYS.b), rogue);
  assertEquals([relay.totals.dropped.bad_key, toPhones.length], [1, 0]);
  relay.onPhoneDatagram(phoneAudio(1, 1), rogue);
  assertEquals(toDoor.length, 0);
});

Deno.test("relay: an open WebSocket sink is not taken over by a control datagram unless the phone re-asks", () => {
  let open = true;
  const { relay, toPhones } = setup();
  relay.route("c1", ["a"], "a");
  const frames: Uint8Array[] = [];
  assert(relay.enableWs("c1", "a", (b) => frames.push(b), () => open));
  // The phone's own key, replayed from elsewhere while its WebSocket is live: refused.
  relay.onPhoneDatagram(control("a"), PHONE_B);
  assertEquals([relay.totals.dropped.relatch_refused, toPhones.length], [1, 0]);
  relay.onDoorMedia(doorVideo(1), DOOR);
  assertEquals(frames.length, 1);
  // The phone asks for UDP on its authenticated socket: its datagram latches at once.
  relay.enableUdp("c1", "a");
  relay.onPhoneDatagram(control("a"), PHONE_A);
  relay.onDoorMedia(doorVideo(2), DOOR);
  assertEquals([frames.length, toPhones.at(-1)!.to], [1, PHONE_A]);
  // Back on the WebSocket, which then closes: a datagram may latch (nothing live is stolen).
  assert(relay.enableWs("c1", "a", (b) => frames.push(b), () => open));
  open = false;
  relay.onPhoneDatagram(control("a"), PHONE_B);
  toPhones.length = 0;
  relay.onDoorMedia(doorVideo(3), DOOR);
  assertEquals(toPhones.map((p) => p.to), [PHONE_B]);
});

Deno.test("relay: phone audio is paced to the real-time rate; timestamps follow the clock", () => {
  let t = 1000;
  const { relay, toDoor, metrics } = setup(() => t);
  relay.route("c1", ["a"], "a");
  relay.onPhoneDatagram(control("a"), PHONE_A);
  toDoor.length = 0;
  const ts = () =>
    toDoor.map((p) => {
      const d = decodePacket(p.bytes);
      assert(!(d instanceof PacketDecodeError) && d.kind === "media");
      return d.timestamp;
    });
  // A flood: 10 packets every 8 ms for 1 s (10× the real-time rate).
  for (let tick = 0; tick < 125; tick++, t += 8) {
    for (let i = 0; i < 10; i++) relay.onPhoneDatagram(phoneAudio(tick, tick), PHONE_A);
  }
  const sent = toDoor.length;
  assert(sent >= 125 && sent <= 125 + 16, `forwarded ${sent} in 1 s`);
  assertEquals(relay.totals.dropped.paced, 1250 - sent);
  assert(metrics.render().includes(`media_dropped_total{reason="paced"} ${1250 - sent}`));
  const stamps = ts();
  assert(
    stamps.at(-1)! - stamps[0]! <= 1000 + 16 * 8,
    `door timestamps span ${stamps.at(-1)! - stamps[0]!} ms`,
  );
  // Strictly increasing, +8 within a burst.
  for (let i = 1; i < stamps.length; i++) assert(stamps[i]! > stamps[i - 1]!);
  assertEquals(stamps[1]! - stamps[0]!, 8);
  // After 2 s of silence the timestamps jump with the clock rather than continuing at +8: the
  // door's timestamp is again the time since the first packet (plus the first 8 ms).
  t += 2000;
  relay.onPhoneDatagram(phoneAudio(1, 1), PHONE_A);
  assertEquals(ts().at(-1)! - stamps[0]!, t - 1000);
});

/** A recording stand-in for the native engine: the routes it was given, counters it hands back. */
class FakeOffload implements MediaOffload {
  doors: { native: boolean; talking: boolean; form: number; phones: number[] }[] = [];
  talkers: { from: Endpoint | undefined; state: number[] }[] = [];
  pending = new Float64Array(COLLECT_LENGTH);
  released: number[] = [];
  allocate() {
    return 7;
  }
  release(slot: number) {
    this.released.push(slot);
  }
  routeDoor(
    _slot: number,
    _door: Endpoint,
    native: boolean,
    talking: boolean,
    form: number,
    phones: readonly Endpoint[],
  ) {
    this.doors.push({ native, talking, form, phones: phones.map((p) => p.port) });
  }
  talker(_slot: number, from: Endpoint | undefined, _p: Uint8Array, state: Float64Array) {
    this.talkers.push({ from, state: [...state] });
  }
  collect(_slot: number, out: Float64Array) {
    out.set(this.pending);
    this.pending.fill(0, 0, COUNTER.form); // counters are read and reset; the state stays
  }
}

Deno.test("relay with a native engine: routes it once the snapshot is taken, never with a WebSocket sink, and merges its counters", () => {
  const off = new FakeOffload();
  off.pending[COUNTER.heardAgo] = -1;
  let t = 0;
  const frames: string[] = [];
  const relay = new MediaRelay({
    logger: nullLogger,
    metrics: new Metrics(),
    sendToPhone: () => {},
    sendToDoor: () => {},
    now: () => t,
    offload: off,
    onFirstFrame: (id) => frames.push(id),
  });
  relay.open(info);
  relay.route("c1", ["a", "b"], undefined);
  relay.onPhoneDatagram(control("a"), PHONE_A);
  assertEquals(off.doors.at(-1), { native: false, talking: false, form: 77, phones: [40000] });
  // The first complete frame goes to the snapshot tap in JS; then the engine takes the door media.
  const iFrame = doorVideo(1);
  iFrame[61] = 2; // data type: CIF I-frame, one chunk
  relay.onDoorMedia(iFrame, DOOR);
  assertEquals(frames, ["c1"]);
  assertEquals(off.doors.at(-1)!.native, true);
  // A WebSocket viewer: door media comes back to JS (the engine only sends UDP).
  relay.enableWs("c1", "b", () => {});
  assertEquals(off.doors.at(-1), { native: false, talking: false, form: 77, phones: [40000] });
  // Talk with a UDP talker: its audio route carries the relay's timestamp state.
  relay.route("c1", ["a"], "a");
  assertEquals(off.doors.at(-1), { native: true, talking: true, form: 77, phones: [40000] });
  assertEquals(off.talkers.length, 1);
  assertEquals(off.talkers[0]!.from, PHONE_A);
  assertEquals(off.talkers[0]!.state.slice(0, 2), [0, 0]);
  // The engine's counters join the call's and the totals; its talker state comes back.
  off.pending[COUNTER.doorIn] = 500;
  off.pending[COUNTER.toPhones] = 480;
  off.pending[COUNTER.toDoor] = 100;
  off.pending[COUNTER.dropPaced] = 3;
  off.pending[COUNTER.form] = 86;
  off.pending[COUNTER.outTs] = 808;
  off.pending[COUNTER.outFrame] = 101;
  off.pending[COUNTER.originAge] = 800;
  off.pending[COUNTER.paceTokens] = 16;
  const c = relay.countersOf("c1")!;
  assertEquals([c.doorIn, c.toPhones, c.toDoor, c.dropped.paced], [501, 481, 100, 3]);
  assertEquals(relay.totals.doorIn, 501);
  // The talker leaves: the route is cleared and the state the engine had is what JS continues.
  t = 1000;
  relay.route("c1", ["a"], undefined);
  assertEquals(off.talkers.at(-1)!.from, undefined);
  relay.route("c1", ["a"], "a");
  assertEquals(off.talkers.at(-1)!.state.slice(0, 3), [808, 101, 800]);
  assertEquals(off.doors.at(-1)!.form, 86);
  relay.close("c1");
  assertEquals(off.released, [7]);
});
