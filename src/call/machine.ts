/**
 * The pure call state machine: `transition(state, event, ctx) → { state, effects }`.
 *
 * No timers, sockets or clocks: time arrives in `ctx.now` and as `timer` events; everything the
 * call does to the world is an {@linkcode Effect}. References: seed flows 一–六,
 * door-protocol.md §4, phone-protocol.md "Rules".
 *
 * The machine is a table, {@linkcode HANDLERS}: per phase, one handler per event type the phase
 * reacts to; {@linkcode UNHANDLED} says what the phase does with every other event.
 *
 * Unlock (seed 四) on doors that open only while talking: a REMOTEOPENLOCK the door leaves
 * unanswered before talk is followed by a CALLSTART for the unlock alone, then REMOTEOPENLOCK
 * again ({@linkcode needTalk}); `phone_unlock.talkFirst` (the shell remembers such doors) goes
 * straight to CALLSTART. No phone becomes the talker: the call rings on, the door talking, and
 * the first `talk` then begins at once (ringing → talking) without a second CALLSTART.
 *
 * @module
 */

import type {
  CallContext,
  CallEvent,
  CallOrder,
  CallState,
  ConnectingState,
  DoorHungUpState,
  Effect,
  EndReason,
  HangingUpState,
  LiveState,
  NewState,
  OfferedState,
  OverReason,
  Phase,
  RingingState,
  StateOf,
  TalkingState,
  TimerName,
  Transition,
  Uid,
} from "./types.ts";
import { INITIAL, isAnswered, participantsOf, ringGroupOf, talkerOf } from "./types.ts";

/** Every phase each phase may move to (checked by tests against every transition). */
export const LEGAL: Readonly<Record<Phase, readonly Phase[]>> = {
  // new → ringing: nobody online, push sent (`door_call.wake`): the door is answered at once.
  new: ["offered", "ringing", "ended"],
  offered: ["ringing", "connecting", "door_hung_up", "ended"],
  // ringing → talking: a `talk` while the door already talks for an unlock.
  ringing: ["connecting", "talking", "hanging_up", "door_hung_up", "ended"],
  connecting: ["talking", "ringing", "hanging_up", "door_hung_up", "ended"],
  talking: ["hanging_up", "door_hung_up", "ended"],
  hanging_up: ["ended"],
  door_hung_up: ["ended"],
  ended: [],
};

const ANSWER_DEADLINE_MS = 3000;
const DOOR_END_GRACE_MS = 1000;
const WAKE_WINDOW_MS = 20_000;

/** An event of one type. */
type EventOf<T extends CallEvent["type"]> = Extract<CallEvent, { readonly type: T }>;

/** What a phase does on one event type. */
type Handler<S extends CallState, T extends CallEvent["type"]> = (
  s: S,
  e: EventOf<T>,
  ctx: CallContext,
) => Transition;

/** One phase's handlers: one per event type it reacts to (the others: {@linkcode UNHANDLED}). */
type PhaseHandlers<P extends Phase> = {
  readonly [T in CallEvent["type"]]?: Handler<StateOf<P>, T>;
};

/** An answered live state: the door got CALLANSWER. */
type AnsweredState = RingingState | ConnectingState | TalkingState;

/** States with an unlock that may be in flight. */
type UnlockingState = Exclude<CallState, { readonly phase: "new" | "ended" }>;

/** Any state but the end. */
type NotEnded = Exclude<CallState, { readonly phase: "ended" }>;

function without(list: readonly Uid[], uid: Uid): Uid[] {
  return list.filter((u) => u !== uid);
}

function notify(
  to: readonly Uid[],
  order: CallOrder,
  extra: { reason?: string; code?: string; ref?: string } = {},
): Effect[] {
  return to.length ? [{ type: "notify", to, order, ...extra }] : [];
}

function over(to: readonly Uid[], reason: OverReason): Effect[] {
  return notify(to, "over", { reason });
}

function error(uid: Uid, code: string, ref: string): Effect[] {
  return notify([uid], "error", { code, ref });
}

const same = (s: CallState): Transition => ({ state: s, effects: [] });

