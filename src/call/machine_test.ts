import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { LEGAL, startCall, transition } from "./machine.ts";
import {
  type CallContext,
  type CallEvent,
  type CallState,
  type Effect,
  endReasonOf,
  EVENT_TYPES,
  INITIAL,
  isAnswered,
  participantsOf,
  PHASE,
  type Phase,
  ringGroupOf,
  talkerOf,
} from "./types.ts";

const ctx: CallContext = { now: 0, ringTimeoutMs: 30_000, talkTimeoutMs: 180_000 };

function run(
  events: CallEvent[],
  from: CallState = INITIAL,
): { state: CallState; effects: Effect[] } {
  let state = from;
  const effects: Effect[] = [];
  for (const e of events) {
    const t = transition(state, e, ctx);
    state = t.state;
    effects.push(...t.effects);
  }
  return { state, effects };
}

const call: CallEvent = { type: "door_call", phones: ["a", "b"] };
const ok = (uid = "a"): CallEvent => ({ type: "phone_call_ok", uid });
const talk = (uid = "a"): CallEvent => ({ type: "phone_talk", uid });
const started: CallEvent = { type: "callstart_result", ok: true };
const unlock = (uid = "a", talkFirst = false): CallEvent => ({
  type: "phone_unlock",
  uid,
  ...(talkFirst ? { talkFirst } : {}),
});
const locked = (ok: boolean): CallEvent => ({ type: "unlock_result", ok });
const startedOk = (ok: boolean): CallEvent => ({ type: "callstart_result", ok });

/** A representative state of every phase. */
const STATES: Record<Phase, CallState> = {
  new: INITIAL,
  offered: run([call]).state,
  ringing: run([call, ok()]).state,
  connecting: run([call, ok(), talk()]).state,
  talking: run([call, ok(), talk(), started]).state,
  hanging_up: run([call, ok(), { type: "phone_over", uid: "a" }]).state,
  door_hung_up: run([call, ok(), { type: "door_hangup" }]).state,
  ended: run([call, { type: "timer", name: "answer_deadline" }]).state,
};

/**
 * States of an unlock on its way (unlock-needs-talk doors), each with its row of expected next
 * phases (columns as in {@linkcode TABLE}, `talkFirst` unlock).
 */
const UNLOCKING: Record<string, { state: CallState; row: string }> = {
  // REMOTEOPENLOCK in flight before any call ok: no reply → the unlocking phone answers the door.
  "offered, REMOTEOPENLOCK in flight": {
    state: run([call, unlock()]).state,
    row:
      "= door_hung_up ended ended ended = = = ringing = = ringing connecting = ended = = = ended ended = = ended =",
  },
  "ringing, REMOTEOPENLOCK in flight": {
    state: run([call, ok(), unlock()]).state,
    row:
      "= door_hung_up ended ended ended = = = = = = = connecting = hanging_up = = = = hanging_up = = hanging_up =",
  },
  "ringing, the unlock's CALLSTART in flight": {
    state: run([call, ok(), unlock("a", true)]).state,
    row:
      "= door_hung_up ended ended ended = = = = = = = connecting = hanging_up = = = = hanging_up = = hanging_up =",
  },
  // The door talks for the unlock: a talk begins at once (ringing → talking).
  "ringing, the door talking after an unlock": {
    state: run([call, ok(), unlock("a", true), started, locked(true)]).state,
    row:
      "= door_hung_up ended ended ended = = = = = = = talking = hanging_up = = = = hanging_up = = hanging_up =",
  },
  "connecting, the unlock waiting for the talk's CALLSTART": {
    state: run([call, ok(), unlock("a", true), talk()]).state,
    row:
      "= door_hung_up ended ended ended talking ringing = = = = = = = hanging_up = = hanging_up = hanging_up = = hanging_up =",
  },
  "talking, a REMOTEOPENLOCK from before the talk in flight": {
    state: run([call, ok(), unlock(), talk(), started]).state,
    row:
      "= door_hung_up ended ended ended = = = = = = = = = hanging_up = = hanging_up = = hanging_up = hanging_up =",
  },
  "hanging_up, the unlock's CALLSTART in flight": {
    state: run([call, ok(), unlock("a", true), { type: "phone_over", uid: "b" }]).state,
    row: "= ended ended ended ended = = = = ended ended = = = = = = = = = = = ended =",
  },
};

