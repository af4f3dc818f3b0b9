/**
 * The call state machine's data: state, events and effects (discriminated unions).
 *
 * ```
 *            door CALL
 *   new ───────────────▶ offered ──call ok──▶ ringing ──talk──▶ connecting ──CALLSTART reply──▶ talking
 *                          │  no call ok 3 s     │  ▲ CALLSTART     │                              │ ▲
 *                          │  / decline / no     │  └── failed ─────┘                              │ │
 *                          │  phone: LINEUSE     ├──talk, the door already talking for an unlock───┼─┘
 *   new ──door CALL, no phone online, push sent (wake)──▶ ringing (empty group; CALLANSWER)
 *                                 nobody joined within the wake window: CALLEND, no_phone_woke
 *                          │                     │ over / ring timeout / talker left / talk timeout│
 *                          ▼                     ▼                                                 ▼
 *                        ended ◀──CALLEND reply── hanging_up ◀─────────────────────────────────────┘
 *                          ▲
 *                          └── over success or 1 s ── door_hung_up ◀── door CALLEND (any live phase)
 * door lost, door re-CALL, superseded by a known door, shutdown: any live phase → ended
 * ```
 *
 * Unlock on a door that opens only while talking ({@linkcode UnlockStep}): when the door gives
 * no reply to a REMOTEOPENLOCK sent before talk (or the shell knows the door needs it:
 * `phone_unlock.talkFirst`), the call sends CALLSTART for the unlock alone, then REMOTEOPENLOCK.
 * No phone becomes the talker; the call rings on with the door talking (`RingingState.doorTalking`),
 * and a later `talk` goes straight to talking (ringing → talking), with no second CALLSTART.
 *
 * The state has one shape per phase ({@linkcode CallState}), holding only what that phase
 * means; the shell reads it through {@linkcode ringGroupOf}, {@linkcode talkerOf},
 * {@linkcode isAnswered}, {@linkcode participantsOf} and {@linkcode endReasonOf}.
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

/**
 * Why a call ended, from the gateway's side: the `end` effect's reason, stored in the call
 * record (`endReason`), logged, and the `reason` label of `calls_ended_total`. One per call.
 * Not what a phone is told ({@linkcode OverReason}), nor the door simulator's end reasons.
 */
export const END_REASON = {
  /** No phone of the room was online when the door called: LINEUSE at once. */
  no_phone_online: "no_phone_online",
  /**
   * No phone of the room was online, push was sent to its sleeping phones, and none connected
   * within the wake window: CALLEND ("missed: no phone woke").
   */
  no_phone_woke: "no_phone_woke",
  /** No phone said `call ok` within the answer deadline (3 s): LINEUSE. */
  no_answer: "no_answer",
  /** A phone other than the talker hung up (`over`) before the talk began. */
  declined: "declined",
  /** The phone that pressed talk hung up (`over`). */
  phone_hung_up: "phone_hung_up",
  /** Every phone of the ring group went offline before anyone pressed talk. */
  phones_left: "phones_left",
  /** The phone that pressed talk went offline. */
  talker_left: "talker_left",
  /** The door hung up (its CALLEND). */
  door_hung_up: "door_hung_up",
  /** Nobody's talk began before the ring timeout. */
  ring_timeout: "ring_timeout",
  /** The talk lasted the talk timeout. */
  talk_timeout: "talk_timeout",
  /** The door stopped answering the keep-alive (CALLCONFIRM). */
  door_lost: "door_lost",
  /** The same door called the room again (it restarted): its new call replaces this one. */
  door_recalled: "door_recalled",
  /**
   * The call came from a door unknown to the registry, and a known door called the room: the
   * known door's call replaces this one (a fake door cannot keep a room busy).
   */
  door_superseded: "door_superseded",
  /** The gateway shut down. */
  shutdown: "shutdown",
  /** A manager hung the call up from the console. */
  admin_hangup: "admin_hangup",
} as const;

/** Why a call ended (a key of {@linkcode END_REASON}). */
export type EndReason = keyof typeof END_REASON;

/**
 * The `reason` of the gateway's `over` order (phone-protocol.md row 9): what a phone is told,
 * in the protocol's words, when the call ends for it. Not the call's {@linkcode EndReason}: one
 * call's end tells different phones different things (a decline: `answered elsewhere` to the
 * others). The phone protocol's parsers (src/phone/messages.ts) take it from here.
 */
export const OVER_REASON = {
  /** The door hung up, or called again (it restarted). */
  DOOR_HUNG_UP: "door hung up",
  /** Nobody said `call ok` within 3 s, or nobody's talk began before the ring timeout. */
  RING_TIMEOUT: "ring timeout",
  /** The talk lasted the talk timeout. */
  TALK_TIMEOUT: "talk timeout",
  /** The door stopped answering the keep-alive. */
  DOOR_LOST: "door lost",
  /** The gateway shuts down (older phone apps may not know this reason: they see an `over`). */
  GATEWAY_STOPPING: "gateway stopping",
  /** Another phone took the call, or ended it before the talk began. */
  ANSWERED_ELSEWHERE: "answered elsewhere",
} as const;