/** The effects that close a call, whatever it holds: timers, keep-alive, media. */
function closing(s: NotEnded): Effect[] {
  return [
    { type: "timer_cancel", name: "answer_deadline" },
    { type: "timer_cancel", name: "ring" },
    { type: "timer_cancel", name: "talk" },
    { type: "timer_cancel", name: "door_end_grace" },
    { type: "timer_cancel", name: "wake" },
    ...(isAnswered(s) ? [{ type: "keepalive", on: false } as const] : []),
    { type: "media", video: [], audioFrom: undefined },
  ];
}

/** The end: `effects`, then whatever the call still holds is released, then `end`, last. */
function ended(s: NotEnded, reason: EndReason, effects: Effect[]): Transition {
  // An unlock still waiting for the door is answered and audited, never dropped.
  const waiters = s.phase === "new" ? [] : s.unlockWaiters;
  const unlocks: Effect[] = waiters.length
    ? [
      ...notify(waiters, "unlock fail", { reason: "call ended" }),
      { type: "record_unlock", uids: waiters, ok: false },
    ]
    : [];
  return {
    state: { phase: "ended", endReason: reason, answered: isAnswered(s) },
    effects: [...effects, ...unlocks, ...closing(s), { type: "end", reason }],
  };
}

/** Our CALLEND towards the door; the call waits for its reply in `hanging_up`. */
function hangUp(
  s: AnsweredState,
  reason: EndReason,
  hangupBy: Uid | undefined,
  told: Effect[],
): Transition {
  const next: HangingUpState = {
    phase: "hanging_up",
    endReason: reason,
    hangupBy,
    unlockWaiters: s.unlockWaiters,
    unlockStep: s.unlockStep,
    ringGroup: ringGroupOf(s),
    talker: talkerOf(s),
  };
  return {
    state: next,
    effects: [
      ...told,
      ...closing(s),
      { type: "door_ask", op: "CALLEND" },
    ],
  };
}

/** Ends a call that was never answered (no CALLANSWER): the pending CALL gets LINEUSE. */
function refuse(
  s: NewState | OfferedState,
  reason: EndReason,
  told: Effect[],
): Transition {
  return ended(s, reason, [{ type: "answer_call", op: "LINEUSE" }, ...told]);
}

/** Ends the call from our side in the right way for its phase (only offered is unanswered). */
function endFromGateway(
  s: LiveState,
  reason: EndReason,
  hangupBy: Uid | undefined,
  told: Effect[],
): Transition {
  return s.phase === "offered" ? refuse(s, reason, told) : hangUp(s, reason, hangupBy, told);
}

function doorHungUp(s: LiveState, ctx: CallContext): Transition {
  return {
    state: {
      phase: "door_hung_up",
      answered: isAnswered(s),
      unlockWaiters: s.unlockWaiters,
      unlockStep: s.unlockStep,
      ringGroup: ringGroupOf(s),
      talker: talkerOf(s),
    },
    effects: [
      ...over(participantsOf(s), "door hung up"),
      { type: "timer_cancel", name: "answer_deadline" },
      { type: "timer_cancel", name: "ring" },
      { type: "timer_cancel", name: "talk" },
      { type: "media", video: [], audioFrom: undefined },
      { type: "timer_start", name: "door_end_grace", ms: ctx.doorEndGraceMs ?? DOOR_END_GRACE_MS },
    ],
  };
}

function answerDoor(s: OfferedState, uid: Uid): { state: RingingState; effects: Effect[] } {
  const ringGroup = s.ringGroup.includes(uid) ? s.ringGroup : [...s.ringGroup, uid];
  return {
    state: {
      phase: "ringing",
      ringGroup,
      doorTalking: false,
      unlockWaiters: s.unlockWaiters,
      unlockStep: s.unlockStep,
    },
    effects: [
      { type: "answer_call", op: "CALLANSWER" },
      { type: "keepalive", on: true },
      { type: "timer_cancel", name: "answer_deadline" },
      { type: "record", field: "answeredAt", uid },
      { type: "media", video: ringGroup, audioFrom: undefined },
    ],
  };
}

/**
 * A phone pressed talk and the door does not talk yet: CALLSTART, unless an unlock's CALLSTART
 * is already in flight (its reply then begins the talk too).
 */