/** A door's CALL to a room whose phones all sleep, push sent. */
const wakeCall: CallEvent = { type: "door_call", phones: [], wake: true };

/** States of a call waiting for a sleeping phone, with their rows (as {@linkcode UNLOCKING}). */
const WAKING: Record<string, { state: CallState; row: string }> = {
  // Answered at once, nobody rung: a joining phone is rung; the wake timer ends it (CALLEND).
  "ringing, waiting for a sleeping phone to wake": {
    state: run([wakeCall]).state,
    row:
      "= door_hung_up ended ended ended = = = = = = = connecting = hanging_up = = = = hanging_up = = hanging_up hanging_up",
  },
  // A woken phone joined: the wake window no longer matters (only the ring timeout).
  "ringing, a woken phone joined": {
    state: run([wakeCall, { type: "phone_joined", uid: "a" }]).state,
    row:
      "= door_hung_up ended ended ended = = = = = = = connecting = hanging_up = = hanging_up = hanging_up = = hanging_up =",
  },
};

/** Every state the exhaustive tests visit: one per phase, then the unlocking and waking ones. */
const ALL_STATES: [string, CallState][] = [
  ...Object.entries(STATES),
  ...Object.entries({ ...UNLOCKING, ...WAKING }).map((
    [name, u],
  ): [string, CallState] => [name, u.state]),
];

/** One event of each type (uid "a" is a participant, "z" is not). */
function eventsOf(uid: string): CallEvent[] {
  return [
    call,
    { type: "door_hangup" },
    { type: "door_lost" },
    { type: "door_recall" },
    { type: "door_superseded" },
    { type: "callstart_result", ok: true },
    { type: "callstart_result", ok: false },
    { type: "unlock_result", ok: true },
    { type: "unlock_result", ok: false },
    { type: "callend_result", ok: true },
    { type: "callend_result", ok: false },
    { type: "phone_call_ok", uid },
    { type: "phone_talk", uid },
    { type: "phone_unlock", uid, talkFirst: uid !== "b" },
    { type: "phone_over", uid },
    { type: "phone_over_success", uid },
    { type: "phone_joined", uid },
    { type: "phone_left", uid },
    { type: "timer", name: "answer_deadline" },
    { type: "timer", name: "ring" },
    { type: "timer", name: "talk" },
    { type: "timer", name: "door_end_grace" },
    { type: "shutdown" },
    { type: "timer", name: "wake" },
  ];
}

/**
 * Expected next phase of every phase × event (participant "a"). `=` means unchanged.
 * Columns follow eventsOf(): call, hangup, lost, recall, superseded, cs+, cs-, ul+, ul-, ce+, ce-, callok,
 * talk, unlock, over, oversuccess, joined, left, t:answer, t:ring, t:talk, t:grace, shutdown, t:wake.
 */
const TABLE: Record<Phase, string> = {
  new: "offered = = = = = = = = = = = = = = = = = = = = = = =",
  offered:
    "= door_hung_up ended ended ended = = = = = = ringing connecting ringing ended = = = ended ended = = ended =",
  ringing:
    "= door_hung_up ended ended ended = = = = = = = connecting = hanging_up = = = = hanging_up = = hanging_up =",
  connecting:
    "= door_hung_up ended ended ended talking ringing = = = = = = = hanging_up = = hanging_up = hanging_up = = hanging_up =",
  talking:
    "= door_hung_up ended ended ended = = = = = = = = = hanging_up = = hanging_up = = hanging_up = hanging_up =",
  hanging_up: "= ended ended ended ended = = = = ended ended = = = = = = = = = = = ended =",
  door_hung_up: "= = ended ended ended = = = = = = = = = ended ended = = = = = ended ended =",
  ended: "= = = = = = = = = = = = = = = = = = = = = = = =",
};

