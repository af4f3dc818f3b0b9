import { assert, assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { FakeClock } from "../testing/mod.ts";
import { decodePacket, encodeMedia, OP } from "../protocol/mod.ts";
import { MEDIA_CONTROL_OK, parseMediaControl, parsePhoneMessage } from "../phone/messages.ts";
import { type CallEndEvent, PhoneSim, type PhoneSimOptions, TONE_PAYLOAD } from "./phone_sim.ts";
import { ulawToLinear } from "./g711.ts";
import { parsePhoneCliArgs, phoneSimCommand } from "./phone_cli.ts";

const ID = { uid: "359608060142756", roomAddress: "Y00010108090", community: "花苑" } as const;
const DOOR = "M00010100";

type Json = Record<string, unknown>;

/** Polls `cond` every 5 ms (real time). */
async function until(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function doorMedia(dataType: number, frameNo: number, size: number): Uint8Array {
  return encodeMedia({
    op: OP.CALLUP,
    caller: DOOR,
    callerIp: "192.168.31.189",
    callee: "S00010108090",
    calleeIp: "192.168.31.223",
    timestamp: 1000 + frameNo * 40,
    dataType,
    frameNo,
    payload: new Uint8Array(size),
  });
}

/** The door media the stub sends once a phone asks for it: 3 video and 2 audio packets. */
const DOOR_MEDIA = [
  doorMedia(2, 1, 1200),
  doorMedia(2, 1, 300),
  doorMedia(3, 2, 800),
  doorMedia(1, 1, 64),
  doorMedia(1, 2, 64),
];

/** A tiny gateway speaking the phone protocol: WS signalling on /phone and a UDP media port. */
class StubGateway {
  /** Text frames from the phone, parsed (and checked against the spec). */
  readonly received: Json[] = [];
  /** Frames that do not parse as phone messages (raw text). */
  readonly invalid: string[] = [];
  /** Binary WS frames from the phone. */
  readonly binary: Uint8Array[] = [];
  /** UDP control datagrams. */
  readonly control: { msg: Json; port: number; at: number }[] = [];
  /** UDP XXXCID datagrams from the phone. */
  readonly udpMedia: Uint8Array[] = [];
  readonly sockets: WebSocket[] = [];
  /** Auto answers of the stub (talk → talk begin, unlock → unlock success, over → over success). */
  auto = true;
  #ac = new AbortController();
  #server: Deno.HttpServer<Deno.NetAddr>;
  #udp: Deno.DatagramConn;
  #loop: Promise<void>;
  #latched: Deno.NetAddr | undefined;

  constructor() {
    this.#server = Deno.serve({
      port: 0,
      hostname: "127.0.0.1",
      signal: this.#ac.signal,
      onListen: () => {},
    }, (req) => this.#handle(req));
    this.#udp = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    this.#loop = this.#receive();
  }

  get url(): string {
    return `ws://127.0.0.1:${this.#server.addr.port}/phone`;
  }

  get mediaPort(): number {
    return (this.#udp.addr as Deno.NetAddr).port;
  }

  /** Orders received, heartbeats left out. */
  orders(): string[] {
    return this.received.map((m) => String(m.order)).filter((o) => o !== "heartbeat");
  }

  send(obj: Json): void {
    this.sendRaw(JSON.stringify(obj));
  }

  sendRaw(text: string | Uint8Array): void {
    const ws = this.sockets.at(-1);
    assert(ws, "no phone connected");
    ws.send(text);
  }

  call(callId = "c1", mediaKey = "k1"): void {
    this.send({ order: "call", doorAddress: DOOR, ...ID, callId, mediaKey });
  }

  reply(req: Json, order: string, extra: Json = {}): void {
    this.send({
      order,
      doorAddress: req.doorAddress,
      roomAddress: req.roomAddress,
      uid: req.uid,
      community: req.community,
      callId: req.callId,
      ...extra,
    });
  }

  #handle(req: Request): Response {
    if (new URL(req.url).pathname !== "/phone") return new Response("not found", { status: 404 });
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.binaryType = "arraybuffer";
    this.sockets.push(socket);
    socket.onmessage = (ev) => {
      if (typeof ev.data !== "string") {
        this.binary.push(new Uint8Array(ev.data as ArrayBuffer));
        return;
      }
      const m = parsePhoneMessage(ev.data);
      if ("error" in m) {
        this.invalid.push(ev.data);
        return;
      }
      this.received.push(m as unknown as Json);
      this.#auto(socket, m as unknown as Json);
    };
    return response;
  }

  #auto(socket: WebSocket, m: Json): void {
    switch (m.order) {
      case "login":
        this.send({
          order: "login ok",
          uid: m.uid,
          heartbeatInterval: 2,
          mediaPort: this.mediaPort,
        });
        break;
      case "heartbeat":
        this.send({ order: "heartbeat ok", uid: m.uid });
        break;
      case "enable_video":
        if (m.transport === "ws") {
          this.send({ order: "enable_video ok", transport: "ws", callId: m.callId });
          for (const p of DOOR_MEDIA) socket.send(p);
        }
        break;
      case "talk":
        if (this.auto) this.reply(m, "talk begin");
        break;
      case "unlock":
        if (this.auto) this.reply(m, "unlock success");
        break;
      case "over":
        if (this.auto) this.reply(m, "over success");
        break;
    }
  }

  async #receive(): Promise<void> {
    for (;;) {
      let data: Uint8Array, addr: Deno.Addr;
      try {
        [data, addr] = await this.#udp.receive();
      } catch {
        return;
      }
      const from = addr as Deno.NetAddr;
      const ctrl = parseMediaControl(data);
      if (!("error" in ctrl)) {
        this.control.push({ msg: ctrl as unknown as Json, port: from.port, at: performance.now() });
        await this.#udp.send(MEDIA_CONTROL_OK, from);
        if (!this.#latched) {
          this.#latched = from;
          for (const p of DOOR_MEDIA) await this.#udp.send(p, from);
        }
      } else {
        this.udpMedia.push(data);
      }
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) {
      if (s.readyState === WebSocket.OPEN) s.close();
    }
    this.#ac.abort();
    await this.#server.finished;
    this.#udp.close();
    await this.#loop;
  }
}