function startTalk(s: RingingState, uid: Uid): { state: ConnectingState; effects: Effect[] } {
  return {
    state: {
      phase: "connecting",
      ringGroup: s.ringGroup,
      talker: uid,
      unlockWaiters: s.unlockWaiters,
      unlockStep: s.unlockStep,
    },
    effects: awaitsTalk(s) ? [] : [{ type: "door_ask", op: "CALLSTART" }],
  };
}

/**
 * The door talks (it replied to CALLSTART): the talker alone is in the call, the others are told,
 * the talker's audio goes to the door. From connecting, or from ringing when the door already
 * talked for an unlock.
 */
function beginTalk(
  s: ConnectingState | RingingState,
  talker: Uid,
  ctx: CallContext,
): { state: TalkingState; effects: Effect[] } {
  return {
    state: { phase: "talking", talker, unlockWaiters: s.unlockWaiters, unlockStep: s.unlockStep },
    effects: [
      ...notify([talker], "talk begin"),
      ...over(without(s.ringGroup, talker), "answered elsewhere"),
      { type: "timer_cancel", name: "ring" },
      { type: "timer_start", name: "talk", ms: ctx.talkTimeoutMs },
      { type: "record", field: "talkAt", uid: talker },
      { type: "media", video: [talker], audioFrom: talker },
    ],
  };
}

/** A phone joins the ring group (and is `told`, when it is new to the call). */
function joinRingGroup<S extends OfferedState | RingingState>(
  s: S,
  uid: Uid,
  told: Effect[],
): Transition {
  if (s.ringGroup.includes(uid)) return same(s);
  const ringGroup = [...s.ringGroup, uid];
  const next: S = { ...s, ringGroup };
  return {
    state: next,
    effects: [...told, { type: "media", video: ringGroup, audioFrom: undefined }],
  };
}

/** A phone leaves the ring group; `whenEmpty` ends the call when it was the last one. */
function leaveRingGroup<S extends OfferedState | RingingState>(
  s: S,
  uid: Uid,
  whenEmpty: (next: S) => Transition,
): Transition {
  const ringGroup = without(s.ringGroup, uid);
  if (ringGroup.length === s.ringGroup.length) return same(s);
  const next: S = { ...s, ringGroup };
  return ringGroup.length
    ? { state: next, effects: [{ type: "media", video: ringGroup, audioFrom: undefined }] }
    : whenEmpty(next);
}

/** Whether the door talks: it replied to a CALLSTART (the talk's, or one sent for an unlock). */
function doorTalks(s: LiveState): boolean {
  return s.phase === "talking" || (s.phase === "ringing" && s.doorTalking);
}

/** Whether the unlock in flight waits for the door's CALLSTART reply (not a REMOTEOPENLOCK's). */
function awaitsTalk(s: UnlockingState): boolean {
  return s.unlockStep === "talk" || s.unlockStep === "talk_retry";
}

/** REMOTEOPENLOCK for the waiting phones, as unlock step `step`. */
function askLock(s: LiveState, step: "lock" | "lock_final" | "relock"): Transition {
  return {
    state: { ...s, unlockStep: step },
    effects: [{ type: "door_ask", op: "REMOTEOPENLOCK" }],
  };
}

/**
 * The unlock needs the door talking (`talk`: known beforehand; `talk_retry`: the door gave no
 * reply to REMOTEOPENLOCK). Talking already: REMOTEOPENLOCK at once. Connecting: the talk's
 * CALLSTART is in flight, its reply serves. Ringing: CALLSTART for the unlock, no phone becomes
 * the talker. Offered: a CALLSTART needs an answered CALL, so a waiting phone of the ring group
 * answers it first (as `talk` before `call ok` does); with none left the unlock fails.
 */
function needTalk(s: LiveState, step: "talk" | "talk_retry"): Transition {
  const lockNow = () => askLock(s, step === "talk" ? "lock_final" : "relock");
  switch (s.phase) {
    case "talking":
      return lockNow();
    case "connecting":
      return { state: { ...s, unlockStep: step }, effects: [] };
    case "ringing":
      if (s.doorTalking) return lockNow();
      return {
        state: { ...s, unlockStep: step },
        effects: [{ type: "door_ask", op: "CALLSTART" }],
      };
    case "offered": {
      const by = s.unlockWaiters.find((u) => s.ringGroup.includes(u));
      if (by === undefined) return unlockDone(s, false);
      return then(answerDoor(s, by), (r) => needTalk(r, step));
    }
  }
}