/** A reason of a gateway `over` (a value of {@linkcode OVER_REASON}). */
export type OverReason = typeof OVER_REASON[keyof typeof OVER_REASON];

/**
 * What an unlock in flight waits for (a state's `unlockStep`, set exactly while it has
 * `unlockWaiters`).
 */
export const UNLOCK_STEP = {
  /** REMOTEOPENLOCK sent while the door does not talk: no reply → CALLSTART, then again. */
  lock: "lock",
  /** REMOTEOPENLOCK whose reply, or silence, is the answer (the door talked when it was sent). */
  lock_final: "lock_final",
  /** The door's CALLSTART reply (ours for the unlock, or the talk's in flight); then `lock_final`. */
  talk: "talk",
  /** As `talk`, after the door gave no reply to this unlock's REMOTEOPENLOCK; then `relock`. */
  talk_retry: "talk_retry",
  /** REMOTEOPENLOCK again, the door talking: the answer; a reply shows the door needs talk. */
  relock: "relock",
} as const;

/** A step of an unlock in flight (a key of {@linkcode UNLOCK_STEP}). */
export type UnlockStep = keyof typeof UNLOCK_STEP;

/** Timers a call runs. */
export type TimerName = "answer_deadline" | "ring" | "talk" | "door_end_grace" | "wake";

/** A phone's uid (phone-protocol.md `uid`). */
export type Uid = string;

/** The door's CALL has not arrived yet. */
export interface NewState {
  /** The phase tag. */
  readonly phase: "new";
}

/** `call` went to the ring group; no phone said `call ok` yet, the door's CALL is unanswered. */
export interface OfferedState {
  /** The phase tag. */
  readonly phase: "offered";
  /** Phones being rung: each got `call`, none has left since. */
  readonly ringGroup: readonly Uid[];
  /** Phones waiting for the result of the unlock in flight (empty: none in flight). */
  readonly unlockWaiters: readonly Uid[];
  /** What that unlock waits for; undefined exactly when `unlockWaiters` is empty. */
  readonly unlockStep: UnlockStep | undefined;
}

/**
 * A phone said `call ok`: the door got CALLANSWER, the keep-alive runs, the group still rings.
 * Also a call to a room whose phones all sleep (`door_call.wake`): answered at once, its ring
 * group empty until a woken phone connects (`phone_joined`) or the wake window ends.
 */
export interface RingingState {
  /** The phase tag. */
  readonly phase: "ringing";
  /** Phones being rung (who got `call`, plus who said `call ok`), none has left since. */
  readonly ringGroup: readonly Uid[];
  /**
   * The door replied to a CALLSTART sent for an unlock: it talks, though no phone is the talker
   * (no phone audio goes to it). A `talk` then begins at once, with no second CALLSTART.
   */
  readonly doorTalking: boolean;
  /** Phones waiting for the result of the unlock in flight (empty: none in flight). */
  readonly unlockWaiters: readonly Uid[];
  /** What that unlock waits for; undefined exactly when `unlockWaiters` is empty. */
  readonly unlockStep: UnlockStep | undefined;
}

/** A phone pressed `talk`: our CALLSTART waits for the door's REPLY; the group still rings. */
export interface ConnectingState {
  /** The phase tag. */
  readonly phase: "connecting";
  /** Phones being rung; the talker is usually, not always, one of them. */
  readonly ringGroup: readonly Uid[];
  /** The phone that pressed `talk` first (the others get `busy`). */
  readonly talker: Uid;
  /** Phones waiting for the result of the unlock in flight (empty: none in flight). */
  readonly unlockWaiters: readonly Uid[];
  /** What that unlock waits for; undefined exactly when `unlockWaiters` is empty. */
  readonly unlockStep: UnlockStep | undefined;
}

/** The door confirmed CALLSTART: the talker alone is in the call, the others were told. */
export interface TalkingState {
  /** The phase tag. */
  readonly phase: "talking";
  /** The phone in the call. */
  readonly talker: Uid;
  /** Phones waiting for the result of the unlock in flight (empty: none in flight). */
  readonly unlockWaiters: readonly Uid[];
  /** What that unlock waits for; undefined exactly when `unlockWaiters` is empty. */
  readonly unlockStep: UnlockStep | undefined;
}

/**
 * We hung up: our CALLEND to the door waits for its REPLY. Always after CALLANSWER.
 *
 * `ringGroup` and `talker` say who was in the call when it began to end: the machine tells
 * them nothing more, the manager still reports them (and lets them enable video) until the end.
 */