function phone(stub: StubGateway, extra: Partial<PhoneSimOptions> = {}): PhoneSim {
  return new PhoneSim({
    url: stub.url,
    token: "tok-1",
    ...ID,
    mediaBindHost: "127.0.0.1",
    ...extra,
  });
}

/** Runs `fn` with a stub gateway and a phone, closing both whatever happens. */
async function withPhone(
  extra: Partial<PhoneSimOptions>,
  fn: (stub: StubGateway, sim: PhoneSim) => Promise<void>,
): Promise<void> {
  const stub = new StubGateway();
  const sim = phone(stub, extra);
  try {
    await sim.start();
    await sim.waitFor("login ok");
    await fn(stub, sim);
    assertEquals(stub.invalid, [], "every frame the phone sent parses as a phone message");
  } finally {
    await sim.close();
    await stub.close();
  }
}

const callEnd = (sim: PhoneSim, timeoutMs = 3000) =>
  sim.waitFor("call_end", timeoutMs) as Promise<CallEndEvent>;

Deno.test("phone sim logs in, then heartbeats at its cadence", async () => {
  await withPhone({ heartbeatMs: 40, script: { answer: "ring" } }, async (stub, sim) => {
    assertEquals(stub.received[0], { order: "login", ...ID, token: "tok-1" });
    assertEquals(sim.mediaPort, stub.mediaPort);
    assert(sim.loggedIn);
    await until(() => stub.received.filter((m) => m.order === "heartbeat").length >= 5, "5 beats");
    await sim.waitFor(
      (e) =>
        e.kind === "in" && e.order === "heartbeat ok" && sim.messagesIn("heartbeat ok").length >= 5,
    );
    const beats = sim.events.filter((e) => e.kind === "out" && e.order === "heartbeat");
    const loginOk = sim.events.find((e) => e.kind === "in" && e.order === "login ok")!;
    assert(beats[0]!.at - loginOk.at >= 35, "first beat one period after login ok");
    for (let i = 1; i < beats.length; i++) {
      const gap = beats[i]!.at - beats[i - 1]!.at;
      assert(gap >= 35 && gap < 250, `heartbeat gap ${gap} ms`);
    }
    assertEquals(stub.received[1], { order: "heartbeat", ...ID });
  });
});