/**
 * A phone asks to unlock: the first one starts it, the others wait with it. The door talking:
 * REMOTEOPENLOCK, final. Not talking: REMOTEOPENLOCK (no reply → {@linkcode needTalk}), or,
 * when the shell knows the door needs it (`talkFirst`), CALLSTART first.
 */
function unlock(s: LiveState, e: EventOf<"phone_unlock">): Transition {
  if (s.unlockWaiters.length) {
    if (s.unlockWaiters.includes(e.uid)) return same(s);
    return { state: { ...s, unlockWaiters: [...s.unlockWaiters, e.uid] }, effects: [] };
  }
  const next = { ...s, unlockWaiters: [e.uid] };
  if (doorTalks(s)) return askLock(next, "lock_final");
  return e.talkFirst ? needTalk(next, "talk") : askLock(next, "lock");
}

/** The unlock is over: tell every phone that asked, and audit it. */
function unlockDone<S extends UnlockingState>(s: S, ok: boolean, extra: Effect[] = []): Transition {
  const next: S = { ...s, unlockWaiters: [], unlockStep: undefined };
  return {
    state: next,
    effects: [
      ...notify(
        s.unlockWaiters,
        ok ? "unlock success" : "unlock fail",
        ok ? {} : { reason: "door_timeout" },
      ),
      ...(s.unlockWaiters.length
        ? [{ type: "record_unlock", uids: s.unlockWaiters, ok } as const]
        : []),
      ...extra,
    ],
  };
}

/**
 * The door answered (or not) our REMOTEOPENLOCK: tell every phone that asked. A reply after the
 * door ignored this unlock's first REMOTEOPENLOCK and then talked teaches the door's quirk. (No
 * REMOTEOPENLOCK in flight, or one awaiting CALLSTART: nothing to answer.)
 */
function unlockResult(s: UnlockingState, e: EventOf<"unlock_result">): Transition {
  if (s.unlockWaiters.length === 0 || awaitsTalk(s)) return same(s);
  const learned = e.ok && s.unlockStep === "relock";
  return unlockDone(
    s,
    e.ok,
    learned ? [{ type: "door_quirk", needsTalkForUnlock: true }] : [],
  );
}

/** In a live phase, a REMOTEOPENLOCK sent before the door talked and left unanswered: talk first. */
function liveUnlockResult(s: LiveState, e: EventOf<"unlock_result">): Transition {
  if (!e.ok && s.unlockWaiters.length && s.unlockStep === "lock") return needTalk(s, "talk_retry");
  return unlockResult(s, e);
}

/** The door's CALLSTART reply (or its absence) for an unlock waiting on it: go on, or fail. */
function unlockAfterTalk(s: LiveState, ok: boolean): Transition {
  if (!awaitsTalk(s)) return same(s);
  if (!ok) return unlockDone(s, false);
  return askLock(s, s.unlockStep === "talk" ? "lock_final" : "relock");
}

/** Joins two steps: `second` runs on the state `first` left; the effects in order. */
function then<S extends CallState>(
  first: { readonly state: S; readonly effects: readonly Effect[] },
  second: (s: S) => Transition,
): Transition {
  const t = second(first.state);
  return { state: t.state, effects: [...first.effects, ...t.effects] };
}

/** A `timer` handler from one handler per timer name; other timers are ignored. */
function onTimers<S extends CallState>(
  table: { readonly [N in TimerName]?: (s: S, ctx: CallContext) => Transition },
): Handler<S, "timer"> {
  return (s, e, ctx) => table[e.name]?.(s, ctx) ?? same(s);
}

/**
 * The door called a room whose phones all sleep and push went out: answer the door at once (it
 * shows ringing, its keep-alive runs) and ring an empty group for the wake window.
 */
