import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { FakeClock } from "../testing/mod.ts";
import { nullLogger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import type { Endpoint } from "../net/port.ts";
import { EventBus } from "../events/bus.ts";
import type { GatewayEvent } from "../events/types.ts";
import { doorCallEvent as callEvent, FakeDoor } from "../testing/fake_door.ts";
import { CallManager } from "./manager.ts";
import type { CallNotice } from "./ports.ts";

const DOOR_A: Endpoint = { hostname: "10.0.0.5", port: 8302 };
const DOOR_B: Endpoint = { hostname: "10.0.0.6", port: 8302 };
const partiesA = {
  caller: "M00010100",
  callerIp: "10.0.0.5",
  callee: "S00010108090",
  calleeIp: "10.0.0.2",
};
const partiesB = { ...partiesA, caller: "M00010200", callerIp: "10.0.0.6" };

function setup(
  online: Record<string, string[]> = { "00010108090": ["a", "b"] },
  known?: (address: string, ip: string) => boolean,
) {
  const clock = new FakeClock();
  const door = new FakeDoor();
  const sent: { uid: string; msg: CallNotice & { reason?: string } }[] = [];
  const events = new EventBus({ logger: nullLogger, metrics: new Metrics() });
  const seen: GatewayEvent[] = [];
  events.subscribe((e) => seen.push(e), { name: "test" });
  const routes: string[] = [];
  const m = new CallManager({
    door,
    phones: {
      send: (uid, _room, msg) => (sent.push({ uid, msg }), true),
      online: (room) => online[room] ?? [],
    },
    media: {
      open: () => {},
      close: () => {},
      route: (_id, video, audioFrom) => routes.push(`${video.join(",")}/${audioFrom ?? ""}`),
    },
    clock,
    logger: nullLogger,
    events,
    ringTimeoutMs: 30_000,
    talkTimeoutMs: 180_000,
    ...(known ? { isKnownDoor: known } : {}),
  });
  const said = () =>
    sent.map((s) => `${s.uid}:${s.msg.order}${s.msg.reason ? `(${s.msg.reason})` : ""}`);
  return { clock, door, sent, m, said, seen, routes };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

Deno.test("manager: full call with both wires in order, then nothing left running", async () => {
  const { clock, door, m, sent, said } = setup();
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  const call = sent[0]!.msg;
  assert(call.order === "call");
  assertEquals([call.doorAddress, typeof call.mediaKey], ["M00010100", "string"]);
  assertEquals(m.phoneRequest("a", "00010108090", "call ok", "M00010100", call.callId).ok, true);
  assertEquals(m.phoneRequest("a", "00010108090", "talk", "M00010100").ok, true);
  door.reply("CALLSTART");
  await flush();
  m.phoneRequest("a", "00010108090", "unlock", "M00010100");
  door.reply("REMOTEOPENLOCK");
  await flush();
  m.phoneRequest("a", "00010108090", "over", "M00010100");
  door.reply("CALLEND");
  await flush();
  assertEquals(door.log, [
    "answer CALLANSWER 10.0.0.5",
    "ask CALLSTART 10.0.0.5",
    "ask REMOTEOPENLOCK 10.0.0.5",
    "ask CALLEND 10.0.0.5",
  ]);
  assertEquals(said(), [
    "a:call",
    "b:call",
    "a:talk begin",
    "b:over(answered elsewhere)",
    "a:unlock success",
    "a:over success",
  ]);
  assert(sent.every((s) => s.msg.callId === call.callId));
  assertEquals([m.size, door.keepAlives.size, clock.pending], [0, 0, 0]);
});

Deno.test("manager: a second door calling a ringing room gets LINEUSE; the phones are not disturbed", () => {
  const { door, m, sent } = setup();
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  m.phoneRequest("a", "00010108090", "call ok");
  const before = sent.length;
  m.onDoorEvent(callEvent(partiesB, DOOR_B));
  assertEquals(door.log.at(-1), "answer LINEUSE 10.0.0.6");
  assertEquals(sent.length, before);
  assertEquals(m.size, 1);
});

Deno.test("manager: calls for different rooms are independent", () => {
  const { m, sent } = setup({ "00010108090": ["a"], "00010108091": ["c"] });
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  m.onDoorEvent(callEvent({ ...partiesB, callee: "S00010108091" }, DOOR_B));
  assertEquals(m.size, 2);
  assertEquals(sent.map((s) => s.uid), ["a", "c"]);
});

Deno.test("manager: the same door calling again (reboot) ends the old call and rings anew", () => {
  const { m, sent, said } = setup();
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  const first = sent[0]!.msg.callId;
  m.phoneRequest("a", "00010108090", "call ok");
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  assertEquals(m.size, 1);
  assert(m.byRoom("00010108090")!.callId !== first);
  assertEquals(said().slice(2), [
    "a:over(door hung up)",
    "b:over(door hung up)",
    "a:call",
    "b:call",
  ]);
});

Deno.test("manager: unlock or over for another door or no call is not_in_call", () => {
  const { m } = setup();
  assertEquals(m.phoneRequest("a", "00010108090", "unlock").ok, false);
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  assertEquals(m.phoneRequest("a", "00010108090", "unlock", "M00010200"), {
    ok: false,
    code: "not_in_call",
  });
  assertEquals(m.phoneRequest("a", "00010108091", "over"), { ok: false, code: "not_in_call" });
  assertEquals(m.phoneRequest("a", "00010108090", "over", undefined, "other-call-id").ok, false);
});

Deno.test("manager: door hang-up of a call we do not know is confirmed at once", () => {
  const { door, m } = setup();
  m.onDoorEvent(callEvent(partiesA, DOOR_A, "hangup"));
  assertEquals(door.log, ["answer CALLEND reply 10.0.0.5"]);
});

Deno.test("manager: door hang-up waits for over success, at most 1 s", () => {
  const { clock, door, m, said } = setup();
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  m.phoneRequest("a", "00010108090", "call ok");
  m.onDoorEvent(callEvent(partiesA, DOOR_A, "hangup"));
  assertEquals(said().slice(-2), ["a:over(door hung up)", "b:over(door hung up)"]);
  clock.advance(999);
  assertEquals(door.log.at(-1), "answer CALLANSWER 10.0.0.5");
  clock.advance(1);
  assertEquals(door.log.at(-1), "answer CALLEND reply 10.0.0.5");
  assertEquals(m.size, 0);
});

Deno.test("manager: 3 s without call ok answers LINEUSE", () => {
  const { clock, door, m } = setup();
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  clock.advance(2999);
  assertEquals(door.log, []);
  clock.advance(1);
  assertEquals(door.log, ["answer LINEUSE 10.0.0.5"]);
  assertEquals([m.size, clock.pending], [0, 0]);
});

Deno.test("manager: door lost ends the call with over (door lost)", () => {
  const { door, m, said } = setup();
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  m.phoneRequest("a", "00010108090", "call ok");
  door.lost[0]!();
  assertEquals(said().slice(-2), ["a:over(door lost)", "b:over(door lost)"]);
  assertEquals(m.size, 0);
});

Deno.test("manager: shutdown ends every call with CALLEND and waits for the doors", async () => {
  const { door, m, said } = setup();
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  m.phoneRequest("a", "00010108090", "call ok");
  const done = m.shutdown();
  assertEquals(door.log.at(-1), "ask CALLEND 10.0.0.5");
  door.reply("CALLEND");
  await done;
  assertEquals(m.size, 0);
  assert(said().includes("a:over(gateway stopping)"));
});

Deno.test("manager: an answered call forgets its CALL when it ends, so a new press rings again", async () => {
  const { door, m } = setup();
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  m.phoneRequest("a", "00010108090", "call ok");
  m.phoneRequest("a", "00010108090", "over");
  door.reply("CALLEND");
  await flush();
  assertEquals(door.released, ["10.0.0.5|call"]);
});

Deno.test("manager: a door's re-CALL that ends its old call keeps its own ASK entry (its copies stay copies)", () => {
  const { door, m } = setup();
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  m.phoneRequest("a", "00010108090", "call ok");
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  assertEquals([door.released, m.size], [[], 1]);
});

Deno.test("manager: what happens is emitted as events, in order, with the call id", async () => {
  const { door, m, seen } = setup();
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  m.onDoorEvent(callEvent(partiesB, DOOR_B)); // busy
  const callId = m.byRoom("00010108090")!.callId;
  m.phoneRequest("a", "00010108090", "call ok");
  m.phoneRequest("a", "00010108090", "talk");
  door.reply("CALLSTART");
  await flush();
  m.phoneRequest("a", "00010108090", "unlock");
  door.reply("REMOTEOPENLOCK");
  await flush();
  m.phoneRequest("a", "00010108090", "over");
  door.reply("CALLEND");
  await flush();
  const summary = seen.map((e) =>
    e.type === "call_phase"
      ? `phase ${e.from}>${e.to}`
      : e.type === "unlock_attempted"
      ? `unlock ${e.uid} ${e.result}`
      : e.type === "call_refused"
      ? `refused ${e.reason}`
      : e.type === "call_ended"
      ? `ended ${e.reason}`
      : e.type
  );
  assertEquals(summary, [
    "call_started",
    "phase new>offered",
    "refused busy",
    "phase offered>ringing",
    "call_answered",
    "phase ringing>connecting",
    "phase connecting>talking",
    "call_talk",
    "unlock a success",
    "phase talking>hanging_up",
    "phase hanging_up>ended",
    "ended phone_hung_up",
  ]);
  assert(
    seen.every((e) => !("callId" in e) || e.callId === callId),
    "every call event names the call",
  );
});

Deno.test("manager: a known door's CALL ends an unknown door's call on its room; the known call proceeds", () => {
  // Door A (10.0.0.5) is known; a stranger B calls the room first and gets a phone to answer.
  const { door, m, said, seen } = setup(undefined, (_a, ip) => ip === DOOR_A.hostname);
  m.onDoorEvent(callEvent(partiesB, DOOR_B));
  m.phoneRequest("a", "00010108090", "call ok");
  const fake = m.byRoom("00010108090")!.callId;
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  const real = m.byRoom("00010108090")!;
  assert(real.callId !== fake);
  assertEquals([real.doorAddress, real.door.hostname], ["M00010100", "10.0.0.5"]);
  assertEquals(door.log, [
    "answer CALLANSWER 10.0.0.6",
    "ask CALLEND 10.0.0.6", // the stranger is hung up on, once
  ]);
  assertEquals(said(), [
    "a:call",
    "b:call",
    "a:over(door hung up)",
    "b:over(door hung up)",
    "a:call",
    "b:call",
  ]);
  const ended = seen.find((e) => e.type === "call_ended");
  assertEquals(ended?.type === "call_ended" && [ended.callId, ended.reason], [
    fake,
    "door_superseded",
  ]);
  assertEquals(
    seen.filter((e) => e.type === "call_refused").length,
    0,
    "the known door is not busy",
  );
});

Deno.test("manager: an unanswered stranger's call is ended with LINEUSE; unknown never displaces known", () => {
  const { door, m } = setup(undefined, (_a, ip) => ip === DOOR_A.hostname);
  m.onDoorEvent(callEvent(partiesB, DOOR_B));
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  assertEquals(door.log, ["answer LINEUSE 10.0.0.6"]);
  assertEquals(m.byRoom("00010108090")?.door.hostname, "10.0.0.5");
  // Now the stranger calls again while the known door holds the room: busy, as before.
  const stranger = { ...partiesB, caller: "M00010300" };
  m.onDoorEvent(callEvent(stranger, DOOR_B));
  assertEquals(door.log, ["answer LINEUSE 10.0.0.6", "answer LINEUSE 10.0.0.6"]);
  assertEquals(m.byRoom("00010108090")?.door.hostname, "10.0.0.5");
});

Deno.test("manager: two known doors, or two unknown doors: the first call keeps the room", () => {
  for (const known of [() => true, () => false]) {
    const { door, m } = setup(undefined, known);
    m.onDoorEvent(callEvent(partiesA, DOOR_A));
    m.onDoorEvent(callEvent(partiesB, DOOR_B));
    assertEquals(door.log, ["answer LINEUSE 10.0.0.6"]);
    assertEquals(m.byRoom("00010108090")?.door.hostname, "10.0.0.5");
  }
});

Deno.test("manager: a door silent to REMOTEOPENLOCK while ringing: CALLSTART, REMOTEOPENLOCK again, unlock success, the door learned once", async () => {
  const { door, m, said, seen, routes } = setup();
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  m.phoneRequest("a", "00010108090", "call ok");
  m.phoneRequest("a", "00010108090", "unlock");
  door.reply("REMOTEOPENLOCK", false);
  await flush();
  door.reply("CALLSTART");
  await flush();
  door.reply("REMOTEOPENLOCK");
  await flush();
  assertEquals(door.log, [
    "answer CALLANSWER 10.0.0.5",
    "ask REMOTEOPENLOCK 10.0.0.5",
    "ask CALLSTART 10.0.0.5",
    "ask REMOTEOPENLOCK 10.0.0.5",
  ]);
  assertEquals(said(), ["a:call", "b:call", "a:unlock success"]);
  // No phone's audio went to the door; both phones kept the door's picture.
  assertEquals(routes, ["a,b/", "a,b/"]);
  assertEquals(m.byRoom("00010108090")!.phase, "ringing");
  assertEquals(m.byRoom("00010108090")!.talker, undefined);
  const learned = seen.filter((e) => e.type === "door_quirk");
  assertEquals(learned.map((e) => [e.address, e.ip, e.needsTalkForUnlock]), [[
    "M00010100",
    "10.0.0.5",
    true,
  ]]);
  assertEquals(
    seen.filter((e) => e.type === "unlock_attempted").map((e) => e.result),
    ["success"],
  );
  // A talk now begins at once: the door already talks.
  m.phoneRequest("b", "00010108090", "talk");
  assertEquals(door.log.filter((l) => l.startsWith("ask CALLSTART")).length, 1);
  assertEquals(said().slice(3), ["b:talk begin", "a:over(answered elsewhere)"]);
  assertEquals(m.byRoom("00010108090")!.talker, "b");
  assertEquals(routes.at(-1), "b/b");
});

Deno.test("manager: the next call to a learned door sends CALLSTART before REMOTEOPENLOCK at once", async () => {
  const { door, m, said, seen } = setup();
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  m.phoneRequest("a", "00010108090", "call ok");
  m.phoneRequest("a", "00010108090", "unlock");
  door.reply("REMOTEOPENLOCK", false);
  await flush();
  door.reply("CALLSTART");
  await flush();
  door.reply("REMOTEOPENLOCK");
  await flush();
  m.phoneRequest("a", "00010108090", "over");
  door.reply("CALLEND");
  await flush();
  assertEquals(m.size, 0);
  door.log.length = 0;
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  m.phoneRequest("a", "00010108090", "call ok");
  m.phoneRequest("a", "00010108090", "unlock");
  assertEquals(door.log, ["answer CALLANSWER 10.0.0.5", "ask CALLSTART 10.0.0.5"]);
  door.reply("CALLSTART");
  await flush();
  door.reply("REMOTEOPENLOCK");
  await flush();
  assertEquals(door.log.slice(-1), ["ask REMOTEOPENLOCK 10.0.0.5"]);
  assertEquals(said().filter((s) => s.includes("unlock")), [
    "a:unlock success",
    "a:unlock success",
  ]);
  assert(!said().some((s) => s.includes("talk begin")));
  // Learned once: the second call confirmed nothing new.
  assertEquals(seen.filter((e) => e.type === "door_quirk").length, 1);
  // Another door is not affected.
  m.phoneRequest("a", "00010108090", "over");
  door.reply("CALLEND");
  await flush();
  m.onDoorEvent(callEvent(partiesB, DOOR_B));
  m.phoneRequest("a", "00010108090", "call ok");
  m.phoneRequest("a", "00010108090", "unlock");
  assertEquals(door.log.at(-1), "ask REMOTEOPENLOCK 10.0.0.6");
});

Deno.test("manager: the injected door quirks decide talk-first unlocks", () => {
  const clock = new FakeClock();
  const door = new FakeDoor();
  const asked: string[] = [];
  const m = new CallManager({
    door,
    phones: { send: () => true, online: () => ["a"] },
    clock,
    logger: nullLogger,
    events: new EventBus({ logger: nullLogger, metrics: new Metrics() }),
    ringTimeoutMs: 30_000,
    talkTimeoutMs: 180_000,
    quirks: {
      needsTalkForUnlock: (d) => (asked.push(d), d === "M00010100"),
      setNeedsTalkForUnlock: () => {},
    },
  });
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  m.phoneRequest("a", "00010108090", "call ok");
  m.phoneRequest("a", "00010108090", "unlock");
  assertEquals([door.log.at(-1), asked], ["ask CALLSTART 10.0.0.5", ["M00010100"]]);
});

Deno.test("manager: each phone of a call gets its own media key; the call knows whose is whose", () => {
  const { m, sent } = setup();
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  const keys = new Map(
    sent.filter((s) => s.msg.order === "call").map((
      s,
    ) => [s.uid, (s.msg as { mediaKey: string }).mediaKey]),
  );
  assertEquals([...keys.keys()].sort(), ["a", "b"]);
  assert(keys.get("a") !== keys.get("b"), "one key per phone");
  const view = m.byRoom("00010108090")!;
  assertEquals([view.mediaKeyOf("a"), view.mediaKeyOf("b"), view.mediaKeyOf("z")], [
    keys.get("a"),
    keys.get("b"),
    undefined,
  ]);
});

Deno.test("manager: nobody online but push can wake: CALLANSWER at once, a woken phone rings", async () => {
  const online: Record<string, string[]> = {};
  const { clock, door, m, said, seen } = setupWake(online);
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  assertEquals(door.log, ["answer CALLANSWER 10.0.0.5"]);
  const started = seen.find((e) => e.type === "call_started");
  assert(started?.type === "call_started");
  assertEquals(started.wakeBy, started.at + 20_000);
  clock.advance(2000);
  online["00010108090"] = ["a"];
  m.phoneJoined("a", "00010108090");
  assertEquals(said(), ["a:call"]);
  // The wake window passing changes nothing now; the talk proceeds as today.
  clock.advance(20_000);
  assertEquals(m.phoneRequest("a", "00010108090", "talk", "M00010100").ok, true);
  door.reply("CALLSTART");
  await flush();
  assertEquals(m.byRoom("00010108090")?.phase, "talking");
  m.phoneRequest("a", "00010108090", "over", "M00010100");
  door.reply("CALLEND");
  await flush();
  assertEquals(m.size, 0);
});

Deno.test("manager: nobody wakes within the window: CALLEND, ended no_phone_woke", async () => {
  const { clock, door, m, seen } = setupWake({});
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  clock.advance(19_999);
  assertEquals(door.log, ["answer CALLANSWER 10.0.0.5"]);
  clock.advance(1);
  assertEquals(door.log, ["answer CALLANSWER 10.0.0.5", "ask CALLEND 10.0.0.5"]);
  door.reply("CALLEND");
  await flush();
  const end = seen.find((e) => e.type === "call_ended");
  assert(end?.type === "call_ended");
  assertEquals(end.reason, "no_phone_woke");
  assertEquals(m.size, 0);
});

Deno.test("manager: a room push cannot wake (or with phones online) behaves as before", async () => {
  const { door, m, seen } = setupWake({}, () => false);
  m.onDoorEvent(callEvent(partiesA, DOOR_A));
  assertEquals(door.log, ["answer LINEUSE 10.0.0.5"]);
  const started = seen.find((e) => e.type === "call_started");
  assert(started?.type === "call_started" && started.wakeBy === undefined);
  const online = setupWake({ "00010108090": ["a"] });
  online.m.onDoorEvent(callEvent(partiesA, DOOR_A));
  assertEquals(online.door.log, [], "waits for call ok (3 s rule)");
  assertEquals(online.said(), ["a:call"]);
  await online.m.shutdown(0);
});

/** A manager whose rooms push can wake (`canWake`), wake window 20 s. */
function setupWake(
  online: Record<string, string[]>,
  canWake: (room: string) => boolean = () => true,
) {
  const clock = new FakeClock();
  const door = new FakeDoor();
  const sent: { uid: string; msg: CallNotice }[] = [];
  const events = new EventBus({ logger: nullLogger, metrics: new Metrics() });
  const seen: GatewayEvent[] = [];
  events.subscribe((e) => seen.push(e), { name: "test" });
  const m = new CallManager({
    door,
    phones: {
      send: (uid, _room, msg) => (sent.push({ uid, msg }), true),
      online: (room) => online[room] ?? [],
    },
    clock,
    logger: nullLogger,
    events,
    ringTimeoutMs: 30_000,
    talkTimeoutMs: 180_000,
    canWake,
    wakeWindowMs: 20_000,
  });
  const said = () => sent.map((s) => `${s.uid}:${s.msg.order}`);
  return { clock, door, m, said, seen };
}