Deno.test("transition table: every phase × every event, against the written table", () => {
  for (const phase of Object.keys(PHASE) as Phase[]) {
    const expected = TABLE[phase].split(" ");
    const events = eventsOf("a");
    assertEquals(expected.length, events.length, `${phase}: table width`);
    events.forEach((e, i) => {
      const t = transition(STATES[phase], e, ctx);
      const want = expected[i] === "=" ? phase : expected[i];
      assertEquals(t.state.phase, want, `${phase} × ${JSON.stringify(e)}`);
    });
  }
  for (const [name, { state, row }] of Object.entries({ ...UNLOCKING, ...WAKING })) {
    const expected = row.split(" ");
    const events = eventsOf("a");
    assertEquals(expected.length, events.length, `${name}: table width`);
    events.forEach((e, i) => {
      const t = transition(state, e, ctx);
      const want = expected[i] === "=" ? state.phase : expected[i];
      assertEquals(t.state.phase, want, `${name} × ${JSON.stringify(e)}`);
    });
  }
});

Deno.test("transition invariants hold for every phase × event × (participant, outsider)", () => {
  for (const [name, state] of ALL_STATES) {
    const phase = state.phase;
    for (const uid of ["a", "b", "z"]) {
      for (const e of eventsOf(uid)) {
        const label = `${name} × ${JSON.stringify(e)}`;
        const t = transition(state, e, ctx);
        const next = t.state.phase;
        assert(next === phase || LEGAL[phase].includes(next), `${label}: illegal move to ${next}`);
        const ends = t.effects.filter((x) => x.type === "end");
        if (next === "ended" && phase !== "ended") {
          assertEquals(ends.length, 1, `${label}: one end effect`);
          assertEquals(t.effects.at(-1)!.type, "end", `${label}: end is last`);
        } else {
          assertEquals(ends.length, 0, label);
        }
        if (phase === "ended") {
          assert(
            t.effects.every((x) => x.type === "notify" && x.order === "error"),
            `${label}: no effect after the end`,
          );
        }
        for (const x of t.effects) {
          if (x.type === "notify") assert(x.to.length > 0, `${label}: empty notify`);
          // Only a talk makes a talker: nothing else begins one or routes a phone's audio.
          if (x.type === "notify" && x.order === "talk begin") {
            assert(e.type === "phone_talk" || e.type === "callstart_result", label);
          }
          if (x.type === "media" && x.audioFrom !== undefined) {
            assertEquals(talkerOf(t.state), x.audioFrom, label);
          }
        }
        // An unlock step is set exactly while phones wait for the unlock.
        if ("unlockWaiters" in t.state) {
          assertEquals(
            t.state.unlockStep !== undefined,
            t.state.unlockWaiters.length > 0,
            `${label}: unlock step`,
          );
        }
        // A door that talks gets no second CALLSTART.
        const talks = state.phase === "talking" || (state.phase === "ringing" && state.doorTalking);
        if (talks) {
          assert(
            !t.effects.some((x) => x.type === "door_ask" && x.op === "CALLSTART"),
            `${label}: CALLSTART to a talking door`,
          );
        }
      }
    }
  }
  assertEquals(EVENT_TYPES.length, 17);
});