Deno.test("phone sim: talk script sends call ok, enable_video, talk; hangs up; UDP media counted", async () => {
  await withPhone({
    heartbeatMs: 1000,
    mediaKeepAliveMs: 50,
    script: { answer: "talk", talkAfterS: 0.05, hangupAfterS: 0.2, enableVideo: "udp" },
  }, async (stub, sim) => {
    stub.call("c1", "key-1");
    const end = await callEnd(sim);
    assertEquals(stub.orders(), ["login", "call ok", "enable_video", "talk", "over"]);
    const callOk = stub.received.find((m) => m.order === "call ok");
    assertEquals(callOk, { order: "call ok", doorAddress: DOOR, ...ID, callId: "c1" });
    const ev = stub.received.find((m) => m.order === "enable_video");
    assertEquals(ev, {
      order: "enable_video",
      doorAddress: DOOR,
      ...ID,
      callId: "c1",
      transport: "udp",
    });
    // The sim's own log agrees (WebSocket orders, heartbeats left out).
    const outs = sim.events.flatMap((e) =>
      e.kind === "out" && e.via === "ws" && e.order !== "heartbeat" ? [e.order] : []
    );
    assertEquals(outs, ["login", "call ok", "enable_video", "talk", "over"]);
    // The control datagram: the call's mediaKey, to the media port, repeated from one socket.
    assert(stub.control.length >= 3, `control datagrams: ${stub.control.length}`);
    for (const c of stub.control) {
      assertEquals(c.msg, { order: "enable_video", uid: ID.uid, callId: "c1", mediaKey: "key-1" });
      assertEquals(c.port, sim.mediaLocal!.port);
    }
    // Repeated on a period, not in a burst (on average: timers bunch on a loaded machine).
    const span = stub.control.at(-1)!.at - stub.control[0]!.at;
    const meanGap = span / (stub.control.length - 1);
    assert(meanGap >= 40, `mean keep-alive gap ${meanGap} ms`);
    // Media: the stub sent 3 video + 2 audio CALLUP packets once latched.
    const c = end.call;
    assertEquals(c.endedBy, "phone");
    assertEquals(c.talked, true);
    assertEquals(c.problems, []);
    assertEquals(c.transport, "udp");
    assertEquals(c.media.videoPackets, 3);
    assertEquals(c.media.videoBytes, 77 * 3 + 1200 + 300 + 800);
    assertEquals(c.media.audioIn, 2);
    assertEquals(c.media.byOp, { [OP.CALLUP]: 5 });
    assertEquals(c.media.byDataType, { 1: 2, 2: 2, 3: 1 });
    assert(c.media.controlOk >= 1);
    assertEquals(c.media.lastVideoTimestamp, 1000 + 2 * 40);
    assertEquals(sim.counters.videoPackets, 3);
    assertEquals(sim.completedCalls, 1);
    // Keep-alives stop with the call: none sent after it, and the stub got exactly those sent.
    const sentControl = () =>
      sim.events.filter((e) => e.kind === "out" && e.via === "udp" && e.order === "enable_video")
        .length;
    const n = sentControl();
    await sleep(300);
    assertEquals(sentControl(), n);
    assertEquals(stub.control.length, n);
    // The gateway's enable_video ok over UDP shows once per call.
    assertEquals(
      sim.events.filter((e) => e.kind === "in" && e.via === "udp").map((e) =>
        e.kind === "in" && e.order
      ),
      ["enable_video ok"],
    );
  });
});

