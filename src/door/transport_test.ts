import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { FakeClock, memoryLogger, MemoryNetwork, nullLogger } from "../testing/mod.ts";
import { Metrics } from "../metrics.ts";
import type { Endpoint } from "../net/port.ts";
import { encodeCall, encodeNsAsk, MSG_TYPE, OP } from "../protocol/mod.ts";
import type { DoorCall, DoorEvent, DoorHangup } from "../call/ports.ts";
import { DoorTransport } from "./transport.ts";
import { EventBus } from "../events/bus.ts";
import type { GatewayEvent } from "../events/types.ts";

const callOf = (e: DoorEvent | undefined): DoorCall => {
  assert(e?.type === "call");
  return e.call;
};
const hangupOf = (e: DoorEvent | undefined): DoorHangup => {
  assert(e?.type === "hangup");
  return e.hangup;
};

const DOOR: Endpoint = { hostname: "192.168.31.189", port: 8302 };
const parties = {
  caller: "M00010100",
  callerIp: "192.168.31.189",
  callee: "S00010108090",
  calleeIp: "192.168.31.223",
};

function setup(online: string[] = ["00010108090"]) {
  const net = new MemoryNetwork();
  const port = net.bind("192.168.31.223", 8302);
  const clock = new FakeClock(1000);
  const events: DoorEvent[] = [];
  const metrics = new Metrics();
  const t = new DoorTransport({
    port,
    clock,
    logger: nullLogger,
    metrics,
    isOnline: (room) => online.includes(room),
    localIpFor: () => "192.168.31.223",
    onEvent: (e) => events.push(e),
  });
  return { port, clock, events, metrics, t };
}

const nsAsk = (target: string) =>
  encodeNsAsk({ asker: "M00010100", askerIp: "192.168.31.189", target, targetIp: "0.0.0.0" });

Deno.test("door transport answers NS only for online rooms, with the spec's reply bytes", () => {
  const { port, t, metrics } = setup();
  t.handle(nsAsk("S00010108090"), DOOR);
  assertEquals(port.sent.length, 1);
  assertEquals(
    port.sent[0]!.data.toHex(),
    "5858584349449a024d30303031303130303030303030303030303030c0a81fbd015330303031303130383039303030303030303030c0a81fdf",
  );
  assertEquals(port.sent[0]!.to, DOOR);
  t.handle(nsAsk("S00010108091"), DOOR); // offline room: silence
  t.handle(nsAsk("M00010100"), DOOR); // not a room
  assertEquals(port.sent.length, 1);
  assertEquals(metrics.get("door_ns_ignored_total"), 2);
});

Deno.test("door transport: a CALL and its copies make one event; copies get the same answer", () => {
  const { port, clock, t, events } = setup();
  const call = encodeCall({ type: MSG_TYPE.ASK, op: OP.CALL, ...parties });
  t.handle(call, DOOR);
  clock.advance(600);
  t.handle(call, DOOR); // copy before we answered: no answer yet, no event
  assertEquals(events.length, 1);
  assertEquals(port.sent.length, 0);
  const answer = encodeCall({ type: MSG_TYPE.ASK, op: OP.CALLANSWER, ...parties });
  t.answer(callOf(events[0]), "CALLANSWER");
  clock.advance(600);
  t.handle(call, DOOR);
  clock.advance(600);
  t.handle(call, { ...DOOR, port: 40000 }); // a newer firmware's source port
  assertEquals(events.length, 1);
  assertEquals(port.sent.map((s) => s.data.toHex()), [
    answer.toHex(),
    answer.toHex(),
    answer.toHex(),
  ]);
  assertEquals(port.sent[2]!.to.port, 40000);
  // Long after, the same CALL is a new call (a rebooted door).
  clock.advance(10_000);
  t.handle(call, DOOR);
  assertEquals(events.length, 2);
});

Deno.test("door transport answers door CALLCONFIRM asks with a 61-byte reply", () => {
  const { port, t } = setup();
  t.handle(
    encodeCall({ type: MSG_TYPE.ASK, op: OP.CALLCONFIRM, ...parties, counter: "2a000000" }),
    DOOR,
  );
  assertEquals(port.sent.length, 1);
  assertEquals(port.sent[0]!.data.length, 61);
  assertEquals(port.sent[0]!.data[7], MSG_TYPE.REPLY);
  assertEquals(port.sent[0]!.data.subarray(57).toHex(), "2a000000");
});

Deno.test("door transport drops a CALL whose source IP differs from its caller IP", () => {
  const { t, events, metrics } = setup();
  t.handle(encodeCall({ type: MSG_TYPE.ASK, op: OP.CALL, ...parties }), {
    hostname: "192.168.31.66",
    port: 8302,
  });
  assertEquals(events.length, 0);
  assertEquals(metrics.get("door_dropped_total", { reason: "ip_mismatch" }), 1);
});