Deno.test("state accessors: ring group, talker, answered, participants and end reason per phase", () => {
  const read = (s: CallState) => [
    ringGroupOf(s),
    talkerOf(s),
    isAnswered(s),
    participantsOf(s),
    endReasonOf(s),
  ];
  const seen = Object.fromEntries(Object.entries(STATES).map(([p, s]) => [p, read(s)]));
  assertEquals(seen, {
    new: [[], undefined, false, [], undefined],
    offered: [["a", "b"], undefined, false, ["a", "b"], undefined],
    ringing: [["a", "b"], undefined, true, ["a", "b"], undefined],
    connecting: [["a", "b"], "a", true, ["a", "b"], undefined],
    talking: [["a"], "a", true, ["a"], undefined],
    hanging_up: [["a", "b"], undefined, true, ["a", "b"], "declined"],
    door_hung_up: [["a", "b"], undefined, true, ["a", "b"], "door_hung_up"],
    ended: [[], undefined, false, [], "no_answer"],
  });
  // A talker from outside the ring group takes part too, and keeps doing so while ending.
  const outsider = run([call, ok(), talk("z")]).state;
  assertEquals(read(outsider), [["a", "b"], "z", true, ["a", "b", "z"], undefined]);
  const ending = transition(outsider, { type: "door_hangup" }, ctx).state;
  assertEquals(read(ending), [["a", "b"], "z", true, ["a", "b", "z"], "door_hung_up"]);
  const done = transition(ending, { type: "shutdown" }, ctx).state;
  assertEquals(read(done), [[], undefined, true, [], "door_hung_up"]);
});

function orders(effects: readonly Effect[]): string[] {
  return effects.flatMap((e) => {
    if (e.type === "notify") {
      return [
        `${e.order}${e.reason ? `(${e.reason})` : ""}${e.code ? `(${e.code})` : ""}>${
          e.to.join(",")
        }`,
      ];
    }
    if (e.type === "answer_call" || e.type === "door_ask") return [`${e.type}:${e.op}`];
    if (e.type === "reply_hangup" || e.type === "end") return [e.type];
    return [];
  });
}

Deno.test("seed flows 二 三 四 六: ring, call ok, talk, unlock, phone hangs up", () => {
  const r = run([
    call,
    ok("a"),
    ok("b"),
    talk("a"),
    started,
    { type: "phone_unlock", uid: "a" },
    { type: "unlock_result", ok: true },
    { type: "phone_over", uid: "a" },
    { type: "callend_result", ok: true },
  ]);
  assertEquals(orders(r.effects), [
    "call>a,b",
    "answer_call:CALLANSWER",
    "door_ask:CALLSTART",
    "talk begin>a",
    "over(answered elsewhere)>b",
    "door_ask:REMOTEOPENLOCK",
    "unlock success>a",
    "door_ask:CALLEND",
    "over success>a",
    "end",
  ]);
  assertEquals(endReasonOf(r.state), "phone_hung_up");
});

Deno.test("seed flow 五: door hangs up; the door's CALLEND is answered on over success or after 1 s", () => {
  const a = run([call, ok(), talk(), started, { type: "door_hangup" }, {
    type: "phone_over_success",
    uid: "a",
  }]);
  assertEquals(orders(a.effects).slice(-3), ["over(door hung up)>a", "reply_hangup", "end"]);
  const b = run([call, ok(), { type: "door_hangup" }, { type: "timer", name: "door_end_grace" }]);
  assertEquals(orders(b.effects).slice(-3), ["over(door hung up)>a,b", "reply_hangup", "end"]);
  assert(
    b.effects.some((e) => e.type === "timer_start" && e.name === "door_end_grace" && e.ms === 1000),
  );
});

Deno.test("no call ok within 3 s: LINEUSE; no phone online: LINEUSE at once", () => {
  const r = run([call, { type: "timer", name: "answer_deadline" }]);
  assertEquals(orders(r.effects), [
    "call>a,b",
    "answer_call:LINEUSE",
    "over(ring timeout)>a,b",
    "end",
  ]);
  assert(
    r.effects.some((e) =>
      e.type === "timer_start" && e.name === "answer_deadline" && e.ms === 3000
    ),
  );
  assertEquals(orders(startCall([], ctx).effects), ["answer_call:LINEUSE", "end"]);
});