Deno.test("phone sim answers a gateway over with over success and ends the call", async () => {
  await withPhone({ script: { answer: "callok", enableVideo: "none" } }, async (stub, sim) => {
    stub.call("c7");
    await sim.waitFor("call ok");
    assertEquals(sim.call?.phase, "answered");
    stub.send({ order: "over", doorAddress: DOOR, ...ID, callId: "c7", reason: "door hung up" });
    const end = await callEnd(sim);
    await sim.waitFor(PhoneSim.sent("over success", (m) => m.callId === "c7"));
    await until(() => stub.received.some((m) => m.order === "over success"), "over success");
    assertEquals(stub.received.find((m) => m.order === "over success"), {
      order: "over success",
      doorAddress: DOOR,
      ...ID,
      callId: "c7",
    });
    assertEquals(end.call.endedBy, "gateway");
    assertEquals(end.call.overReason, "door hung up");
    assertEquals(end.call.problems, []);
    assertEquals(stub.orders(), ["login", "call ok", "over success"]);
    // An over for an unknown call is still answered.
    stub.send({ order: "over", doorAddress: DOOR, ...ID, callId: "old", reason: "ring timeout" });
    await until(() => stub.received.filter((m) => m.order === "over success").length === 2, "2nd");
    assertEquals(sim.completedCalls, 1);
  });
});

Deno.test("phone sim sends 141-byte CALLDOWN audio, +8 ms timestamps and +1 frame numbers", async () => {
  await withPhone({
    script: {
      answer: "talk",
      talkAfterS: 0,
      hangupAfterS: 0.3,
      enableVideo: "udp",
      sendAudio: true,
    },
  }, async (stub, sim) => {
    stub.call("c2", "k2");
    const end = await callEnd(sim);
    const packets = stub.udpMedia;
    assert(packets.length >= 15, `audio packets: ${packets.length}`);
    assertEquals(end.call.media.audioOut, packets.length);
    let prev: { timestamp: number; frameNo: number } | undefined;
    for (const bytes of packets) {
      assertEquals(bytes.length, 141);
      const p = decodePacket(bytes);
      assert(!(p instanceof Error) && p.kind === "media", "a media packet");
      assertEquals([p.command, p.type, p.op, p.dataType, p.dataLen, p.payloadOffset], [
        150,
        1,
        OP.CALLDOWN,
        1,
        64,
        77,
      ]);
      assertEquals([p.caller, p.callee], [DOOR.slice(0, 8), "S00010108090"]);
      if (prev) {
        assertEquals(p.timestamp - prev.timestamp, 8);
        assertEquals(p.frameNo - prev.frameNo, 1);
      } else {
        assertEquals(p.frameNo, 1);
      }
      prev = p;
    }
    // Audio starts only after talk begin and stops with the call.
    const n = stub.udpMedia.length;
    await sleep(60);
    assertEquals(stub.udpMedia.length, n);
  });
});

Deno.test("phone sim: WebSocket media transport carries the datagrams both ways", async () => {
  await withPhone({
    script: {
      answer: "talk",
      talkAfterS: 0,
      hangupAfterS: 0.15,
      enableVideo: "ws",
      sendAudio: true,
    },
  }, async (stub, sim) => {
    stub.call("c3", "k3");
    const end = await callEnd(sim);
    assertEquals(stub.control.length, 0);
    assertEquals(sim.mediaLocal, undefined, "no UDP socket for the ws transport");
    assertEquals(end.call.media.videoPackets, 3);
    assertEquals(end.call.media.audioIn, 2);
    assert(stub.binary.length >= 5, `binary frames: ${stub.binary.length}`);
    for (const b of stub.binary) {
      assertEquals(b.length, 141);
      assertEquals(b[8], OP.CALLDOWN);
    }
    assert(sim.messagesIn("enable_video ok").length === 1);
  });
});

