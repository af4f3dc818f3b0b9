/**
 * The call state machine's data: state, events and effects (discriminated unions).
 *
 * ```
 *            door CALL
 *   new ───────────────▶ offered ──call ok──▶ ringing ──talk──▶ connecting ──CALLSTART reply──▶ talking
 *                          │  no call ok 3 s     │  ▲ CALLSTART     │                              │
 *                          │  / decline / no     │  └── failed ─────┘                              │
 *                          │  phone: LINEUSE     │ over / ring timeout / talker left / talk timeout│
 *                          ▼                     ▼                                                 ▼
 *                        ended ◀──CALLEND reply── hanging_up ◀─────────────────────────────────────┘
 *                          ▲
 *                          └── over success or 1 s ── door_hung_up ◀── door CALLEND (any live phase)
 * door lost, door re-CALL, shutdown: any live phase → ended
 * ```
 *
 * @module
 */

/** Phases of a call. */
export const PHASE = {
  new: "new",
  offered: "offered",
  ringing: "ringing",
  connecting: "connecting",
  talking: "talking",
  hanging_up: "hanging_up",
  door_hung_up: "door_hung_up",
  ended: "ended",
} as const;

/** A phase name. */
export type Phase = keyof typeof PHASE;

/** Phases in which the room is in a call with the door (unlock and over allowed). */
export const LIVE_PHASES: ReadonlySet<Phase> = new Set([
  "offered",
  "ringing",
  "connecting",
  "talking",
]);

/** Why a call ended (call records, logs). */
export const END_REASON = {
  no_phone_online: "no_phone_online",
  no_answer: "no_answer",
  declined: "declined",
  phone_hung_up: "phone_hung_up",
  phones_left: "phones_left",
  talker_left: "talker_left",
  door_hung_up: "door_hung_up",
  ring_timeout: "ring_timeout",
  talk_timeout: "talk_timeout",
  door_lost: "door_lost",
  door_recalled: "door_recalled",
  shutdown: "shutdown",
} as const;

/** An end reason. */
export type EndReason = keyof typeof END_REASON;

/** `reason` of the gateway's `over` order (phone-protocol.md #9). */
export type OverReason =
  | "door hung up"
  | "ring timeout"
  | "talk timeout"
  | "door lost"
  | "answered elsewhere";

/** Timers a call runs. */
export type TimerName = "answer_deadline" | "ring" | "talk" | "door_end_grace";

/** One call's state. Immutable: transitions return a new object. */
export interface CallState {
  readonly phase: Phase;
  /** Phones (uids) in the ring group. */
  readonly ringing: readonly string[];
  /** The phone that pressed talk first (connecting, talking). */
  readonly talker: string | undefined;
  /** The phone whose `over` we are completing (gets `over success`). */
  readonly hangupBy: string | undefined;
  /** Phones waiting for the result of a REMOTEOPENLOCK in flight. */
  readonly unlockWaiters: readonly string[];
  readonly endReason: EndReason | undefined;
  /** Set once CALLANSWER went out (keep-alive running). */
  readonly answered: boolean;
}

/** The state before the door's CALL. */
export const INITIAL: CallState = {
  phase: "new",
  ringing: [],
  talker: undefined,
  hangupBy: undefined,
  unlockWaiters: [],
  endReason: undefined,
  answered: false,
};

/** The phones in the call's ring group (the talker alone once talking). */
export function ringGroupOf(s: CallState): readonly string[] {
  return s.ringing;
}

/** The phone that pressed talk first, while it holds the call. */
export function talkerOf(s: CallState): string | undefined {
  return s.talker;
}

/** Whether the door's CALL was answered CALLANSWER (keep-alive running or run). */
export function isAnswered(s: CallState): boolean {
  return s.answered;
}

/** Phones taking part: the ring group, plus the talker. */
export function participantsOf(s: CallState): readonly string[] {
  return s.talker && !s.ringing.includes(s.talker) ? [...s.ringing, s.talker] : s.ringing;
}