Deno.test("ring and talk timeouts end the call on both sides", () => {
  const ring = run([call, ok(), { type: "timer", name: "ring" }, {
    type: "callend_result",
    ok: true,
  }]);
  assertEquals(orders(ring.effects).slice(-3), [
    "over(ring timeout)>a,b",
    "door_ask:CALLEND",
    "end",
  ]);
  assert(orders(ring.effects).includes("over(ring timeout)>a,b"));
  assertEquals(endReasonOf(ring.state), "ring_timeout");
  const talkT = run([call, ok(), talk(), started, { type: "timer", name: "talk" }, {
    type: "callend_result",
    ok: false,
  }]);
  assert(orders(talkT.effects).includes("over(talk timeout)>a"));
  assert(orders(talkT.effects).includes("door_ask:CALLEND"));
  assertEquals(endReasonOf(talkT.state), "talk_timeout");
});

Deno.test("first talk wins; a second talk gets busy; the loser gets over (answered elsewhere)", () => {
  const r = run([call, ok("a"), ok("b"), talk("a"), talk("b"), started]);
  assertEquals(orders(r.effects).slice(2), [
    "door_ask:CALLSTART",
    "error(busy)>b",
    "talk begin>a",
    "over(answered elsewhere)>b",
  ]);
});

Deno.test("door lost ends the call with over (door lost) and a last CALLEND", () => {
  const r = run([call, ok(), talk(), started, { type: "door_lost" }]);
  assertEquals(orders(r.effects).slice(-3), ["over(door lost)>a", "door_ask:CALLEND", "end"]);
  assert(r.effects.some((e) => e.type === "keepalive" && !e.on));
});

Deno.test("shutdown tells the phones over (gateway stopping), not door lost", () => {
  const talking = run([call, ok(), talk(), started, { type: "shutdown" }]);
  assertEquals(orders(talking.effects).slice(-2), ["over(gateway stopping)>a", "door_ask:CALLEND"]);
  const offered = run([call, { type: "shutdown" }]);
  assert(
    orders(offered.effects).includes("over(gateway stopping)>a,b"),
    orders(offered.effects).join(),
  );
});

Deno.test("phone disconnect: a ringing phone leaves the group; the talker's leaving ends the call", () => {
  const ringing = run([call, ok(), { type: "phone_left", uid: "b" }]);
  assertEquals(ringing.state.phase, "ringing");
  assertEquals(ringGroupOf(ringing.state), ["a"]);
  const last = run([call, ok(), { type: "phone_left", uid: "b" }, {
    type: "phone_left",
    uid: "a",
  }]);
  assertEquals(last.state.phase, "hanging_up");
  const talker = run([call, ok(), talk(), started, { type: "phone_left", uid: "a" }]);
  assertEquals([talker.state.phase, endReasonOf(talker.state)], ["hanging_up", "talker_left"]);
});

Deno.test("after the end, phone requests get not_in_call and nothing reaches the door", () => {
  const done = run([call, { type: "timer", name: "answer_deadline" }]).state;
  for (const type of ["phone_talk", "phone_unlock", "phone_over"] as const) {
    const t = transition(done, { type, uid: "a" }, ctx);
    assertEquals(orders([...t.effects]), [`error(not_in_call)>a`]);
  }
});

Deno.test("CALLSTART unanswered: door_timeout to the phone and the call keeps ringing", () => {
  const r = run([call, ok(), talk(), { type: "callstart_result", ok: false }]);
  assertEquals(r.state.phase, "ringing");
  assert(orders(r.effects).includes("error(door_timeout)>a"));
});

Deno.test("unlock: two phones asking at once share one REMOTEOPENLOCK and both hear the result", () => {
  const r = run([
    call,
    ok("a"),
    ok("b"),
    talk("a"),
    started,
    unlock("a"),
    unlock("b"),
    locked(false),
  ]);
  assertEquals(orders(r.effects).filter((o) => o.includes("REMOTEOPENLOCK")).length, 1);
  assert(orders(r.effects).includes("unlock fail(door_timeout)>a,b"));
  // While ringing, they share the CALLSTART of the retry too.
  const ringing = run([call, ok("a"), unlock("a"), unlock("b"), locked(false), unlock("b")]);
  assertEquals(orders(ringing.effects).slice(-2), [
    "door_ask:REMOTEOPENLOCK",
    "door_ask:CALLSTART",
  ]);
  const failed = run([startedOk(false)], ringing.state);
  assertEquals(orders(failed.effects), ["unlock fail(door_timeout)>a,b"]);
});