export interface HangingUpState {
  /** The phase tag. */
  readonly phase: "hanging_up";
  /** Why we hung up. */
  readonly endReason: EndReason;
  /** The phone whose `over` we are completing: it gets `over success` at the end. */
  readonly hangupBy: Uid | undefined;
  /** The ring group as it was (from talking: the talker alone). */
  readonly ringGroup: readonly Uid[];
  /** The talker, if there was one. */
  readonly talker: Uid | undefined;
  /** Phones still waiting for the unlock begun before (told `unlock fail` at the end). */
  readonly unlockWaiters: readonly Uid[];
  /** What that unlock waits for; undefined exactly when `unlockWaiters` is empty. */
  readonly unlockStep: UnlockStep | undefined;
}

/**
 * The door hung up: its CALLEND waits for our REPLY (first `over success`, or 1 s). The end
 * reason is `door_hung_up`; `ringGroup` and `talker` as in {@linkcode HangingUpState}.
 */
export interface DoorHungUpState {
  /** The phase tag. */
  readonly phase: "door_hung_up";
  /** Whether the door's CALL had been answered CALLANSWER (so the keep-alive is to stop). */
  readonly answered: boolean;
  /** The ring group as it was (from talking: the talker alone). */
  readonly ringGroup: readonly Uid[];
  /** The talker, if there was one. */
  readonly talker: Uid | undefined;
  /** Phones still waiting for the unlock begun before (told `unlock fail` at the end). */
  readonly unlockWaiters: readonly Uid[];
  /** What that unlock waits for; undefined exactly when `unlockWaiters` is empty. */
  readonly unlockStep: UnlockStep | undefined;
}

/** The call is over: nothing held, nothing more sent to the door. */
export interface EndedState {
  /** The phase tag. */
  readonly phase: "ended";
  /** Why the call ended (the `end` effect's reason). */
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
  | {
    readonly type: "door_call";
    /** The room's phones online (not in do-not-disturb). */
    readonly phones: readonly string[];
    /**
     * No phone is online, but push can wake one (the shell sent it): answer the door at once and
     * wait the wake window for a phone to connect. Ignored when `phones` is not empty.
     * @default false
     */
    readonly wake?: boolean;
  }
  | { readonly type: "door_hangup" }
  | { readonly type: "door_lost" }
  | { readonly type: "door_recall" }
  | { readonly type: "door_superseded" }
  | { readonly type: "callstart_result"; readonly ok: boolean }
  | { readonly type: "unlock_result"; readonly ok: boolean }
  | { readonly type: "callend_result"; readonly ok: boolean }
  | { readonly type: "phone_call_ok"; readonly uid: string }
  | { readonly type: "phone_talk"; readonly uid: string }
  | {
    readonly type: "phone_unlock";
    readonly uid: string;
    /** The shell knows this door opens only while talking: CALLSTART first. @default false */
    readonly talkFirst?: boolean;
  }
  | { readonly type: "phone_over"; readonly uid: string }
  | { readonly type: "phone_over_success"; readonly uid: string }
  | { readonly type: "phone_joined"; readonly uid: string }
  | { readonly type: "phone_left"; readonly uid: string }
  | { readonly type: "timer"; readonly name: TimerName }
  /** The gateway ends the call: it shuts down, or a manager hung up from the console. */
  | { readonly type: "shutdown"; readonly reason?: "admin_hangup" };

/** The event type tags (for exhaustive tests). */
export const EVENT_TYPES = [
  "door_call",
  "door_hangup",
  "door_lost",
  "door_recall",
  "door_superseded",
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
  /** Learned: the door answered REMOTEOPENLOCK only after a CALLSTART (remember it per door). */
  | { readonly type: "door_quirk"; readonly needsTalkForUnlock: true }
  /** The call is over: release everything it holds. Always the last effect. */
  | { readonly type: "end"; readonly reason: EndReason };

/** Settings and time of one transition. */
export interface CallContext {
  /** The shell's clock (ms). */
  readonly now: number;
  /** How long the phones ring before the call ends with `ring_timeout`. */
  readonly ringTimeoutMs: number;
  /** How long a talk may last before the call ends with `talk_timeout`. */
  readonly talkTimeoutMs: number;
  /** Silence after which a ringing call with no `call ok` is answered LINEUSE. @default 3000 */
  readonly answerDeadlineMs?: number;
  /** Wait for `over success` before replying to the door's CALLEND. @default 1000 */
  readonly doorEndGraceMs?: number;
  /**
   * How long a call to a room whose phones all sleep waits for one to connect (`wake` of
   * `door_call`); never beyond `ringTimeoutMs`. @default 20000
   */
  readonly wakeWindowMs?: number;
}

/** Result of a transition. */
export interface Transition {
  /** The call's next state. */
  readonly state: CallState;
  /** What the shell does, in order. */
  readonly effects: readonly Effect[];
}