function ringForWake(ctx: CallContext): Transition {
  return {
    state: {
      phase: "ringing",
      ringGroup: [],
      doorTalking: false,
      unlockWaiters: [],
      unlockStep: undefined,
    },
    effects: [
      { type: "answer_call", op: "CALLANSWER" },
      { type: "keepalive", on: true },
      {
        type: "timer_start",
        name: "wake",
        ms: Math.min(ctx.wakeWindowMs ?? WAKE_WINDOW_MS, ctx.ringTimeoutMs),
      },
      { type: "timer_start", name: "ring", ms: ctx.ringTimeoutMs },
    ],
  };
}

/** A phone joins a ringing call; the first one to join a call waiting for a wake ends the wait. */
function joinRinging(s: RingingState, uid: Uid, told: Effect[]): Transition {
  const woke: Effect[] = s.ringGroup.length === 0 ? [{ type: "timer_cancel", name: "wake" }] : [];
  return joinRingGroup(s, uid, [...woke, ...told]);
}

/** `ring` timer in a phase before talking: nobody took the call in time. */
function ringTimeout(s: LiveState): Transition {
  return endFromGateway(s, "ring_timeout", undefined, over(participantsOf(s), "ring timeout"));
}

/** Events handled the same way in every live phase. */
const LIVE = {
  door_hangup: (s, _e, ctx) => doorHungUp(s, ctx),
  // Tell the phones; a last CALLEND in case only the door's replies were lost.
  door_lost: (s) =>
    ended(s, "door_lost", [
      ...over(participantsOf(s), "door lost"),
      ...(isAnswered(s)
        ? [{ type: "door_ask", op: "CALLEND" } as const]
        : [{ type: "answer_call", op: "LINEUSE" } as const]),
    ]),
  door_recall: (s) => ended(s, "door_recalled", over(participantsOf(s), "door hung up")),
  // An unknown door's call gives way to a known door's: the unknown door is told at once.
  door_superseded: (s) =>
    ended(s, "door_superseded", [
      ...over(participantsOf(s), "door hung up"),
      ...(isAnswered(s)
        ? [{ type: "door_ask", op: "CALLEND" } as const]
        : [{ type: "answer_call", op: "LINEUSE" } as const]),
    ]),
  shutdown: (s, e) =>
    endFromGateway(
      s,
      e.reason ?? "shutdown",
      undefined,
      over(participantsOf(s), e.reason === undefined ? "gateway stopping" : "door hung up"),
    ),
  unlock_result: liveUnlockResult,
  phone_unlock: unlock,
} as const satisfies { readonly [T in CallEvent["type"]]?: Handler<LiveState, T> };

/** The phone whose `over` we complete gets `over success` when the call ends. */
function overSuccess(s: HangingUpState): Effect[] {
  return s.hangupBy ? notify([s.hangupBy], "over success") : [];
}

/** Our CALLEND is over (answered, unanswered, or moot): the call ends with its reason. */
function finishHangUp(s: HangingUpState): Transition {
  return ended(s, s.endReason, overSuccess(s));
}

/** The door's CALLEND gets its REPLY (seed 五): the call ends. */
function replyToDoorHangUp(s: DoorHungUpState): Transition {
  return ended(s, "door_hung_up", [{ type: "reply_hangup" }]);
}

/** Talk while another phone holds the call: `busy` (the talker's own repeat is ignored). */
function talkWhileTaken(s: ConnectingState | TalkingState, e: EventOf<"phone_talk">): Transition {
  return e.uid === s.talker ? same(s) : { state: s, effects: error(e.uid, "busy", "talk") };
}

/**
 * The machine: per phase, what each event it reacts to does (live phases start from the shared
 * {@linkcode LIVE} handlers, then add their own for other event types). Events a phase has no
 * handler for: {@linkcode UNHANDLED}.
 */