/** Media routing effects, as `video/audioFrom`. */
function routes(effects: readonly Effect[]): string[] {
  return effects.flatMap((e) =>
    e.type === "media" ? [`${e.video.join(",")}/${e.audioFrom ?? ""}`] : []
  );
}

Deno.test("unlock, the door silent before talk: CALLSTART for the unlock, REMOTEOPENLOCK again, success, quirk learned; nobody talks", () => {
  const r = run([call, ok("a"), ok("b"), unlock("a"), locked(false), started, locked(true)]);
  assertEquals(orders(r.effects), [
    "call>a,b",
    "answer_call:CALLANSWER",
    "door_ask:REMOTEOPENLOCK",
    "door_ask:CALLSTART",
    "door_ask:REMOTEOPENLOCK",
    "unlock success>a",
  ]);
  assertEquals(r.effects.filter((e) => e.type === "door_quirk"), [
    { type: "door_quirk", needsTalkForUnlock: true },
  ]);
  assert(r.effects.some((e) => e.type === "record_unlock" && e.ok && e.uids[0] === "a"));
  // No phone's audio goes to the door, every phone still sees the door; the call rings on.
  assert(routes(r.effects).every((x) => x.endsWith("/")), routes(r.effects).join(" "));
  assert(!r.effects.some((e) => e.type === "timer_cancel" && e.name === "ring"));
  assertEquals(r.state, {
    phase: "ringing",
    ringGroup: ["a", "b"],
    doorTalking: true,
    unlockWaiters: [],
    unlockStep: undefined,
  });
  assertEquals(talkerOf(r.state), undefined);
});

Deno.test("after the unlock's CALLSTART a talk begins at once, without a second CALLSTART", () => {
  const unlocked = run([call, ok("a"), ok("b"), unlock("a"), locked(false), started, locked(true)]);
  const r = run([talk("b")], unlocked.state);
  assertEquals(orders(r.effects), ["talk begin>b", "over(answered elsewhere)>a"]);
  assertEquals(routes(r.effects), ["b/b"]);
  assert(r.effects.some((e) => e.type === "timer_start" && e.name === "talk"));
  assert(r.effects.some((e) => e.type === "timer_cancel" && e.name === "ring"));
  assert(r.effects.some((e) => e.type === "record" && e.field === "talkAt" && e.uid === "b"));
  assertEquals([r.state.phase, talkerOf(r.state)], ["talking", "b"]);
  // A later unlock needs no talk: REMOTEOPENLOCK, and its silence is final.
  const again = run([unlock("a", true), locked(false)], unlocked.state);
  assertEquals(orders(again.effects), ["door_ask:REMOTEOPENLOCK", "unlock fail(door_timeout)>a"]);
});

Deno.test("unlock of a door known to need talk: CALLSTART first, then REMOTEOPENLOCK (nothing new learned)", () => {
  const r = run([call, ok("a"), unlock("a", true), started, locked(true)]);
  assertEquals(orders(r.effects).slice(2), [
    "door_ask:CALLSTART",
    "door_ask:REMOTEOPENLOCK",
    "unlock success>a",
  ]);
  assert(!r.effects.some((e) => e.type === "door_quirk"));
  assertEquals([r.state.phase, talkerOf(r.state)], ["ringing", undefined]);
  // talkFirst means nothing once the door talks.
  const talking = run([call, ok("a"), talk("a"), started, unlock("a", true)]);
  assertEquals(orders(talking.effects).at(-1), "door_ask:REMOTEOPENLOCK");
});