Deno.test("phone sim: script timers run on the injected clock (talk, unlock)", async () => {
  const clock = new FakeClock(0);
  await withPhone({
    clock,
    script: { answer: "talk", talkAfterS: 5, unlockAfterS: 2, enableVideo: "none" },
  }, async (stub, sim) => {
    stub.call("c4");
    await sim.waitFor("call ok");
    clock.advance(4999);
    await sleep(30);
    assertEquals(stub.orders(), ["login", "call ok"]);
    clock.advance(1);
    await sim.waitFor("talk begin");
    await sleep(30);
    assertEquals(stub.orders(), ["login", "call ok", "talk"]);
    clock.advance(2000);
    await sim.waitFor("unlock success");
    assertEquals(sim.call?.unlocked, true);
    const t = sim.events.find((e) => e.kind === "out" && e.order === "talk")!;
    const u = sim.events.find((e) => e.kind === "out" && e.order === "unlock")!;
    assertEquals([t.at, u.at], [5000, 7000]);
    stub.send({ order: "over", doorAddress: DOOR, ...ID, callId: "c4", reason: "talk timeout" });
    const end = await callEnd(sim);
    assertEquals(end.call.problems, []);
    // Heartbeats came from the fake clock too: one per 2 s (the gateway's heartbeatInterval).
    assertEquals(sim.messagesOut("heartbeat").length, 3);
  });
});

Deno.test("phone sim: talk again after error door_timeout, at most talkRetries times", async () => {
  for (const retries of [0, 1]) {
    await withPhone({
      script: { answer: "talk", talkAfterS: 0, hangupAfterS: 0.05, talkRetries: retries },
    }, async (stub, sim) => {
      stub.auto = false;
      stub.call("c9");
      await sim.waitFor(PhoneSim.sent("talk"));
      const error = {
        order: "error",
        code: "door_timeout",
        ref: "talk",
        message: "Cannot reach the door: it did not answer",
      };
      stub.send(error);
      if (retries === 0) {
        await until(() => sim.call?.problems.length === 1, "the error is a problem");
        assertEquals(sim.call?.problems, [
          "error door_timeout (talk): Cannot reach the door: it did not answer",
        ]);
        await sleep(50);
        assertEquals(stub.orders().filter((o) => o === "talk").length, 1);
        return;
      }
      await until(() => stub.orders().filter((o) => o === "talk").length === 2, "talk again");
      // One retry only: a second door_timeout is a problem.
      stub.send(error);
      await until(() => sim.call?.problems.length === 1, "the second error is a problem");
      await sleep(50);
      assertEquals(stub.orders().filter((o) => o === "talk").length, 2);
      assertEquals(sim.call?.talkRetries, 1);
    });
  }
});

Deno.test("phone sim: decline while ringing, and problems when the script is not honoured", async () => {
  const clock = new FakeClock(0);
  await withPhone({
    clock,
    script: { answer: "talk", talkAfterS: 10, declineAfterS: 3, enableVideo: "none" },
  }, async (stub, sim) => {
    stub.call("c5");
    await sim.waitFor("call ok");
    clock.advance(3000);
    const end = await callEnd(sim);
    assertEquals(end.call.endedBy, "phone");
    assertEquals(end.call.problems, []);
    clock.advance(10_000);
    await sleep(20);
    assertEquals(stub.orders(), ["login", "call ok", "over"]);

    // Next call: the gateway refuses the unlock and never begins the talk.
    stub.auto = false;
    stub.call("c6");
    await sim.waitFor((e) =>
      e.kind === "out" && e.order === "call ok" && e.message.callId === "c6"
    );
    stub.send({
      order: "error",
      code: "door_timeout",
      message: "the door did not answer",
      ref: "talk",
    });
    stub.send({
      order: "over",
      doorAddress: DOOR,
      ...ID,
      callId: "c6",
      reason: "door lost",
    });
    const end2 = await sim.waitFor(
      (e) => e.kind === "call_end" && e.call.callId === "c6",
    ) as CallEndEvent;
    assertEquals(end2.call.problems, ["error door_timeout (talk): the door did not answer"]);
  });
});

