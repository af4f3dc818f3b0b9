import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/helpers/assert.ts";
import { FakeClock, MemoryNetwork, type MemoryPort } from "../testing/mod.ts";
import type { Endpoint } from "../net/port.ts";
import {
  type CallPacket,
  type CallParties,
  decodePacket,
  encodeCall,
  encodeMedia,
  type MediaPacket,
  MSG_TYPE,
  nsReplyFor,
  OP,
  type Packet,
  PacketDecodeError,
  replyTo,
  type SignalOp,
} from "../protocol/mod.ts";
import { DoorSim, type DoorSimEvent, type DoorSimOptions, roomAddressFor } from "./door_sim.ts";
import { doorSimCommand, parseDoorSimArgs } from "./door_cli.ts";
import { encodeG711, ulawToLinear } from "./g711.ts";
import { testCardFrameNumber } from "./media_source.ts";

const GW = "10.0.0.1";
const DOOR_IP = "10.0.0.2";
const GROUP = "238.9.9.1";
const DOOR = "M00010100";
const ROOM = "S00010108090";
const PARTIES: CallParties = { caller: DOOR, callerIp: DOOR_IP, callee: ROOM, calleeIp: GW };
const DOOR_EP: Endpoint = { hostname: DOOR_IP, port: 8302 };

/** A cheap video source: 2500-byte frames (3 packets) filled with the frame number. */
const tinyVideo = { frame: (n: number) => new Uint8Array(2500).fill(n & 0xff) };

function decode(bytes: Uint8Array): Packet {
  const p = decodePacket(bytes);
  if (p instanceof PacketDecodeError) throw p;
  return p;
}

/** A door sim on a memory network with a scripted gateway port at 10.0.0.1:8302. */
class Harness {
  readonly clock = new FakeClock(10_000);
  readonly net = new MemoryNetwork();
  readonly gw: MemoryPort;
  readonly door: MemoryPort;
  readonly sim: DoorSim;
  readonly t0: number;

  constructor(options: Partial<DoorSimOptions> = {}) {
    this.gw = this.net.bind(GW, 8302);
    this.net.join(this.gw, GROUP);
    this.door = this.net.bind(DOOR_IP, 8302);
    this.t0 = this.clock.now();
    this.sim = new DoorSim({
      socket: this.door,
      clock: this.clock,
      video: tinyVideo,
      lingerMs: 0,
      ...options,
    });
  }

  async flush(): Promise<void> {
    for (let i = 0; i < 40; i++) await Promise.resolve();
  }

  /** Advances fake time in small steps, letting the sim handle datagrams in between. */
  async run(ms: number, step = 4): Promise<void> {
    for (let left = ms; left > 0; left -= step) {
      this.clock.advance(Math.min(step, left));
      await this.flush();
    }
  }

  rel(t: number): number {
    return Math.round(t - this.t0);
  }

  events<T extends DoorSimEvent["type"]>(type: T): Extract<DoorSimEvent, { type: T }>[] {
    return this.sim.events.filter((e) => e.type === type) as Extract<DoorSimEvent, { type: T }>[];
  }

  /** Signalling packets the door sent, decoded, with where they went. */
  sentCalls(op?: number, type?: number): { p: CallPacket; data: Uint8Array; to: Endpoint }[] {
    return this.door.sent
      .filter((s) => s.data[6] === 150 && s.data[8] !== OP.CALLUP)
      .map((s) => ({ p: decode(s.data) as CallPacket, data: s.data, to: s.to }))
      .filter((x) =>
        (op === undefined || x.p.op === op) && (type === undefined || x.p.type === type)
      );
  }

  media(dataType?: number): { p: MediaPacket; data: Uint8Array; to: Endpoint }[] {
    return this.door.sent
      .filter((s) => s.data[6] === 150 && s.data[8] === OP.CALLUP)
      .map((s) => ({ p: decode(s.data) as MediaPacket, data: s.data, to: s.to }))
      .filter((x) => dataType === undefined || x.p.dataType === dataType);
  }

  /** Sends a gateway packet of `op` for the call (from the gateway unless `from` is given). */
  async send(
    op: SignalOp,
    extra: Partial<CallPacket> & { type?: 1 | 2 } = {},
    from: MemoryPort = this.gw,
  ): Promise<Uint8Array> {
    const bytes = encodeCall({ type: MSG_TYPE.ASK, op, ...PARTIES, ...extra });
    from.send(bytes, DOOR_EP);
    await this.flush();
    return bytes;
  }

  async sendRaw(bytes: Uint8Array, from: MemoryPort = this.gw, to = DOOR_EP): Promise<void> {
    from.send(bytes, to);
    await this.flush();
  }

