/**
 * The pure call state machine: `transition(state, event, ctx) → { state, effects }`.
 *
 * No timers, sockets or clocks: time arrives in `ctx.now` and as `timer` events; everything the
 * call does to the world is an {@linkcode Effect}. References: seed flows 一–六,
 * door-protocol.md §4, phone-protocol.md "Rules".
 *
 * @module
 */

import type {
  CallContext,
  CallEvent,
  CallOrder,
  CallState,
  Effect,
  EndReason,
  OverReason,
  Phase,
  Transition,
} from "./types.ts";
import { INITIAL, LIVE_PHASES } from "./types.ts";

/** Every phase each phase may move to (checked by tests against every transition). */
export const LEGAL: Readonly<Record<Phase, readonly Phase[]>> = {
  new: ["offered", "ended"],
  offered: ["ringing", "connecting", "door_hung_up", "ended"],
  ringing: ["connecting", "hanging_up", "door_hung_up", "ended"],
  connecting: ["talking", "ringing", "hanging_up", "door_hung_up", "ended"],
  talking: ["hanging_up", "door_hung_up", "ended"],
  hanging_up: ["ended"],
  door_hung_up: ["ended"],
  ended: [],
};

const ANSWER_DEADLINE_MS = 3000;
const DOOR_END_GRACE_MS = 1000;

/** Phones taking part: the ring group, plus the talker. */
function participants(s: CallState): string[] {
  return s.talker && !s.ringing.includes(s.talker) ? [...s.ringing, s.talker] : [...s.ringing];
}

function without(list: readonly string[], uid: string): string[] {
  return list.filter((u) => u !== uid);
}

function notify(
  to: readonly string[],
  order: CallOrder,
  extra: { reason?: string; code?: string; ref?: string } = {},
): Effect[] {
  return to.length ? [{ type: "notify", to, order, ...extra }] : [];
}

function over(to: readonly string[], reason: OverReason): Effect[] {
  return notify(to, "over", { reason });
}

function error(uid: string, code: string, ref: string): Effect[] {
  return notify([uid], "error", { code, ref });
}

/** The effects that close a call, whatever it holds: timers, keep-alive, media. */
function closing(s: CallState): Effect[] {
  return [
    { type: "timer_cancel", name: "answer_deadline" },
    { type: "timer_cancel", name: "ring" },
    { type: "timer_cancel", name: "talk" },
    { type: "timer_cancel", name: "door_end_grace" },
    ...(s.answered ? [{ type: "keepalive", on: false } as const] : []),
    { type: "media", video: [], audioFrom: undefined },
  ];
}

function ended(s: CallState, reason: EndReason, effects: Effect[]): Transition {
  // An unlock still waiting for the door is answered and audited, never dropped.
  const unlocks: Effect[] = s.unlockWaiters.length
    ? [
      ...notify(s.unlockWaiters, "unlock fail", { reason: "call ended" }),
      { type: "record_unlock", uids: s.unlockWaiters, ok: false },
    ]
    : [];
  effects = [...effects, ...unlocks];
  return {
    state: {
      ...s,
      phase: "ended",
      endReason: s.endReason ?? reason,
      ringing: [],
      unlockWaiters: [],
    },
    effects: [...effects, ...closing(s), { type: "end", reason: s.endReason ?? reason }],
  };
}