Deno.test("our asks: resent every 100 ms, 6 sends, then false", async () => {
  const { port, clock, t } = setup();
  const result = t.ask(OP.CALLSTART, parties, DOOR);
  for (let i = 0; i < 10; i++) clock.advance(100);
  assertEquals(await result, false);
  assertEquals(port.sent.length, 6);
  assert(
    port.sent.every((s) => s.data.length === 57 && s.data[8] === OP.CALLSTART && s.data[7] === 1),
  );
  assertEquals(t.pendingAsks, 0);
});

Deno.test("our asks: the door's reply from its IP ends the retries; from another IP it does not", async () => {
  const { port, clock, t } = setup();
  const result = t.ask(OP.REMOTEOPENLOCK, parties, DOOR);
  clock.advance(100);
  const reply = encodeCall({ type: MSG_TYPE.REPLY, op: OP.REMOTEOPENLOCK, ...parties });
  t.handle(reply, { hostname: "192.168.31.66", port: 8302 });
  clock.advance(100);
  t.handle(reply, DOOR);
  assertEquals(await result, true);
  clock.advance(1000);
  assertEquals(port.sent.length, 3);
});

Deno.test("keep-alive: CALLCONFIRM every 500 ms; door lost after 6 s of silence", () => {
  const { port, clock, t } = setup();
  let lost = 0;
  t.startKeepAlive(parties, DOOR, () => lost++);
  const reply = encodeCall({
    type: MSG_TYPE.REPLY,
    op: OP.CALLCONFIRM,
    ...parties,
    counter: "01000000",
  });
  for (let i = 0; i < 20; i++) {
    clock.advance(500);
    t.handle(reply, DOOR);
  }
  assertEquals(lost, 0);
  assertEquals(port.sent.length, 20);
  assert(port.sent.every((s) => s.data.length === 61 && s.data[8] === OP.CALLCONFIRM));
  assertEquals(port.sent[2]!.data.subarray(57).toHex(), "03000000");
  clock.advance(5500);
  assertEquals(lost, 0);
  clock.advance(500);
  assertEquals(lost, 1);
  assertEquals(t.keepAlives, 0);
});

Deno.test("keep-alive: stopping it sends nothing more", () => {
  const { port, clock, t } = setup();
  const stop = t.startKeepAlive(parties, DOOR, () => {});
  clock.advance(1000);
  stop();
  clock.advance(10_000);
  assertEquals(port.sent.length, 2);
  assertEquals(clock.pending, 0);
});

Deno.test("door media goes to onMedia undecoded; junk is counted, never thrown", () => {
  const net = new MemoryNetwork();
  const port = net.bind("192.168.31.223", 8302);
  const media: Uint8Array[] = [];
  const metrics = new Metrics();
  const t = new DoorTransport({
    port,
    clock: new FakeClock(),
    logger: nullLogger,
    metrics,
    isOnline: () => true,
    localIpFor: () => "192.168.31.223",
    onEvent: () => {},
    onMedia: (d) => media.push(d),
  });
  const audio = Uint8Array.fromHex(
    "5858584349449601074d30303031303130303030303030303030303030c0a81fbd5330303031303130383039303030303030303030c0a81fdfe803000001002a0040000000010001004000b004" +
      "ff".repeat(64),
  );
  t.handle(audio, DOOR);
  assertEquals(media.length, 1);
  for (let n = 0; n < 200; n++) t.handle(crypto.getRandomValues(new Uint8Array(n)), DOOR);
  assert(metrics.get("door_datagrams_received_total") === 201);
});

Deno.test("door transport: the same CALL well after our answer is a new press, not a copy", () => {
  const { port, clock, t, events } = setup();
  const call = encodeCall({ type: MSG_TYPE.ASK, op: OP.CALL, ...parties });
  t.handle(call, DOOR);
  t.answer(callOf(events[0]), "CALLANSWER");
  clock.advance(600);
  t.handle(call, DOOR); // trails our answer: a copy, answered again
  assertEquals([events.length, port.sent.length], [1, 2]);
  clock.advance(3000);
  t.handle(call, DOOR); // the door had stopped resending: the visitor pressed again
  assertEquals(events.length, 2);
  t.release(callOf(events[1]));
  t.handle(call, DOOR); // forgotten (its call ended): new at once
  assertEquals(events.length, 3);
});