  /** Starts the sim and answers its NS ask from the gateway. */
  async resolve(): Promise<void> {
    void this.sim.start();
    await this.flush();
    const ask = this.door.sent.find((s) => s.data[6] === 154)!;
    await this.sendRaw(nsReplyFor(ask.data, { address: ROOM, ip: GW }), this.gw, {
      hostname: DOOR_IP,
      port: 8302,
    });
  }

  /** Starts the sim and brings it to ringing. */
  async ring(): Promise<void> {
    await this.resolve();
    await this.send(OP.CALLANSWER, { multicast: 0, groupIp: "0.0.0.0" });
    assertEquals(this.sim.phase, "ringing");
  }

  /** Ends the sim (if still running) and checks that nothing is left behind. */
  async close(): Promise<void> {
    const summary = await this.sim.close();
    this.gw.close();
    assertEquals(this.clock.pending, 0, "timers left behind");
    await assertRejects(() => this.door.receive());
    return void summary;
  }
}

Deno.test("door sim: the NS ask goes to the group every 100 ms, 6 sends, then the sim gives up", async () => {
  const h = new Harness();
  const done = h.sim.start();
  // Waiting for what can no longer happen fails with the reason instead of hanging.
  const answered = h.sim.when("answered").then(() => "", (e: Error) => e.message);
  await h.run(1000, 10);
  const asks = h.door.sent.filter((s) => s.data[6] === 154);
  assertEquals(asks.length, 6);
  for (const a of asks) {
    assertEquals(a.data.length, 56);
    assertEquals(a.to, { hostname: GROUP, port: 8302 });
    const p = decode(a.data);
    assert(p.kind === "ns_ask" && p.target === ROOM && p.asker === "M0001010");
    assertEquals(p.askerIp, DOOR_IP);
  }
  assertEquals(h.events("ns_sent").map((e) => h.rel(e.t)), [0, 100, 200, 300, 400, 500]);
  const summary = await done;
  assertEquals(summary.reason, "ns_unanswered");
  assertEquals(summary.completed, false);
  assertEquals(h.sentCalls().length, 0, "no CALL without a resolution");
  assertEquals(h.rel(h.events("ended")[0]!.t), 600);
  assertEquals(await answered, `Cannot see the door's "answered": its call ended (ns_unanswered)`);
  // Asked after the end: at once.
  assertEquals(
    await h.sim.when("talk").then(() => "", (e: Error) => e.message),
    `Cannot see the door's "talk": its call ended (ns_unanswered)`,
  );
  await h.close();
});

Deno.test("door sim: nsRounds 2 resolves again after an unanswered round, a late reply is taken", async () => {
  const h = new Harness({ nsRounds: 2 });
  void h.sim.start();
  await h.run(950, 10);
  const asks = h.door.sent.filter((s) => s.data[6] === 154);
  assertEquals(h.events("ns_sent").map((e) => h.rel(e.t)), [
    0,
    100,
    200,
    300,
    400,
    500,
    600,
    700,
    800,
    900,
  ]);
  assertEquals(h.events("ns_failed").length, 0, "the second round is still asking");
  // The reply to a first-round ask, arriving during the second round, resolves the door.
  await h.sendRaw(nsReplyFor(asks[0]!.data, { address: ROOM, ip: GW }), h.gw, DOOR_EP);
  assertEquals(h.sim.gatewayIp, GW);
  assertEquals(h.sentCalls(OP.CALL).length, 1);
  await h.run(200, 10);
  assertEquals(h.door.sent.filter((s) => s.data[6] === 154).length, 10, "NS stops on the reply");
  await h.close();
});

Deno.test("door sim: nsRounds 2 gives up after 12 asks in 1.2 s", async () => {
  const h = new Harness({ nsRounds: 2 });
  const done = h.sim.start();
  await h.run(1500, 10);
  assertEquals(h.events("ns_sent").length, 12);
  assertEquals((await done).reason, "ns_unanswered");
  assertEquals(h.rel(h.events("ended")[0]!.t), 1200);
  assertEquals(h.events("ns_failed")[0]?.sends, 12);
  await h.close();
});

