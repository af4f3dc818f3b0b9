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

/** A phone's uid (phone-protocol.md `uid`). */
export type Uid = string;

/** The door's CALL has not arrived yet. */
export interface NewState {
  readonly phase: "new";
}

/** Fields of every phase in which the room is in a call with the door (unlock allowed). */
interface InCall {
  /** Phones waiting for the result of the REMOTEOPENLOCK in flight (empty: none in flight). */
  readonly unlockWaiters: readonly Uid[];
}

/** `call` went to the ring group; no phone said `call ok` yet, the door's CALL is unanswered. */
export interface OfferedState extends InCall {
  readonly phase: "offered";
  /** Phones being rung: each got `call`, none has left since. */
  readonly ringGroup: readonly Uid[];
}

/** A phone said `call ok`: the door got CALLANSWER, the keep-alive runs, the group still rings. */
export interface RingingState extends InCall {
  readonly phase: "ringing";
  /** Phones being rung (who got `call`, plus who said `call ok`), none has left since. */
  readonly ringGroup: readonly Uid[];
}

/** A phone pressed `talk`: our CALLSTART waits for the door's REPLY; the group still rings. */
export interface ConnectingState extends InCall {
  readonly phase: "connecting";
  /** Phones being rung; the talker is usually, not always, one of them. */
  readonly ringGroup: readonly Uid[];
  /** The phone that pressed `talk` first (the others get `busy`). */
  readonly talker: Uid;
}

/** The door confirmed CALLSTART: the talker alone is in the call, the others were told. */
export interface TalkingState extends InCall {
  readonly phase: "talking";
  /** The phone in the call. */
  readonly talker: Uid;
}

/**
 * Who was in the call when it began to end. The machine tells them nothing more; the manager
 * still reports them (and lets them enable video) until the call is ended.
 */
interface WasInCall {
  /** The ring group as it was (in talking: the talker alone). */
  readonly ringGroup: readonly Uid[];
  /** The talker, if there was one. */
  readonly talker: Uid | undefined;
}

/** We hung up (our CALLEND to the door waits for its REPLY). Always after CALLANSWER. */
export interface HangingUpState extends InCall, WasInCall {
  readonly phase: "hanging_up";
  readonly endReason: EndReason;
  /** The phone whose `over` we are completing: it gets `over success` at the end. */
  readonly hangupBy: Uid | undefined;
}

/** The door hung up (its CALLEND waits for our REPLY: first `over success` or 1 s). */
export interface DoorHungUpState extends InCall, WasInCall {
  readonly phase: "door_hung_up";
  /** Whether the door's CALL had been answered CALLANSWER (so the keep-alive is to stop). */
  readonly answered: boolean;
}

/** The call is over: nothing held, nothing more sent to the door. */
export interface EndedState {
  readonly phase: "ended";
  readonly endReason: EndReason;
  /** Whether the door's CALL was answered CALLANSWER at some point. */
  readonly answered: boolean;
}

/** One call's state, one shape per phase. Immutable: transitions return a new object. */
export type CallState =
  | NewState
  | OfferedState
  | RingingState
  | ConnectingState
  | TalkingState
  | HangingUpState
  | DoorHungUpState
  | EndedState;

/** The state of one phase. */
export type StateOf<P extends Phase> = Extract<CallState, { readonly phase: P }>;

/** The states of {@linkcode LIVE_PHASES}: the room is in a call with the door. */
export type LiveState = OfferedState | RingingState | ConnectingState | TalkingState;

/** Whether the call is in a live phase (see {@linkcode LIVE_PHASES}). */
export function isLive(s: CallState): s is LiveState {
  return LIVE_PHASES.has(s.phase);
}

/** The state before the door's CALL. */
export const INITIAL: NewState = { phase: "new" };

const NOBODY: readonly Uid[] = [];

/**
 * The phones in the call's ring group: the phones being rung, the talker alone once talking,
 * and, once the call is ending, the group as it was; nobody before the CALL or after the end.
 */
export function ringGroupOf(s: CallState): readonly Uid[] {
  switch (s.phase) {
    case "talking":
      return [s.talker];
    case "offered":
    case "ringing":
    case "connecting":
    case "hanging_up":
    case "door_hung_up":
      return s.ringGroup;
    case "new":
    case "ended":
      return NOBODY;
  }
}

/** The phone that pressed talk first, from connecting on, while the call is not ended. */
export function talkerOf(s: CallState): Uid | undefined {
  return "talker" in s ? s.talker : undefined;
}

/** Whether the door's CALL was answered CALLANSWER (keep-alive running, or run and stopped). */
export function isAnswered(s: CallState): boolean {
  switch (s.phase) {
    case "new":
    case "offered":
      return false;
    case "ringing":
    case "connecting":
    case "talking":
    case "hanging_up":
      return true;
    case "door_hung_up":
    case "ended":
      return s.answered;
  }
}

/** Phones taking part: the ring group, plus the talker. */
export function participantsOf(s: CallState): readonly Uid[] {
  const group = ringGroupOf(s);
  const talker = talkerOf(s);
  return talker !== undefined && !group.includes(talker) ? [...group, talker] : group;
}

/** Why the call ends, once it is ending or ended (the door's hang-up: `door_hung_up`). */
export function endReasonOf(s: CallState): EndReason | undefined {
  switch (s.phase) {
    case "hanging_up":
    case "ended":
      return s.endReason;
    case "door_hung_up":
      return "door_hung_up";
    default:
      return undefined;
  }
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