Deno.test("door transport: a quick second call's CALLEND is not taken for a copy of the first's", () => {
  const { port, clock, t, events } = setup();
  const call = encodeCall({ type: MSG_TYPE.ASK, op: OP.CALL, ...parties });
  const end = encodeCall({ type: MSG_TYPE.ASK, op: OP.CALLEND, ...parties });
  t.handle(call, DOOR);
  t.answer(callOf(events[0]), "CALLANSWER");
  t.release(callOf(events[0])); // the manager releases the CALL when its call ends
  clock.advance(1000);
  t.handle(end, DOOR); // the visitor hangs up
  t.confirmHangup(hangupOf(events[1]));
  clock.advance(500);
  t.handle(end, DOOR); // a copy trailing our reply: answered again, no event
  assertEquals([events.length, port.sent.length], [2, 3]);
  clock.advance(500);
  t.handle(call, DOOR); // and presses again at once
  clock.advance(1000);
  t.handle(end, DOOR); // hangs up again within 3 s: a new hang-up, not a copy
  assertEquals(events.map((e) => e.type), ["call", "hangup", "call", "hangup"]);
});

Deno.test("door transport: a flood of bad datagrams is counted each time, logged once per reason and source", () => {
  const net = new MemoryNetwork();
  const port = net.bind("192.168.31.223", 8302);
  const logger = memoryLogger("debug");
  const metrics = new Metrics();
  const t = new DoorTransport({
    port,
    clock: new FakeClock(1000),
    logger,
    metrics,
    isOnline: () => true,
    localIpFor: () => "192.168.31.223",
    onEvent: () => {},
  });
  const junk = new TextEncoder().encode("not a door packet");
  for (let i = 0; i < 50; i++) t.handle(junk, DOOR);
  t.handle(junk, { hostname: "192.168.31.50", port: 8302 });
  t.handle(new Uint8Array(3), DOOR);
  assertEquals(metrics.get("door_dropped_total", { reason: "bad_magic" }), 51);
  const lines = logger.records.filter((r) => String(r.msg).startsWith("door datagram dropped"));
  assertEquals(lines.map((r) => [r.reason, r.from]), [
    ["bad_magic", DOOR.hostname],
    ["bad_magic", "192.168.31.50"],
    ["truncated", DOOR.hostname],
  ]);
});

Deno.test("door transport: CALLANSWER copies the CALL's bytes 57-61 (one Android build uses them as a codec flag)", () => {
  const { port, t, events } = setup();
  const raw = encodeCall({
    type: MSG_TYPE.ASK,
    op: OP.CALL,
    ...parties,
    multicast: 1,
    groupIp: "238.9.9.9",
  });
  t.handle(raw, DOOR);
  t.answer(callOf(events[0]), "CALLANSWER");
  assertEquals(port.sent.length, 1);
  const answer = port.sent[0]!.data;
  assertEquals([answer.length, answer[8]], [62, OP.CALLANSWER]);
  assertEquals(answer.subarray(57).toHex(), raw.subarray(57).toHex());
});

Deno.test("door transport: the door call it reports names door, room and our IP; LINEUSE is 57 bytes", () => {
  const { port, t, events } = setup();
  t.handle(encodeCall({ type: MSG_TYPE.ASK, op: OP.CALL, ...parties, calleeIp: "0.0.0.0" }), DOOR);
  const call = callOf(events[0]);
  assertEquals(
    [call.doorAddress, call.roomAddress, call.roomKey, call.parties.calleeIp],
    ["M00010100", "S00010108090", "00010108090", "192.168.31.223"],
  );
  t.answer(call, "LINEUSE");
  assertEquals([port.sent[0]!.data.length, port.sent[0]!.data[8]], [57, OP.LINEUSE]);
});

Deno.test("door transport: an unanswered NS ask is reported (door, room) once a minute per door and room", () => {
  const net = new MemoryNetwork();
  const clock = new FakeClock(1000);
  const bus = new EventBus({ logger: nullLogger, metrics: new Metrics() });
  const seen: GatewayEvent[] = [];
  bus.subscribe((e) => void seen.push(e), { name: "test", types: ["ns_unanswered"] });
  const t = new DoorTransport({
    port: net.bind("192.168.31.223", 8302),
    clock,
    logger: nullLogger,
    metrics: new Metrics(),
    events: bus,
    isOnline: () => false,
    localIpFor: () => "192.168.31.223",
    onEvent: () => {},
  });
  for (let i = 0; i < 5; i++) t.handle(nsAsk("S00010108090"), DOOR);
  t.handle(nsAsk("S00010108091"), DOOR);
  clock.advance(60_000);
  t.handle(nsAsk("S00010108090"), DOOR);
  assertEquals(
    seen.map((e) => e.type === "ns_unanswered" ? [e.doorAddress, e.doorIp, e.roomKey] : []),
    [
      ["M00010100", DOOR.hostname, "00010108090"],
      ["M00010100", DOOR.hostname, "00010108091"],
      ["M00010100", DOOR.hostname, "00010108090"],
    ],
  );
});