Deno.test("door sim: the first NS reply wins; CALL (62 B) goes to its IP every 600 ms, 6 sends, then gives up", async () => {
  const h = new Harness();
  const other = h.net.bind("10.0.0.9", 8302);
  await h.resolve();
  // A second, later reply naming another IP is ignored.
  const ask = h.door.sent.find((s) => s.data[6] === 154)!;
  await h.sendRaw(nsReplyFor(ask.data, { address: ROOM, ip: "10.0.0.9" }), other);
  assertEquals(h.sim.gatewayIp, GW);
  assertEquals(h.events("ns_resolved").length, 1);
  assertEquals(h.door.sent.filter((s) => s.data[6] === 154).length, 1, "NS stops on the reply");
  await h.run(4000, 10);
  const calls = h.sentCalls(OP.CALL);
  assertEquals(calls.length, 6);
  for (const c of calls) {
    assertEquals(c.data.length, 62);
    assertEquals(c.to, { hostname: GW, port: 8302 });
    assertEquals(
      [c.p.type, c.p.caller, c.p.callerIp, c.p.callee, c.p.calleeIp],
      [1, "M0001010", DOOR_IP, ROOM, GW],
    );
  }
  assertEquals(h.events("call_sent").map((e) => h.rel(e.t)), [0, 600, 1200, 1800, 2400, 3000]);
  const summary = await h.sim.done;
  assertEquals(summary.reason, "call_unanswered");
  assertEquals(h.rel(h.events("ended")[0]!.t), 3600);
  other.close();
  await h.close();
});

Deno.test("door sim: CALLANSWER starts test-card video at the frame rate and the keep-alive supervision", async () => {
  const h = new Harness({ video: undefined, fps: 15 });
  await h.ring();
  assertEquals(h.sentCalls(OP.CALL).length, 1, "CALL stops on CALLANSWER");
  await h.run(990, 10);
  const video = h.media();
  const frames = [...new Set(video.map((v) => v.p.frameNo))];
  assertEquals(frames, Array.from({ length: 15 }, (_, i) => i + 1), "15 frames in a second");
  for (const v of video) {
    assertEquals(v.to, { hostname: GW, port: 8302 });
    assert(v.p.payloadOffset === 77 && v.p.packLen === 1200);
    assert(v.p.packet >= 1 && v.p.packet <= v.p.totalPackets);
    assertEquals(v.data.length, v.p.packet < v.p.totalPackets ? 1277 : 77 + v.p.dataLen);
  }
  assertEquals(video.filter((v) => v.p.frameNo === 1).map((v) => v.p.dataType)[0], 2, "I first");
  assertEquals(
    new Set(video.filter((v) => v.p.frameNo > 1).map((v) => v.p.dataType)),
    new Set([3]),
  );
  // Frame 1 reassembles into a complete JPEG carrying its number.
  const parts = video.filter((v) => v.p.frameNo === 1).sort((a, b) => a.p.packet - b.p.packet);
  assertEquals(parts.map((v) => v.p.packet), parts.map((_, i) => i + 1));
  const jpeg = new Uint8Array(parts.reduce((n, v) => n + v.p.dataLen, 0));
  let at = 0;
  for (const v of parts) {
    jpeg.set(v.p.payload, at);
    at += v.p.dataLen;
  }
  assertEquals(jpeg.length, parts[0]!.p.frameLen);
  assertEquals([jpeg[0], jpeg[1], jpeg.at(-2), jpeg.at(-1)], [0xff, 0xd8, 0xff, 0xd9]);
  assertEquals(testCardFrameNumber(jpeg), 1);
  const ts = frames.map((f) => video.find((v) => v.p.frameNo === f)!.p.timestamp);
  assert(ts.every((t, i) => i === 0 || t > ts[i - 1]!), `timestamps increase: ${ts}`);
  assertEquals(h.events("video_started").length, 1);
  // Supervision: with no CALLCONFIRM at all the default 6 s window hangs up.
  await h.run(5100, 20);
  assertEquals(h.sim.phase, "hanging_up");
  assertEquals(h.events("hangup_sent").map((e) => [e.reason, h.rel(e.t)]), [[
    "keepalive_expired",
    6000,
  ]]);
  await h.close();
});

Deno.test("door sim: a 2.4 s window hangs up with CALLEND 600 ms × 6 when the confirms stop", async () => {
  const h = new Harness({ keepaliveWindowMs: 2400 });
  await h.ring();
  for (let i = 0; i < 6; i++) {
    await h.run(500);
    await h.send(OP.CALLCONFIRM, { counter: "01000000" });
  }
  assertEquals(h.sim.phase, "ringing");
  await h.run(7000, 20);
  assertEquals(h.events("hangup_sent").map((e) => [e.reason, h.rel(e.t)]), [[
    "keepalive_expired",
    3000 + 2400,
  ]]);
  const ends = h.sentCalls(OP.CALLEND, MSG_TYPE.ASK);
  assertEquals(ends.length, 6);
  for (const e of ends) {
    assertEquals([e.data.length, e.to.hostname, e.to.port], [57, GW, 8302]);
  }
  const summary = await h.sim.done;
  assertEquals([summary.reason, summary.completed, summary.callendReplied], [
    "keepalive_expired",
    false,
    false,
  ]);
  assertEquals(h.rel(h.events("ended")[0]!.t), 5400 + 3600);
  assertEquals(h.media().length > 0, true);
  await h.close();
});