const HANDLERS: { readonly [P in Phase]: PhaseHandlers<P> } = {
  new: {
    door_call: (s, e, ctx) => {
      if (e.phones.length === 0) {
        return e.wake ? ringForWake(ctx) : refuse(s, "no_phone_online", []);
      }
      return {
        state: {
          phase: "offered",
          ringGroup: [...e.phones],
          unlockWaiters: [],
          unlockStep: undefined,
        },
        effects: [
          ...notify(e.phones, "call"),
          // Phones may latch their media socket as soon as they know the call.
          { type: "media", video: [...e.phones], audioFrom: undefined },
          {
            type: "timer_start",
            name: "answer_deadline",
            ms: ctx.answerDeadlineMs ?? ANSWER_DEADLINE_MS,
          },
          { type: "timer_start", name: "ring", ms: ctx.ringTimeoutMs },
        ],
      };
    },
  },

  offered: {
    ...LIVE,
    phone_call_ok: (s, e) => answerDoor(s, e.uid),
    phone_talk: (s, e) => {
      // Talk before call ok: answer the door and start talking at once.
      const a = answerDoor(s, e.uid);
      const t = startTalk(a.state, e.uid);
      return { state: t.state, effects: [...a.effects, ...t.effects] };
    },
    phone_over: (s, e) =>
      refuse(s, "declined", [
        ...notify([e.uid], "over success"),
        ...over(without(s.ringGroup, e.uid), "answered elsewhere"),
      ]),
    phone_joined: (s, e) => joinRingGroup(s, e.uid, notify([e.uid], "call")),
    phone_left: (s, e) => leaveRingGroup(s, e.uid, (next) => refuse(next, "phones_left", [])),
    timer: onTimers<OfferedState>({
      answer_deadline: (s) => refuse(s, "no_answer", over(s.ringGroup, "ring timeout")),
      ring: ringTimeout,
    }),
  },

  ringing: {
    ...LIVE,
    phone_call_ok: (s, e) => joinRinging(s, e.uid, []),
    phone_joined: (s, e) => joinRinging(s, e.uid, notify([e.uid], "call")),
    // The door already talks for an unlock: the talk begins at once, no second CALLSTART.
    phone_talk: (s, e, ctx) => s.doorTalking ? beginTalk(s, e.uid, ctx) : startTalk(s, e.uid),
    // The reply to a CALLSTART sent for an unlock: the door talks, REMOTEOPENLOCK follows.
    callstart_result: (s, e) =>
      unlockAfterTalk(awaitsTalk(s) && e.ok ? { ...s, doorTalking: true } : s, e.ok),
    phone_over: (s, e) =>
      hangUp(s, "declined", e.uid, over(without(s.ringGroup, e.uid), "answered elsewhere")),
    phone_left: (s, e) =>
      leaveRingGroup(s, e.uid, (next) => hangUp(next, "phones_left", undefined, [])),
    timer: onTimers<RingingState>({
      ring: ringTimeout,
      // Waiting for a sleeping phone, and none connected in time: the door is told CALLEND.
      wake: (s) => s.ringGroup.length === 0 ? hangUp(s, "no_phone_woke", undefined, []) : same(s),
    }),
  },

  connecting: {
    ...LIVE,
    callstart_result: (s, e, ctx) => {
      if (!e.ok) {
        // The door never answered CALLSTART: tell the phone, keep ringing so it can retry (an
        // unlock that waited for this CALLSTART fails with it).
        const back: RingingState = {
          phase: "ringing",
          ringGroup: s.ringGroup,
          doorTalking: false,
          unlockWaiters: s.unlockWaiters,
          unlockStep: s.unlockStep,
        };
        return then(
          { state: back, effects: error(s.talker, "door_timeout", "talk") },
          (r) => unlockAfterTalk(r, false),
        );
      }
      // An unlock that waited for this CALLSTART sends its REMOTEOPENLOCK now.
      return then(beginTalk(s, s.talker, ctx), (t) => unlockAfterTalk(t, true));
    },
    phone_talk: talkWhileTaken,
    // A late `call ok` joins the group silently (it hears the talk's outcome with the others).
    phone_call_ok: (s, e) =>
      s.ringGroup.includes(e.uid)
        ? same(s)
        : { state: { ...s, ringGroup: [...s.ringGroup, e.uid] }, effects: [] },
    phone_over: (s, e) =>
      hangUp(
        s,
        e.uid === s.talker ? "phone_hung_up" : "declined",
        e.uid,
        over(without(participantsOf(s), e.uid), "answered elsewhere"),
      ),
    phone_left: (s, e) => {
      if (e.uid === s.talker) {
        return hangUp(
          s,
          "talker_left",
          undefined,
          over(without(participantsOf(s), e.uid), "answered elsewhere"),
        );
      }
      return { state: { ...s, ringGroup: without(s.ringGroup, e.uid) }, effects: [] };
    },
    timer: onTimers<ConnectingState>({ ring: ringTimeout }),
  },

  talking: {
    ...LIVE,
    // Only the talker is still in the call (seed 六: the uid must be in the flow); the
    // others were told "answered elsewhere" and cannot hang up someone else's talk.
    phone_over: (s, e) =>
      e.uid === s.talker
        ? hangUp(s, "phone_hung_up", e.uid, [])
        : { state: s, effects: error(e.uid, "not_in_call", "over") },
    phone_left: (s, e) => e.uid === s.talker ? hangUp(s, "talker_left", undefined, []) : same(s),
    phone_talk: talkWhileTaken,
    timer: onTimers<TalkingState>({
      talk: (s) => hangUp(s, "talk_timeout", undefined, over(participantsOf(s), "talk timeout")),
    }),
  },

  hanging_up: {
    callend_result: finishHangUp,
    // Our CALLEND and the door's crossed: answer the door and finish.
    door_hangup: (s) => ended(s, s.endReason, [{ type: "reply_hangup" }, ...overSuccess(s)]),
    unlock_result: unlockResult,
    // Nobody will answer our CALLEND any more (or the door started over): finish now.
    shutdown: finishHangUp,
    door_lost: finishHangUp,
    door_recall: finishHangUp,
    door_superseded: finishHangUp,
  },

  door_hung_up: {
    phone_over_success: replyToDoorHangUp,
    timer: onTimers<DoorHungUpState>({ door_end_grace: replyToDoorHangUp }),
    phone_over: (s, e) =>
      ended(s, "door_hung_up", [{ type: "reply_hangup" }, ...notify([e.uid], "over success")]),
    shutdown: replyToDoorHangUp,
    door_lost: replyToDoorHangUp,
    door_recall: replyToDoorHangUp,
    door_superseded: replyToDoorHangUp,
    unlock_result: unlockResult,
  },

  ended: {},
};