Deno.test("phone sim: stopHeartbeats on_call makes the phone go silent", async () => {
  await withPhone({
    heartbeatMs: 25,
    script: { answer: "callok", enableVideo: "none", stopHeartbeats: "on_call" },
  }, async (stub, sim) => {
    await until(() => stub.received.some((m) => m.order === "heartbeat"), "a heartbeat");
    stub.call("c8");
    await sim.waitFor("call ok");
    const n = sim.messagesOut("heartbeat").length;
    await sleep(120);
    assertEquals(sim.messagesOut("heartbeat").length, n);
    assert(sim.events.some((e) => e.kind === "note" && e.text === "heartbeats stopped"));
  });
});

Deno.test("phone sim: raw and malformed messages both ways", async () => {
  await withPhone({ script: { answer: "ring" } }, async (stub, sim) => {
    assert(sim.sendRaw("{oops"));
    assert(sim.send({ order: "dance", x: 1 }));
    assert(sim.send([1, 2]));
    await until(() => stub.invalid.length === 3, "3 invalid frames");
    assertEquals(stub.invalid, ["{oops", '{"order":"dance","x":1}', "[1,2]"]);
    assertEquals(sim.messagesOut().slice(-3).map((m) => m.order ?? m.raw), [
      "{oops",
      "dance",
      "[1,2]",
    ]);
    stub.invalid.length = 0;

    stub.sendRaw("not json");
    stub.send({ order: "talk begin", doorAddress: DOOR }); // no callId etc.
    const bad = await sim.waitFor((e) =>
      e.kind === "invalid" && e.text.startsWith('{"order":"talk')
    );
    assert(bad.kind === "invalid" && bad.error.includes("missing field"));
    assert(sim.events.some((e) => e.kind === "invalid" && e.text === "not json"));
    // A ring-only phone never answers a call.
    stub.call("c9");
    await sim.waitFor(PhoneSim.received("call", (m) => "callId" in m && m.callId === "c9"));
    await sleep(30);
    assertEquals(stub.orders(), ["login"]);
    assertEquals(sim.call?.phase, "ringing");
  });
});

Deno.test("phone sim: start fails without a gateway; close is idempotent and ends waits", async () => {
  const stub = new StubGateway();
  const url = stub.url.replace("/phone", "/nothing-here");
  const sim = new PhoneSim({ url, token: "t", ...ID });
  try {
    await assertRejects(() => sim.start());
  } finally {
    await sim.close();
    await sim.close();
    await stub.close();
  }
  const stub2 = new StubGateway();
  const sim2 = phone(stub2);
  try {
    await sim2.start();
    const pending = assertRejects(() => sim2.waitFor("never", 10_000));
    await sim2.close();
    await pending;
    await assertRejects(() => sim2.waitFor("never"));
    assertEquals(sim2.send({ order: "heartbeat" }), false);
  } finally {
    await sim2.close();
    await stub2.close();
  }
  let threw = false;
  try {
    new PhoneSim({ url: "http://x", token: "t", ...ID });
  } catch (e) {
    threw = e instanceof RangeError;
  }
  assert(threw, "http:// is refused");
});