Deno.test("the unlock's CALLSTART unanswered: unlock fail, the call rings on and a talk sends CALLSTART", () => {
  const r = run([call, ok("a"), unlock("a"), locked(false), startedOk(false)]);
  assertEquals(orders(r.effects).slice(-1), ["unlock fail(door_timeout)>a"]);
  assert(r.state.phase === "ringing" && !r.state.doorTalking);
  assertEquals(orders(run([talk("a")], r.state).effects), ["door_ask:CALLSTART"]);
  // The second REMOTEOPENLOCK unanswered: unlock fail, nothing learned, the door talks on.
  const second = run([call, ok("a"), unlock("a"), locked(false), started, locked(false)]);
  assertEquals(orders(second.effects).at(-1), "unlock fail(door_timeout)>a");
  assert(!second.effects.some((e) => e.type === "door_quirk"));
  assert(second.state.phase === "ringing" && second.state.doorTalking);
});

Deno.test("a talk while the unlock's CALLSTART is in flight: one CALLSTART serves both", () => {
  const r = run([call, ok("a"), unlock("a", true), talk("b"), started, locked(true)]);
  assertEquals(orders(r.effects).slice(2), [
    "door_ask:CALLSTART",
    "talk begin>b",
    "over(answered elsewhere)>a",
    "door_ask:REMOTEOPENLOCK",
    "unlock success>a",
  ]);
  const failed = run([call, ok("a"), unlock("a", true), talk("b"), startedOk(false)]);
  assertEquals(orders(failed.effects).slice(3), [
    "error(door_timeout)>b",
    "unlock fail(door_timeout)>a",
  ]);
  assertEquals(failed.state.phase, "ringing");
});

Deno.test("unlock while connecting: it waits for the talk's CALLSTART instead of sending another", () => {
  const first = run([call, ok("a"), talk("a"), unlock("b", true), started, locked(true)]);
  assertEquals(orders(first.effects).slice(2), [
    "door_ask:CALLSTART",
    "talk begin>a",
    "over(answered elsewhere)>b",
    "door_ask:REMOTEOPENLOCK",
    "unlock success>b",
  ]);
  // Not known to need talk: REMOTEOPENLOCK at once; unanswered, it waits for the CALLSTART.
  const r = run([call, ok("a"), talk("a"), unlock("b"), locked(false), started, locked(true)]);
  assertEquals(orders(r.effects).slice(2), [
    "door_ask:CALLSTART",
    "door_ask:REMOTEOPENLOCK",
    "talk begin>a",
    "over(answered elsewhere)>b",
    "door_ask:REMOTEOPENLOCK",
    "unlock success>b",
  ]);
  assert(r.effects.some((e) => e.type === "door_quirk"));
});

Deno.test("a REMOTEOPENLOCK sent before the talk and unanswered after it began is sent again", () => {
  const r = run([call, ok("a"), unlock("a"), talk("a"), started, locked(false), locked(true)]);
  assertEquals(orders(r.effects).slice(2), [
    "door_ask:REMOTEOPENLOCK",
    "door_ask:CALLSTART",
    "talk begin>a",
    "over(answered elsewhere)>b",
    "door_ask:REMOTEOPENLOCK",
    "unlock success>a",
  ]);
  // Sent during the talk and unanswered: final, no CALLSTART.
  const talking = run([call, ok("a"), talk("a"), started, unlock("a"), locked(false)]);
  assertEquals(orders(talking.effects).slice(-2), [
    "door_ask:REMOTEOPENLOCK",
    "unlock fail(door_timeout)>a",
  ]);
});

Deno.test("unlock before any call ok that needs talk: the unlocking phone answers the door first", () => {
  const r = run([call, unlock("b", true)]);
  assertEquals(orders(r.effects).slice(1), ["answer_call:CALLANSWER", "door_ask:CALLSTART"]);
  assert(r.effects.some((e) => e.type === "record" && e.field === "answeredAt" && e.uid === "b"));
  assert(r.effects.some((e) => e.type === "keepalive" && e.on));
  assertEquals([r.state.phase, talkerOf(r.state)], ["ringing", undefined]);
  // The door silent to an early REMOTEOPENLOCK: the same, then REMOTEOPENLOCK again.
  const late = run([call, unlock("b"), locked(false), started, locked(true)]);
  assertEquals(orders(late.effects).slice(1), [
    "door_ask:REMOTEOPENLOCK",
    "answer_call:CALLANSWER",
    "door_ask:CALLSTART",
    "door_ask:REMOTEOPENLOCK",
    "unlock success>b",
  ]);
  // The phone that asked has left: nobody answers the door for it, the unlock fails.
  const gone = run([call, unlock("b"), { type: "phone_left", uid: "b" }, locked(false)]);
  assertEquals(orders(gone.effects).slice(-1), ["unlock fail(door_timeout)>b"]);
  assertEquals(gone.state.phase, "offered");
});