Deno.test("door transport: NS and CALL asks are rate limited per source IP; the excess is dropped and counted", () => {
  const net = new MemoryNetwork();
  const port = net.bind("192.168.31.223", 8302);
  const clock = new FakeClock(1000);
  const events: DoorEvent[] = [];
  const metrics = new Metrics();
  const t = new DoorTransport({
    port,
    clock,
    logger: nullLogger,
    metrics,
    isOnline: () => true,
    localIpFor: () => "192.168.31.223",
    onEvent: (e) => events.push(e),
    rates: { ns: { burst: 5, perSecond: 2 }, call: { burst: 3, perSecond: 1 } },
  });
  for (let i = 0; i < 100; i++) t.handle(nsAsk("S00010108090"), DOOR);
  assertEquals(port.sent.length, 5, "the burst is answered");
  assertEquals(metrics.get("door_dropped_total", { reason: "rate_limited" }), 95);
  // Another IP has its own bucket.
  const other = { hostname: "192.168.31.190", port: 8302 };
  t.handle(
    encodeNsAsk({
      asker: "M00010200",
      askerIp: other.hostname,
      target: "S00010108090",
      targetIp: "0.0.0.0",
    }),
    other,
  );
  assertEquals(port.sent.length, 6);
  // The bucket refills: 2 a second.
  clock.advance(1000);
  for (let i = 0; i < 10; i++) t.handle(nsAsk("S00010108090"), DOOR);
  assertEquals(port.sent.length, 8);
  // CALL: a flood of distinct calls from one IP makes 3 events, not 50.
  for (let i = 0; i < 50; i++) {
    const callee = `S0001010${String(8000 + i)}`;
    t.handle(encodeCall({ type: MSG_TYPE.ASK, op: OP.CALL, ...parties, callee }), DOOR);
  }
  assertEquals(events.length, 3);
  assertEquals(metrics.get("door_dropped_total", { reason: "rate_limited" }), 95 + 8 + 47);
});

Deno.test("door transport: an unknown door is served but not reported; the first CALLCONFIRM reply of an answered call confirms it", () => {
  const net = new MemoryNetwork();
  const port = net.bind("192.168.31.223", 8302);
  const clock = new FakeClock(1000);
  const calls: DoorEvent[] = [];
  const seen: GatewayEvent[] = [];
  const bus = new EventBus({ logger: nullLogger, metrics: new Metrics() });
  bus.subscribe((e) => seen.push(e), { name: "test", types: ["door_seen"] });
  const confirmed: string[] = [];
  const standing: Record<string, "known" | "unknown" | "refused"> = {
    "192.168.31.189": "unknown",
    "192.168.31.66": "refused",
  };
  const t = new DoorTransport({
    port,
    clock,
    logger: nullLogger,
    metrics: new Metrics(),
    events: bus,
    isOnline: () => true,
    localIpFor: () => "192.168.31.223",
    onEvent: (e) => calls.push(e),
    admit: (_address, ip) => standing[ip] ?? "known",
    onConfirmed: (address, ip) => confirmed.push(`${address}@${ip}`),
  });
  t.handle(nsAsk("S00010108090"), DOOR);
  assertEquals(port.sent.length, 1, "an unknown door's NS ask is answered");
  t.handle(encodeCall({ type: MSG_TYPE.ASK, op: OP.CALL, ...parties }), DOOR);
  assertEquals(calls.length, 1, "and its CALL is a call");
  assertEquals([seen.length, confirmed.length], [0, 0], "but nothing is reported or learned");
  // A refused door gets nothing.
  const spoof = { hostname: "192.168.31.66", port: 8302 };
  t.handle(
    encodeNsAsk({
      asker: "M00010100",
      askerIp: spoof.hostname,
      target: "S00010108090",
      targetIp: "0.0.0.0",
    }),
    spoof,
  );
  assertEquals(port.sent.length, 1);
  // CALLANSWER and the keep-alive; a CALLCONFIRM reply from another IP confirms nothing.
  t.answer(callOf(calls[0]), "CALLANSWER");
  const stop = t.keepAlive(callOf(calls[0]), () => {});
  clock.advance(500);
  const reply = encodeCall({
    type: MSG_TYPE.REPLY,
    op: OP.CALLCONFIRM,
    ...parties,
    counter: "01000000",
  });
  t.handle(reply, spoof);
  assertEquals(confirmed, []);
  t.handle(reply, DOOR);
  clock.advance(500);
  t.handle(reply, DOOR);
  assertEquals(confirmed, ["M00010100@192.168.31.189"], "once per call");
  assertEquals(seen.length, 1, "a door in a call is heard");
  stop();
});