/** Our CALLEND towards the door; the call waits for its reply in `hanging_up`. */
function hangUp(
  s: CallState,
  reason: EndReason,
  hangupBy: string | undefined,
  told: Effect[],
): Transition {
  const next: CallState = { ...s, phase: "hanging_up", endReason: reason, hangupBy };
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
function refuse(s: CallState, reason: EndReason, told: Effect[]): Transition {
  return ended(s, reason, [{ type: "answer_call", op: "LINEUSE" }, ...told]);
}

/** Ends the call from our side in the right way for its phase. */
function endFromGateway(
  s: CallState,
  reason: EndReason,
  hangupBy: string | undefined,
  told: Effect[],
): Transition {
  return s.answered ? hangUp(s, reason, hangupBy, told) : refuse(s, reason, told);
}

function doorHungUp(s: CallState, ctx: CallContext): Transition {
  return {
    state: { ...s, phase: "door_hung_up", endReason: "door_hung_up", hangupBy: undefined },
    effects: [
      ...over(participants(s), "door hung up"),
      { type: "timer_cancel", name: "answer_deadline" },
      { type: "timer_cancel", name: "ring" },
      { type: "timer_cancel", name: "talk" },
      { type: "media", video: [], audioFrom: undefined },
      { type: "timer_start", name: "door_end_grace", ms: ctx.doorEndGraceMs ?? DOOR_END_GRACE_MS },
    ],
  };
}

function answerDoor(s: CallState, uid: string): { state: CallState; effects: Effect[] } {
  const ringing = s.ringing.includes(uid) ? s.ringing : [...s.ringing, uid];
  return {
    state: { ...s, phase: "ringing", answered: true, ringing },
    effects: [
      { type: "answer_call", op: "CALLANSWER" },
      { type: "keepalive", on: true },
      { type: "timer_cancel", name: "answer_deadline" },
      { type: "record", field: "answeredAt", uid },
      { type: "media", video: ringing, audioFrom: undefined },
    ],
  };
}

function startTalk(s: CallState, uid: string): { state: CallState; effects: Effect[] } {
  return {
    state: { ...s, phase: "connecting", talker: uid },
    effects: [{ type: "door_ask", op: "CALLSTART" }],
  };
}

function unlock(s: CallState, uid: string): Transition {
  const waiters = s.unlockWaiters.includes(uid) ? s.unlockWaiters : [...s.unlockWaiters, uid];
  const first = s.unlockWaiters.length === 0;
  return {
    state: { ...s, unlockWaiters: waiters },
    effects: first ? [{ type: "door_ask", op: "REMOTEOPENLOCK" }] : [],
  };
}

/** The door answered (or not) our REMOTEOPENLOCK: tell every phone that asked. */
function unlockResult(s: CallState, ok: boolean): Transition {
  return {
    state: { ...s, unlockWaiters: [] },
    effects: [
      ...notify(
        s.unlockWaiters,
        ok ? "unlock success" : "unlock fail",
        ok ? {} : { reason: "door_timeout" },
      ),
      ...(s.unlockWaiters.length
        ? [{ type: "record_unlock", uids: s.unlockWaiters, ok } as const]
        : []),
    ],
  };
}

const same = (s: CallState): Transition => ({ state: s, effects: [] });

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
  const phase = s.phase;
  if (phase === "ended") return notInCall(s, e);

  // Events handled the same way in every live phase.
  if (LIVE_PHASES.has(phase)) {
    switch (e.type) {
      case "door_hangup":
        return doorHungUp(s, ctx);
      case "door_lost":
        // Tell the phones; a last CALLEND in case only the door's replies were lost.
        return ended(s, "door_lost", [
          ...over(participants(s), "door lost"),
          ...(s.answered
            ? [{ type: "door_ask", op: "CALLEND" } as const]
            : [{ type: "answer_call", op: "LINEUSE" } as const]),
        ]);
      case "door_recall":
        return ended(s, "door_recalled", over(participants(s), "door hung up"));
      case "shutdown":
        return endFromGateway(s, "shutdown", undefined, over(participants(s), "door lost"));
      case "unlock_result":
        return unlockResult(s, e.ok);
      case "phone_unlock":
        return unlock(s, e.uid);
      case "timer":
        if (e.name === "ring" && phase !== "talking") {
          return endFromGateway(
            s,
            "ring_timeout",
            undefined,
            over(participants(s), "ring timeout"),
          );
        }
        if (e.name === "talk" && phase === "talking") {
          return hangUp(s, "talk_timeout", undefined, over(participants(s), "talk timeout"));
        }
        break;
    }
  }

  switch (phase) {
    case "new":
      if (e.type !== "door_call") return same(s);
      if (e.phones.length === 0) return refuse(s, "no_phone_online", []);
      return {
        state: { ...s, phase: "offered", ringing: [...e.phones] },
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

    case "offered":
      switch (e.type) {
        case "phone_call_ok":
          return answerDoor(s, e.uid);
        case "phone_talk": {
          // Talk before call ok: answer the door and start talking at once.
          const a = answerDoor(s, e.uid);
          const t = startTalk(a.state, e.uid);
          return { state: t.state, effects: [...a.effects, ...t.effects] };
        }
        case "phone_over":
          return refuse(s, "declined", [
            ...notify([e.uid], "over success"),
            ...over(without(s.ringing, e.uid), "answered elsewhere"),
          ]);
        case "phone_joined": {
          if (s.ringing.includes(e.uid)) return same(s);
          const ringing = [...s.ringing, e.uid];
          return {
            state: { ...s, ringing },
            effects: [...notify([e.uid], "call"), {
              type: "media",
              video: ringing,
              audioFrom: undefined,
            }],
          };
        }
        case "phone_left": {
          const ringing = without(s.ringing, e.uid);
          if (ringing.length === s.ringing.length) return same(s);
          const next = { ...s, ringing };
          return ringing.length
            ? { state: next, effects: [{ type: "media", video: ringing, audioFrom: undefined }] }
            : refuse(next, "phones_left", []);
        }
        case "timer":
          if (e.name === "answer_deadline") {
            return refuse(s, "no_answer", over(s.ringing, "ring timeout"));
          }
          return same(s);
        default:
          return same(s);
      }

    case "ringing":
      switch (e.type) {
        case "phone_call_ok":
        case "phone_joined": {
          if (s.ringing.includes(e.uid)) return same(s);
          const ringing = [...s.ringing, e.uid];
          return {
            state: { ...s, ringing },
            effects: [
              ...(e.type === "phone_joined" ? notify([e.uid], "call") : []),
              { type: "media", video: ringing, audioFrom: undefined },
            ],
          };
        }
        case "phone_talk":
          return { ...startTalk(s, e.uid) };
        case "phone_over":
          return hangUp(
            s,
            "declined",
            e.uid,
            over(without(s.ringing, e.uid), "answered elsewhere"),
          );
        case "phone_left": {
          const ringing = without(s.ringing, e.uid);
          if (ringing.length === s.ringing.length) return same(s);
          const next = { ...s, ringing };
          return ringing.length
            ? { state: next, effects: [{ type: "media", video: ringing, audioFrom: undefined }] }
            : hangUp(next, "phones_left", undefined, []);
        }
        default:
          return same(s);
      }
      break;

    case "connecting":
      switch (e.type) {
        case "callstart_result": {
          if (!e.ok) {
            // The door never answered CALLSTART: tell the phone, keep ringing so it can retry.
            return {
              state: { ...s, phase: "ringing", talker: undefined },
              effects: error(s.talker!, "door_timeout", "talk"),
            };
          }
          const talker = s.talker!;
          return {
            state: { ...s, phase: "talking", ringing: [talker] },
            effects: [
              ...notify([talker], "talk begin"),
              ...over(without(s.ringing, talker), "answered elsewhere"),
              { type: "timer_cancel", name: "ring" },
              { type: "timer_start", name: "talk", ms: ctx.talkTimeoutMs },
              { type: "record", field: "talkAt", uid: talker },
              { type: "media", video: [talker], audioFrom: talker },
            ],
          };
        }
        case "phone_talk":
          return e.uid === s.talker ? same(s) : { state: s, effects: error(e.uid, "busy", "talk") };
        case "phone_call_ok":
          return s.ringing.includes(e.uid)
            ? same(s)
            : { state: { ...s, ringing: [...s.ringing, e.uid] }, effects: [] };
        case "phone_over":
          return hangUp(
            s,
            e.uid === s.talker ? "phone_hung_up" : "declined",
            e.uid,
            over(without(participants(s), e.uid), "answered elsewhere"),
          );
        case "phone_left": {
          if (e.uid === s.talker) {
            return hangUp(
              s,
              "talker_left",
              undefined,
              over(without(participants(s), e.uid), "answered elsewhere"),
            );
          }
          return { state: { ...s, ringing: without(s.ringing, e.uid) }, effects: [] };
        }
        default:
          return same(s);
      }

    case "talking":
      switch (e.type) {
        case "phone_over":
          // Only the talker is still in the call (seed 六: the uid must be in the flow); the
          // others were told "answered elsewhere" and cannot hang up someone else's talk.
          return e.uid === s.talker
            ? hangUp(s, "phone_hung_up", e.uid, [])
            : { state: s, effects: error(e.uid, "not_in_call", "over") };
        case "phone_left":
          return e.uid === s.talker ? hangUp(s, "talker_left", undefined, []) : same(s);
        case "phone_talk":
          return e.uid === s.talker ? same(s) : { state: s, effects: error(e.uid, "busy", "talk") };
        default:
          return same(s);
      }

    case "hanging_up":
      switch (e.type) {
        case "callend_result":
          return ended(
            s,
            s.endReason ?? "phone_hung_up",
            s.hangupBy ? notify([s.hangupBy], "over success") : [],
          );
        case "door_hangup":
          // Our CALLEND and the door's crossed: answer the door and finish.
          return ended(s, s.endReason ?? "door_hung_up", [
            { type: "reply_hangup" },
            ...(s.hangupBy ? notify([s.hangupBy], "over success") : []),
          ]);
        case "unlock_result":
          return unlockResult(s, e.ok);
        case "shutdown":
        case "door_lost":
        case "door_recall":
          // Nobody will answer our CALLEND any more (or the door started over): finish now.
          return ended(
            s,
            s.endReason ?? "shutdown",
            s.hangupBy ? notify([s.hangupBy], "over success") : [],
          );
        default:
          return notInCall(s, e);
      }
      break;

    case "door_hung_up":
      switch (e.type) {
        case "phone_over_success":
        case "timer":
          if (e.type === "timer" && e.name !== "door_end_grace") return same(s);
          return ended(s, "door_hung_up", [{ type: "reply_hangup" }]);
        case "phone_over":
          return ended(s, "door_hung_up", [
            { type: "reply_hangup" },
            ...notify([e.uid], "over success"),
          ]);
        case "shutdown":
        case "door_lost":
        case "door_recall":
          return ended(s, "door_hung_up", [{ type: "reply_hangup" }]);
        case "unlock_result":
          return unlockResult(s, e.ok);
        default:
          return notInCall(s, e);
      }
  }
  return same(s);
}

/** Phone requests to a call that is no longer live get `not_in_call`; everything else is ignored. */
function notInCall(s: CallState, e: CallEvent): Transition {
  if (e.type === "phone_talk" || e.type === "phone_unlock" || e.type === "phone_over") {
    return { state: s, effects: error(e.uid, "not_in_call", e.type.slice("phone_".length)) };
  }
  return same(s);
}

/** Starts a call: the door's CALL with the room's online phones. */
export function startCall(phones: readonly string[], ctx: CallContext): Transition {
  return transition(INITIAL, { type: "door_call", phones }, ctx);
}