/**
 * What a phase does with an event it has no handler for. `ignore`: nothing (same state, no
 * effects). `not_in_call`: the call is ending or over, so a phone's `talk`, `unlock` or `over`
 * gets `error not_in_call`; every other event is ignored.
 */
const UNHANDLED = {
  new: "ignore",
  offered: "ignore",
  ringing: "ignore",
  connecting: "ignore",
  talking: "ignore",
  hanging_up: "not_in_call",
  door_hung_up: "not_in_call",
  ended: "not_in_call",
} as const satisfies Record<Phase, "ignore" | "not_in_call">;

/** Phone requests to a call that is no longer live get `not_in_call`; everything else is ignored. */
function notInCall(s: CallState, e: CallEvent): Transition {
  if (e.type === "phone_talk" || e.type === "phone_unlock" || e.type === "phone_over") {
    return { state: s, effects: error(e.uid, "not_in_call", e.type.slice("phone_".length)) };
  }
  return same(s);
}

/**
 * Moves one call by one event.
 *
 * @example
 * ```ts
 * let t = transition(INITIAL, { type: "door_call", phones: ["u1"] }, ctx);
 * t = transition(t.state, { type: "phone_call_ok", uid: "u1" }, ctx); // → CALLANSWER
 * ```
 */
export function transition(s: CallState, e: CallEvent, ctx: CallContext): Transition {
  // The table's type gives each handler the state of its own phase and the event of its own
  // type; TypeScript cannot follow that correlation through two indexes, hence the one cast.
  const handler = HANDLERS[s.phase][e.type] as Handler<CallState, CallEvent["type"]> | undefined;
  if (handler) return handler(s, e, ctx);
  return UNHANDLED[s.phase] === "not_in_call" ? notInCall(s, e) : same(s);
}

/**
 * Starts a call: the door's CALL with the room's online phones; `wake`: none is online, but push
 * went out to sleeping ones.
 */
export function startCall(
  phones: readonly string[],
  ctx: CallContext,
  wake = false,
): Transition {
  return transition(INITIAL, { type: "door_call", phones, ...(wake ? { wake } : {}) }, ctx);
}