Deno.test("a call ending while the unlock waits for CALLSTART tells the waiters unlock fail", () => {
  const r = run([call, ok("a"), unlock("a", true), { type: "door_lost" }]);
  assert(orders(r.effects).includes("unlock fail(call ended)>a"));
  assert(r.effects.some((e) => e.type === "record_unlock" && !e.ok));
});

Deno.test("wake: no phone online but push sent: CALLANSWER at once, a woken phone is rung", () => {
  const t0 = transition(INITIAL, wakeCall, ctx);
  assertEquals(t0.state.phase, "ringing");
  assertEquals(t0.effects, [
    { type: "answer_call", op: "CALLANSWER" },
    { type: "keepalive", on: true },
    { type: "timer_start", name: "wake", ms: 20_000 },
    { type: "timer_start", name: "ring", ms: ctx.ringTimeoutMs },
  ]);
  const joined = transition(t0.state, { type: "phone_joined", uid: "a" }, ctx);
  assertEquals(joined.effects, [
    { type: "timer_cancel", name: "wake" },
    { type: "notify", to: ["a"], order: "call" },
    { type: "media", video: ["a"], audioFrom: undefined },
  ]);
  // The first call ok / talk proceeds as today: no second CALLANSWER, CALLSTART on talk.
  const okd = transition(joined.state, ok(), ctx);
  assert(!okd.effects.some((e) => e.type === "answer_call"));
  const talking = run([wakeCall, { type: "phone_joined", uid: "a" }, ok(), talk(), started]);
  assertEquals(talking.state.phase, "talking");
  assert(talking.effects.some((e) => e.type === "door_ask" && e.op === "CALLSTART"));
  // A second phone waking after the first joined is rung too, the wake timer left alone.
  const second = transition(joined.state, { type: "phone_joined", uid: "b" }, ctx);
  assertEquals(second.effects.filter((e) => e.type === "timer_cancel"), []);
});

Deno.test("wake: nobody wakes within the window: CALLEND, the call ends no_phone_woke", () => {
  const t = run([wakeCall, { type: "timer", name: "wake" }]);
  assertEquals(t.state.phase, "hanging_up");
  assert(t.effects.some((e) => e.type === "door_ask" && e.op === "CALLEND"));
  assert(!t.effects.some((e) => e.type === "notify"), "nobody to tell");
  const done = transition(t.state, { type: "callend_result", ok: true }, ctx);
  assertEquals(done.state, { phase: "ended", endReason: "no_phone_woke", answered: true });
  // After a phone joined, the wake timer (if it still fires) changes nothing.
  const late = run([wakeCall, { type: "phone_joined", uid: "a" }, { type: "timer", name: "wake" }]);
  assertEquals(late.state.phase, "ringing");
});

Deno.test("wake: the window never runs beyond the ring timeout; without wake, LINEUSE as before", () => {
  const short = transition(INITIAL, wakeCall, {
    ...ctx,
    ringTimeoutMs: 5000,
    wakeWindowMs: 20_000,
  });
  assert(short.effects.some((e) => e.type === "timer_start" && e.name === "wake" && e.ms === 5000));
  const none = transition(INITIAL, { type: "door_call", phones: [] }, ctx);
  assertEquals(none.state, { phase: "ended", endReason: "no_phone_online", answered: false });
  // Phones online: the seed's flow exactly, wake or not.
  assertEquals(
    transition(INITIAL, { ...wakeCall, phones: ["a"] }, ctx),
    transition(INITIAL, { type: "door_call", phones: ["a"] }, ctx),
  );
});