Deno.test("door sim: the door's CALLEND stops on the gateway's REPLY", async () => {
  const h = new Harness({ keepaliveWindowMs: 2400 });
  await h.ring();
  await h.run(3000, 20); // window passes at 2400; CALLEND at 2400 and 3000
  const ends = h.sentCalls(OP.CALLEND, MSG_TYPE.ASK);
  assertEquals(ends.length, 2);
  await h.sendRaw(replyTo(ends[0]!.data, OP.CALLEND));
  await h.run(2000, 20);
  assertEquals(h.sentCalls(OP.CALLEND, MSG_TYPE.ASK).length, 2);
  const summary = await h.sim.done;
  assertEquals([summary.reason, summary.callendReplied], ["keepalive_expired", true]);
  await h.close();
});

Deno.test("door sim: confirms every 500 ms keep a 2.4 s-window door in the call, each echoed as a 61-byte REPLY", async () => {
  const h = new Harness({ keepaliveWindowMs: 2400, ringTimeoutS: 60, confirmIntervalMs: 1000 });
  await h.ring();
  const asks: Uint8Array[] = [];
  for (let i = 1; i <= 40; i++) {
    await h.run(500, 10);
    const counter = new Uint8Array(4);
    new DataView(counter.buffer).setUint32(0, i, true);
    asks.push(await h.send(OP.CALLCONFIRM, { counter: counter.toHex() }));
    // The door's own confirms (optional), answered by the gateway.
    for (const c of h.sentCalls(OP.CALLCONFIRM, MSG_TYPE.ASK).slice(-1)) {
      if (h.sim.counters.confirmRepliesReceived < h.sim.counters.confirmsSent) {
        await h.sendRaw(replyTo(c.data, OP.CALLCONFIRM));
      }
    }
  }
  assertEquals(h.sim.phase, "ringing");
  assertEquals(h.events("hangup_sent").length, 0);
  const replies = h.sentCalls(OP.CALLCONFIRM, MSG_TYPE.REPLY);
  assertEquals(replies.length, 40);
  replies.forEach((r, i) => {
    const want = asks[i]!.slice();
    want[7] = 2;
    assertEquals(r.data, want, `reply ${i} is a byte copy`);
    assertEquals(r.to, { hostname: GW, port: 8302 });
  });
  assertEquals(h.sim.counters.confirmsReceived, 40);
  assertEquals(h.events("confirm_received").length, 40);
  assertEquals(h.sim.counters.confirmsSent, 20);
  assertEquals(h.sim.counters.confirmRepliesReceived, 20);
  await h.close();
});

Deno.test("door sim: CALLSTART gets a REPLY flagged 0x04, then a 400 Hz tone, 64 B every 8 ms, to the IP in bytes 53–56", async () => {
  const h = new Harness({ flag04: true });
  await h.ring();
  await h.run(100);
  assertEquals(h.media(1).length, 0, "no audio before CALLSTART");
  const ask = await h.send(OP.CALLSTART, { calleeIp: "10.0.0.5" });
  const reply = h.sentCalls(OP.CALLSTART, MSG_TYPE.REPLY);
  assertEquals(reply.length, 1);
  const want = ask.slice();
  want[7] = 0x06;
  assertEquals(reply[0]!.data, want);
  assertEquals(reply[0]!.to, { hostname: GW, port: 8302 });
  assertEquals(h.events("talk").map((e) => [e.mediaIp, e.replyFlags]), [["10.0.0.5", 4]]);
  const tTalk = h.clock.now();
  await h.run(796);
  const audio = h.media(1);
  assertEquals(audio.length, 100, "125 packets/s");
  audio.forEach((a, i) => {
    assertEquals(a.data.length, 141);
    assertEquals(a.to, { hostname: "10.0.0.5", port: 8302 });
    assertEquals(a.p.payload.length, 64);
    if (i > 0) {
      assertEquals(a.p.timestamp - audio[i - 1]!.p.timestamp, 8);
      assertEquals(a.p.frameNo, audio[i - 1]!.p.frameNo + 1);
    }
  });
  assertEquals(audio[0]!.p.timestamp, Math.round(tTalk - h.events("answered")[0]!.t));
  // The tone: 400 Hz at 8 kHz repeats every 20 samples.
  const pcm = [...audio[0]!.p.payload, ...audio[1]!.p.payload].map(ulawToLinear);
  assertEquals(pcm.slice(20, 40), pcm.slice(0, 20));
  assert(Math.max(...pcm) > 6000 && Math.min(...pcm) < -6000);
  // Video now goes to the media IP too.
  assertEquals(h.media(3).at(-1)!.to.hostname, "10.0.0.5");
  await h.close();
});