/** Why the call ends, once it is ending or ended. */
export function endReasonOf(s: CallState): EndReason | undefined {
  return s.endReason;
}

/** Inputs of the machine. Phone events come after the shell checked login and binding. */
export type CallEvent =
  | { readonly type: "door_call"; readonly phones: readonly string[] }
  | { readonly type: "door_hangup" }
  | { readonly type: "door_lost" }
  | { readonly type: "door_recall" }
  | { readonly type: "callstart_result"; readonly ok: boolean }
  | { readonly type: "unlock_result"; readonly ok: boolean }
  | { readonly type: "callend_result"; readonly ok: boolean }
  | { readonly type: "phone_call_ok"; readonly uid: string }
  | { readonly type: "phone_talk"; readonly uid: string }
  | { readonly type: "phone_unlock"; readonly uid: string }
  | { readonly type: "phone_over"; readonly uid: string }
  | { readonly type: "phone_over_success"; readonly uid: string }
  | { readonly type: "phone_joined"; readonly uid: string }
  | { readonly type: "phone_left"; readonly uid: string }
  | { readonly type: "timer"; readonly name: TimerName }
  | { readonly type: "shutdown" };

/** The event type tags (for exhaustive tests). */
export const EVENT_TYPES = [
  "door_call",
  "door_hangup",
  "door_lost",
  "door_recall",
  "callstart_result",
  "unlock_result",
  "callend_result",
  "phone_call_ok",
  "phone_talk",
  "phone_unlock",
  "phone_over",
  "phone_over_success",
  "phone_joined",
  "phone_left",
  "timer",
  "shutdown",
] as const satisfies readonly CallEvent["type"][];

/** Orders the gateway sends to phones about a call. */
export type CallOrder =
  | "call"
  | "talk begin"
  | "unlock success"
  | "unlock fail"
  | "over"
  | "over success"
  | "error";

/** Outputs of the machine, run by the shell in order. */
export type Effect =
  /** Answer the door's CALL ASK (and its retransmissions) with LINEUSE or CALLANSWER. */
  | { readonly type: "answer_call"; readonly op: "LINEUSE" | "CALLANSWER" }
  /** Our ASK with retransmission; its result comes back as `*_result`. */
  | { readonly type: "door_ask"; readonly op: "CALLSTART" | "REMOTEOPENLOCK" | "CALLEND" }
  /** REPLY to the door's CALLEND ASK. */
  | { readonly type: "reply_hangup" }
  | { readonly type: "keepalive"; readonly on: boolean }
  | {
    readonly type: "notify";
    readonly to: readonly string[];
    readonly order: CallOrder;
    readonly reason?: string;
    readonly code?: string;
    readonly ref?: string;
  }
  | { readonly type: "timer_start"; readonly name: TimerName; readonly ms: number }
  | { readonly type: "timer_cancel"; readonly name: TimerName }
  /** Media routing: who gets door media, whose audio goes to the door. */
  | {
    readonly type: "media";
    readonly video: readonly string[];
    readonly audioFrom: string | undefined;
  }
  | { readonly type: "record"; readonly field: "answeredAt" | "talkAt"; readonly uid: string }
  | { readonly type: "record_unlock"; readonly uids: readonly string[]; readonly ok: boolean }
  /** The call is over: release everything it holds. Always the last effect. */
  | { readonly type: "end"; readonly reason: EndReason };

/** Settings and time of one transition. */
export interface CallContext {
  readonly now: number;
  readonly ringTimeoutMs: number;
  readonly talkTimeoutMs: number;
  /** Silence after which a ringing call with no `call ok` is answered LINEUSE. @default 3000 */
  readonly answerDeadlineMs?: number;
  /** Wait for `over success` before replying to the door's CALLEND. @default 1000 */
  readonly doorEndGraceMs?: number;
}

/** Result of a transition. */
export interface Transition {
  readonly state: CallState;
  readonly effects: readonly Effect[];
}