Deno.test("sim phone CLI: flags", () => {
  const base = ["--uid", "u1", "--token", "t", "--room", "Y00010108090"];
  const ok = parsePhoneCliArgs([
    ...base,
    "--answer=callok",
    "--video",
    "ws",
    "--audio",
    "--calls",
    "3",
    "--talk-retries",
    "2",
  ]);
  assert(ok !== "help");
  assertEquals(ok.calls, 3);
  assertEquals(ok.options.script?.talkRetries, 2);
  assertEquals(ok.options.script?.answer, "callok");
  assertEquals(ok.options.script?.enableVideo, "ws");
  assertEquals(ok.options.url, "ws://127.0.0.1:8080/phone");
  assertEquals(parsePhoneCliArgs(["--help"]), "help");
  const bad: [string[], string][] = [
    [[...base, "--bogus"], "--bogus"],
    [[...base, "--answer", "maybe"], "--answer"],
    [[...base, "--talk-after", "-1"], "--talk-after"],
    [[...base, "--talk-retries", "1.5"], "--talk-retries"],
    [[...base, "--talk-retries", "11"], "--talk-retries"],
    [[...base, "--video", "tcp"], "--video"],
    [[...base, "--calls", "0"], "--calls"],
    [[...base, "--audio", "--video", "none"], "--audio"],
    [[...base, "--url", "http://x"], "--url"],
    [[...base, "--uid"], "--uid"],
    [["--token", "t", "--room", "Y00010108090"], "--uid"],
    [[...base.slice(0, 4), "--room", "Y1"], "--room"],
    [[...base, "stray"], "stray"],
    [[...base, "--json=yes"], "--json"],
  ];
  for (const [args, flag] of bad) {
    let message = "";
    try {
      parsePhoneCliArgs(args);
    } catch (e) {
      message = (e as Error).message;
    }
    assert(message.includes(flag), `${args.join(" ")} → ${message}`);
  }
});

Deno.test("sim phone CLI: bad flag exits 2; a scripted call exits 0 with a readable log", async () => {
  const err: string[] = [];
  const out: string[] = [];
  const io = { println: (l: string) => out.push(l), eprintln: (l: string) => err.push(l) };
  assertEquals(await phoneSimCommand(["--nope"], io), 2);
  assert(err[0]!.includes("--nope"));

  const stub = new StubGateway();
  try {
    const run = phoneSimCommand([
      "--url",
      stub.url,
      "--uid",
      ID.uid,
      "--token",
      "t",
      "--room",
      ID.roomAddress,
      "--community",
      ID.community,
      "--talk-after",
      "0",
      "--unlock-after",
      "0.02",
      "--hangup-after",
      "0.15",
      "--media-bind",
      "127.0.0.1",
      "--timeout",
      "5",
    ], io);
    await until(() => stub.received.some((m) => m.order === "login"), "login");
    stub.call("cli-1", "k");
    assertEquals(await run, 0, [...out, ...err].join("\n"));
    const log = out.join("\n");
    for (
      const want of [
        "← login ok (heartbeat 2 s, media port",
        `← call from door ${DOOR} (callId cli-1)`,
        "→ call ok",
        "→ enable_video (udp)",
        "← talk begin",
        "→ unlock",
        "← unlock success",
        "← over success",
        "video: 3 packets",
        "done: 1 call(s) completed",
      ]
    ) assert(log.includes(want), `missing "${want}" in:\n${log}`);
    assert(/^\d\d:\d\d:\d\d\.\d{3} {2}/.test(out[1]!), out[1]);
    assert(!log.includes("mediaKey") && !log.includes('"t"'), "no secrets in the log");
  } finally {
    await stub.close();
  }
});

Deno.test("phone sim: its audio is one 8-ms frame of a 1 kHz μ-law tone, byte for byte", () => {
  // The same bytes as before the sim used g711.ts's encoder instead of its own copy.
  assertEquals(
    TONE_PAYLOAD.toHex(),
    "ffa9a0a9ff292029".repeat(8),
  );
  const peak = Math.max(...[...TONE_PAYLOAD].map((c) => Math.abs(ulawToLinear(c))));
  assert(peak > 7000 && peak < 9000, `peak ${peak}`);
});