Deno.test("door sim: gateway audio is played in timestamp order; stale packets are dropped and counted", async () => {
  const h = new Harness();
  await h.ring();
  const audio = (timestamp: number, frameNo: number) =>
    encodeMedia({
      op: 8,
      ...PARTIES,
      timestamp,
      dataType: 1,
      frameNo,
      payload: new Uint8Array(64).fill(0xff),
    });
  await h.sendRaw(audio(50, 1));
  await h.send(OP.CALLSTART);
  for (const [ts, n] of [[100, 2], [108, 3], [104, 4], [108, 5], [116, 6]] as const) {
    await h.sendRaw(audio(ts, n));
  }
  const c = h.sim.counters;
  assertEquals(
    [c.audioReceived, c.audioBeforeTalk, c.audioPlayed, c.audioOutOfOrder],
    [6, 1, 3, 2],
  );
  assertEquals(h.events("audio_received").map((e) => e.count), [1]);
  await h.close();
});

Deno.test("door sim: exact-length mode drops a 58-byte CALLCONFIRM; the tolerant build answers longer ones", async () => {
  const confirm = encodeCall({ type: 1, op: OP.CALLCONFIRM, ...PARTIES, counter: "05000000" });
  const short = confirm.slice(0, 58);
  const long = new Uint8Array(62);
  long.set(confirm);

  const strict = new Harness({ exactLengths: true, keepaliveWindowMs: 2400 });
  await strict.ring();
  await strict.sendRaw(short);
  await strict.sendRaw(long);
  assertEquals(strict.sentCalls(OP.CALLCONFIRM, MSG_TYPE.REPLY).length, 0);
  assertEquals(
    strict.events("dropped").map((e) => [e.reason, e.what, e.length]),
    [["length", "ASK CALLCONFIRM", 58], ["length", "ASK CALLCONFIRM", 62]],
  );
  await strict.sendRaw(confirm);
  assertEquals(strict.sentCalls(OP.CALLCONFIRM, MSG_TYPE.REPLY).length, 1);
  // Dropped confirms do not feed the window: 2.4 s after the good one the door hangs up.
  for (let i = 0; i < 6; i++) {
    await strict.run(500, 20);
    await strict.sendRaw(short);
  }
  assertEquals(strict.events("hangup_sent").map((e) => e.reason), ["keepalive_expired"]);
  await strict.close();

  const tolerant = new Harness();
  await tolerant.ring();
  await tolerant.sendRaw(short);
  await tolerant.sendRaw(long);
  assertEquals(tolerant.events("dropped").map((e) => e.reason), ["decode"]);
  const replies = tolerant.sentCalls(OP.CALLCONFIRM, MSG_TYPE.REPLY);
  assertEquals(replies.map((r) => r.data.length), [61]);
  await tolerant.close();
});

Deno.test("door sim: retransmitted ASKs get the same REPLY again without a second event", async () => {
  const h = new Harness({ lingerMs: 700, keepaliveWindowMs: 60_000 });
  await h.ring();
  await h.send(OP.CALLANSWER, { multicast: 0, groupIp: "0.0.0.0" });
  for (let i = 0; i < 3; i++) {
    await h.send(OP.CALLSTART);
    await h.run(100);
  }
  for (let i = 0; i < 3; i++) {
    await h.send(OP.REMOTEOPENLOCK);
    await h.run(100);
  }
  for (let i = 0; i < 2; i++) {
    await h.send(OP.FORCEIFRAME);
    await h.run(100);
  }
  for (const op of [OP.CALLSTART, OP.REMOTEOPENLOCK, OP.FORCEIFRAME]) {
    const replies = h.sentCalls(op, MSG_TYPE.REPLY).map((r) => r.data.toHex());
    assertEquals(replies.length, op === OP.FORCEIFRAME ? 2 : 3);
    assertEquals(new Set(replies).size, 1, `${op}: identical replies`);
  }
  assertEquals(
    ["answered", "talk", "lock_opened", "iframe_forced"].map((t) =>
      h.sim.events.filter((e) => e.type === t).length
    ),
    [1, 1, 1, 1],
  );
  assertEquals(h.sim.counters.duplicates, 1 + 2 + 2 + 1);
  // A new unlock inside the 5 s guard is acknowledged but does not open; after it, it opens.
  await h.run(2000);
  await h.send(OP.REMOTEOPENLOCK);
  assertEquals(h.events("lock_ignored").map((e) => e.reason), ["guard"]);
  await h.run(4000);
  await h.send(OP.REMOTEOPENLOCK);
  assertEquals(h.events("lock_opened").map((e) => e.count), [1, 2]);
  // CALLEND and its copy: two replies, one end.
  await h.send(OP.CALLEND);
  await h.run(100);
  await h.send(OP.CALLEND);
  const ends = h.sentCalls(OP.CALLEND, MSG_TYPE.REPLY);
  assertEquals(ends.map((e) => e.data.length), [57, 57]);
  assertEquals(h.events("ended").map((e) => [e.reason, e.completed, e.phase]), [[
    "ended_by_gateway",
    true,
    "talking",
  ]]);
  await h.run(700);
  const summary = await h.sim.done;
  assertEquals([summary.reason, summary.completed, summary.locksOpened], [
    "ended_by_gateway",
    true,
    2,
  ]);
  assertEquals(summary.callendReplied, undefined);
  await h.close();
});

Deno.test("door sim: answers and asks from a wrong IP are ignored (the firmware rule)", async () => {
  const h = new Harness();
  const other = h.net.bind("10.0.0.9", 8302);
  await h.resolve();
  await h.send(OP.CALLANSWER, {}, other);
  assertEquals(h.sim.phase, "calling");
  assertEquals(h.events("dropped").map((e) => [e.reason, e.from]), [["wrong_ip", "10.0.0.9"]]);
  await h.run(700);
  assertEquals(h.sentCalls(OP.CALL).length, 2, "CALL still resent");
  await h.send(OP.CALLANSWER);
  assertEquals(h.sim.phase, "ringing");
  await h.send(OP.CALLSTART, {}, other);
  await h.send(OP.CALLEND, {}, other);
  assertEquals(h.sim.phase, "ringing");
  assertEquals(h.sentCalls(undefined, MSG_TYPE.REPLY).length, 0);
  // Addressed to another door: ignored too.
  await h.send(OP.CALLSTART, { caller: "M00010200" });
  assertEquals(h.events("dropped").at(-1)!.reason, "wrong_party");
  assertEquals(h.sim.phase, "ringing");
  other.close();
  await h.close();
});

Deno.test("door sim: LINEUSE ends the call as busy, without CALLEND", async () => {
  const h = new Harness();
  await h.resolve();
  await h.send(OP.LINEUSE);
  const summary = await h.sim.done;
  assertEquals([summary.reason, summary.answered, summary.completed], ["busy", false, false]);
  assertEquals(h.events("busy").length, 1);
  assertEquals(h.sentCalls(OP.CALLEND).length, 0);
  assertEquals(h.media().length, 0);
  await h.close();
});

Deno.test("door sim: unlockNeedsTalk acknowledges an early unlock but opens only after CALLSTART", async () => {
  const h = new Harness({ unlockNeedsTalk: true });
  await h.ring();
  await h.send(OP.REMOTEOPENLOCK);
  assertEquals(h.sentCalls(OP.REMOTEOPENLOCK, MSG_TYPE.REPLY).length, 1);
  assertEquals(h.events("lock_ignored").map((e) => e.reason), ["needs_talk"]);
  await h.run(1500);
  await h.send(OP.CALLSTART);
  await h.send(OP.REMOTEOPENLOCK);
  assertEquals(h.events("lock_opened").length, 1);
  await h.close();
});

Deno.test("door sim: unlockNeedsTalk silent gives no REPLY before CALLSTART, then answers and opens", async () => {
  const h = new Harness({ unlockNeedsTalk: "silent" });
  await h.ring();
  // The gateway's six sends: no REPLY to any, one event for the burst, the lock stays shut.
  for (let i = 0; i < 6; i++) {
    await h.send(OP.REMOTEOPENLOCK);
    await h.run(100);
  }
  assertEquals(h.sentCalls(OP.REMOTEOPENLOCK, MSG_TYPE.REPLY).length, 0);
  assertEquals(h.events("lock_ignored").map((e) => e.reason), ["needs_talk_silent"]);
  // Right after CALLSTART (well within the duplicate window) the next one is a new unlock.
  await h.send(OP.CALLSTART);
  await h.send(OP.REMOTEOPENLOCK);
  assertEquals(h.sentCalls(OP.REMOTEOPENLOCK, MSG_TYPE.REPLY).length, 1);
  assertEquals(h.events("lock_opened").length, 1);
  await h.close();
});

Deno.test("door sim: ring timeout, talk timeout and hangupAfter make the door send CALLEND", async () => {
  const ring = new Harness({ ringTimeoutS: 2 });
  await ring.ring();
  await ring.run(2100, 20);
  assertEquals(ring.events("hangup_sent").map((e) => [e.reason, ring.rel(e.t)]), [[
    "ring_timeout",
    2000,
  ]]);
  await ring.close();

  const talk = new Harness({ talkTimeoutS: 1 });
  await talk.ring();
  await talk.run(500, 20);
  await talk.send(OP.CALLSTART);
  await talk.run(1100, 20);
  assertEquals(talk.events("hangup_sent").map((e) => [e.reason, talk.rel(e.t)]), [[
    "talk_timeout",
    1500,
  ]]);
  await talk.close();

  const scripted = new Harness({ hangupAfterS: 1.5 });
  await scripted.ring();
  await scripted.run(1500, 20);
  const end = scripted.sentCalls(OP.CALLEND, MSG_TYPE.ASK);
  assertEquals(end.length, 1);
  assertEquals(scripted.events("hangup_sent").map((e) => e.reason), ["hangup_after"]);
  await scripted.sendRaw(replyTo(end[0]!.data, OP.CALLEND));
  const summary = await scripted.sim.done;
  assertEquals([summary.reason, summary.completed, summary.callendReplied], [
    "hangup_after",
    true,
    true,
  ]);
  await scripted.close();
});

Deno.test("door sim: replies go to the source port, or to port 8302 with replyToPort8302", async () => {
  for (const replyToPort8302 of [false, true]) {
    const h = new Harness({ replyToPort8302 });
    await h.ring();
    const ephemeral = h.net.bind(GW, 40000);
    await h.send(OP.CALLCONFIRM, {}, ephemeral);
    const reply = h.sentCalls(OP.CALLCONFIRM, MSG_TYPE.REPLY);
    assertEquals(reply.map((r) => r.to.port), [replyToPort8302 ? 8302 : 40000]);
    ephemeral.close();
    await h.close();
  }
});

Deno.test("door sim: payload offset 86 and A-law", async () => {
  const h = new Harness({ payloadOffset: 86, codec: "alaw" });
  await h.ring();
  await h.send(OP.CALLSTART);
  await h.run(40);
  const audio = h.media(1);
  assert(audio.length >= 5);
  assertEquals(audio[0]!.data.length, 150);
  assertEquals(audio[0]!.p.payloadOffset, 86);
  assertEquals(h.media(2)[0]!.data.length, 86 + 1200);
  assertEquals(h.events("talk")[0]!.codec, "alaw");
  await h.close();
});

Deno.test("door sim: FORCEIFRAME makes the next frame an I-frame", async () => {
  const h = new Harness({ gopFrames: 1000 });
  await h.ring();
  await h.run(200);
  await h.send(OP.FORCEIFRAME);
  await h.run(100);
  const frames = new Map(h.media().map((v) => [v.p.frameNo, v.p.dataType]));
  const types = [...frames.values()];
  assertEquals(types.filter((t) => t === 2).length, 2, `types ${types}`);
  assertEquals(h.events("iframe_forced").length, 1);
  await h.close();
});

Deno.test("door sim: powerOff goes silent at once", async () => {
  const h = new Harness({ lingerMs: 700 });
  await h.ring();
  await h.run(100);
  const before = h.door.sent.length;
  const summary = await h.sim.powerOff();
  await h.run(3000, 50);
  assertEquals(h.door.sent.length, before);
  assertEquals([summary.reason, summary.completed], ["power_off", false]);
  await h.close();
});

Deno.test("door sim: room addresses and option validation", () => {
  assertEquals(roomAddressFor("M00010100", "0809"), "S00010108090");
  assertEquals(roomAddressFor("M00230410", "1203"), "S00230412030");
  assertEquals(roomAddressFor("M00010100", "S00020304050"), "S00020304050");
  assertThrows(() => roomAddressFor("M00010100", "809"), RangeError);
  const net = new MemoryNetwork();
  const socket = net.bind(DOOR_IP, 8302);
  for (
    const bad of [
      { fps: 30 },
      { payloadOffset: 80 as 77 },
      { codec: "opus" as "ulaw" },
      { room: "S123" },
      { address: "X1" },
    ]
  ) {
    assertThrows(() => new DoorSim({ socket, ...bad }), RangeError);
  }
  const sim = new DoorSim({ socket });
  assertEquals([sim.ip, sim.room, sim.options.keepaliveWindowMs], [DOOR_IP, ROOM, 6000]);
  socket.close();
});

Deno.test("sim door CLI: flags are parsed and a bad flag is named (exit 2)", async () => {
  const parsed = parseDoorSimArgs([
    "--room",
    "0809",
    "--ip",
    "127.0.0.3",
    "--keepalive-window",
    "2400",
    "--flag04",
    "--payload-offset",
    "86",
    "--calls",
    "3",
    "--unlock-needs-talk-silent",
  ]);
  assert(parsed.kind === "ok");
  assertEquals(parsed.sim.unlockNeedsTalk, "silent");
  assertEquals(
    [parsed.sim.room, parsed.sim.ip, parsed.sim.keepaliveWindowMs, parsed.sim.flag04],
    ["0809", "127.0.0.3", 2400, true],
  );
  assertEquals([parsed.sim.payloadOffset, parsed.calls], [86, 3]);
  const lines: string[] = [];
  const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
  assertEquals(await doorSimCommand(["--bogus"], io), 2);
  assert(lines.some((l) => l.includes("--bogus")), lines.join("\n"));
  lines.length = 0;
  assertEquals(await doorSimCommand(["--fps", "40"], io), 2);
  assert(lines.some((l) => l.includes("--fps")), lines.join("\n"));
  lines.length = 0;
  assertEquals(await doorSimCommand(["--codec", "opus"], io), 2);
  assert(lines.some((l) => l.includes("--codec")), lines.join("\n"));
  lines.length = 0;
  assertEquals(await doorSimCommand(["--help"], io), 0);
  assert(lines.join("\n").includes("--hangup-after"));
});

Deno.test("door sim: what it heard of the gateway: level, frequency and when each burst began", async () => {
  const h = new Harness();
  await h.ring();
  await h.send(OP.CALLSTART);
  let ts = 0;
  let n = 0;
  const packet = (amp: number) => {
    const pcm = Array.from(
      { length: 64 },
      (_, i) => amp * Math.sin((2 * Math.PI * 1000 * (n * 64 + i)) / 8000),
    );
    ts += 8;
    n++;
    return encodeMedia({
      op: 8,
      ...PARTIES,
      timestamp: ts,
      dataType: 1,
      frameNo: n,
      payload: encodeG711("ulaw", pcm),
    });
  };
  const onsets: number[] = [];
  for (const burst of [0, 1]) {
    for (let i = 0; i < 10; i++) await h.sendRaw(packet(0)); // silence
    onsets.push(h.clock.wallNow());
    for (let i = 0; i < 30; i++) await h.sendRaw(packet(8000)); // 1 kHz, peak 8000
    h.clock.advance(100 + burst);
  }
  const rx = h.sim.receivedAudio();
  assertEquals(rx.onsets, onsets);
  assertEquals(rx.loudPackets, 60);
  assert(Math.abs(rx.frequencyHz - 1000) < 10, `${rx.frequencyHz} Hz`);
  assert(Math.abs(rx.rms - 8000 / Math.SQRT2 / 32768) < 0.01, `rms ${rx.rms}`);
  await h.close();
});

Deno.test("door sim: a muted tone sends G.711 silence in the same packets until setTone(true)", async () => {
  const h = new Harness({ toneMuted: true });
  await h.ring();
  await h.send(OP.CALLSTART);
  await h.run(80);
  const muted = h.media(1);
  assert(muted.length >= 9);
  assert(muted.every((a) => a.p.payload.every((b) => b === 0xff)), "μ-law silence");
  assertEquals(h.sim.setTone(true), h.clock.wallNow());
  await h.run(40);
  const on = h.media(1).slice(muted.length);
  assert(on.length >= 4 && on.every((a) => a.p.payload.some((b) => b !== 0xff)), "the tone");
  await h.close();
});

Deno.test("door sim: a coded video source decides the I-frames (data type 2 only for its key frames)", async () => {
  const frames = [true, false, false, true].map((key, i) => ({
    data: new Uint8Array(100).fill(i),
    key,
  }));
  const h = new Harness({
    video: { frame: (n) => frames[(n - 1) % 4]!.data, keyFrame: (n) => frames[(n - 1) % 4]!.key },
    fps: 10,
    gopFrames: 1,
  });
  await h.ring();
  await h.run(450);
  assertEquals(h.media().slice(0, 5).map((m) => m.p.dataType), [2, 3, 3, 2, 2]);
  await h.close();
});
