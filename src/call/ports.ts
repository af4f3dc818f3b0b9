/**
 * What the call layer needs from the rest of the gateway: types only, owned here because the call
 * manager is their user. Adapters (`door/`, `phone/`, `media/`, `store/`) implement them and
 * import these types; they never import `manager.ts` or each other's implementations.
 *
 * - {@linkcode DoorPort}: semantic door operations (answer, start, unlock, end); the bytes are
 *   built in `src/door/`.
 * - {@linkcode PhoneNotifier}: who is online in a room, and typed notices to phones; the phone
 *   layer turns codes into text and orders into JSON.
 * - {@linkcode MediaPort}: who gets door media and whose audio goes to the door.
 * - {@linkcode DoorQuirks}: what the gateway learned about a door's firmware (unlock needs talk).
 * - Records are not a port: they subscribe to the gateway's events (`src/events/`).
 *
 * @module
 */

import type { CallParties } from "../protocol/types.ts";
import type { OverReason, Phase } from "./types.ts";

export type { OverReason };

/** A phone's uid. */
export type Uid = string;

/** A room's 11-digit key (the digits after the letter of `S…` / `Y…`). */
export type RoomKey = string;

/** A UDP peer. */
export interface Peer {
  readonly hostname: string;
  readonly port: number;
}

/**
 * A door's CALL as the call layer sees it. Made by the door layer, which keeps the request's
 * bytes and retransmission state; the call layer passes it back to {@linkcode DoorPort}.
 */
export interface DoorCall {
  /** Where the door speaks from. */
  readonly door: Peer;
  /** The door's address in display form, e.g. `M00010100`. */
  readonly doorAddress: string;
  /** The called address in display form, e.g. `S00010108090`. */
  readonly roomAddress: string;
  /** The called room, or undefined when the callee is not a room. */
  readonly roomKey: RoomKey | undefined;
  /** Caller and callee with the gateway's IP as the callee's (media headers need them). */
  readonly parties: CallParties;
}

/** The door's CALLEND ASK for a call, as the call layer sees it. */
export interface DoorHangup {
  readonly door: Peer;
  readonly doorAddress: string;
  readonly roomKey: RoomKey | undefined;
}

/** What the door side reports: a new CALL or a new CALLEND (never a retransmission). */
export type DoorEvent =
  | { readonly type: "call"; readonly call: DoorCall }
  | { readonly type: "hangup"; readonly hangup: DoorHangup };

/** How the gateway answers a door's CALL. */
export type CallAnswer = "CALLANSWER" | "LINEUSE";

/** The door side as the call manager needs it (implemented by `DoorTransport`). */
export interface DoorPort {
  /** Answers the CALL (and every retransmitted copy of it). */
  answer(call: DoorCall, answer: CallAnswer): void;
  /** CALLSTART (talk); resolves true on the door's reply, false after the retries. */
  start(call: DoorCall): Promise<boolean>;
  /** REMOTEOPENLOCK; resolves true on the door's reply. */
  unlock(call: DoorCall): Promise<boolean>;
  /** Our CALLEND; resolves true on the door's reply. */
  end(call: DoorCall): Promise<boolean>;
  /** Replies to the door's CALLEND (and its copies). */
  confirmHangup(hangup: DoorHangup): void;
  /** Starts the CALLCONFIRM keep-alive; `onLost` fires once when the door falls silent. */
  keepAlive(call: DoorCall, onLost: () => void): () => void;
  /** The call is over: the same CALL bytes from this door start a new call from now on. */
  release(call: DoorCall): void;
}

/**
 * What the gateway has learned about doors' firmware, by door address (display form). The call
 * manager reads it for every unlock and writes what a call teaches; the door registry may
 * persist it. Implementations bound what they keep.
 */
export interface DoorQuirks {
  /** Whether the door opens its lock only while talking (it ignores REMOTEOPENLOCK before). */
  needsTalkForUnlock(doorAddress: string): boolean;
  /** Remembers that the door opens its lock only while talking. */
  setNeedsTalkForUnlock(doorAddress: string): void;
}

/** Error codes the call layer gives phones (a subset of the phone protocol's). */
export type CallErrorCode = "door_timeout" | "not_in_call";

/** A notice to a phone about a call; the phone layer adds uid, room and community. */
export type CallNotice =
  & { readonly doorAddress: string; readonly callId: string }
  & (
    | {
      readonly order: "call";
      /** This phone's media key in this call (each phone of a call has its own). */
      readonly mediaKey: string;
    }
    | { readonly order: "talk begin" | "over success" }
    | { readonly order: "unlock success" }
    | { readonly order: "unlock fail"; readonly reason?: string }
    | { readonly order: "over"; readonly reason: OverReason }
    | { readonly order: "error"; readonly code: CallErrorCode; readonly ref: string }
  );

/** The phone side as the call manager needs it (implemented by `PhoneHub`). */
export interface PhoneNotifier {
  /** Sends to `uid` in the context of room `roomKey`; false when it is not connected. */
  send(uid: Uid, roomKey: RoomKey, notice: CallNotice): boolean;
  /** Uids of the room's online phones. */
  online(roomKey: RoomKey): Uid[];
}

/**
 * Phones of the room connected to other gateways of the community (`--cluster`; implemented by
 * `cluster/router.ts`). The manager rings them with the local ones: a notice for a uid that is
 * not connected here goes there, and their requests come back as {@linkcode CallControl}
 * requests, checked the same way. A remote phone that cannot be reached is reported gone
 * (`phoneLeft`), so a call never waits on a cut link.
 */
export interface RemotePhones {
  /** Uids of the room's phones online on other gateways. */
  online(roomKey: RoomKey): Uid[];
  /** Sends to a remote `uid` about `call`; false when no gateway has it. */
  send(uid: Uid, roomKey: RoomKey, notice: CallNotice, call: LiveCallInfo): boolean;
}

/** Read-only facts about a live call. */
export interface LiveCallInfo {
  readonly callId: string;
  /**
   * The media key the call gave phone `uid` (in its `call` notice), or undefined when it gave
   * that uid none. Each phone has its own: a key latches media only for its own uid.
   */
  mediaKeyOf(uid: Uid): string | undefined;
  readonly roomKey: RoomKey;
  readonly door: Peer;
  readonly parties: CallParties;
  readonly doorAddress: string;
}

/** The media side as the call manager needs it (implemented by `MediaRelay`). */
export interface MediaPort {
  /** A call exists (the door's header form is learned from its media). */
  open(call: LiveCallInfo): void;
  /** Who receives door media, whose audio goes to the door. */
  route(callId: string, video: readonly Uid[], audioFrom: Uid | undefined): void;
  /** The call is over: stop forwarding at once. */
  close(callId: string): void;
}

/** Phone request orders the manager handles. */
export type PhoneRequest = "call ok" | "talk" | "unlock" | "over" | "over success";

/** Result of a phone request: accepted, or the phone protocol's error code. */
export type RequestResult =
  | { readonly ok: true; readonly callId: string }
  | { readonly ok: false; readonly code: "not_in_call" };

/** A live call as the phone layer may ask about it. */
export interface CallView extends LiveCallInfo {
  readonly phase: Phase;
  /** Phones that are rung (ring group) or taking part. */
  readonly ringing: readonly Uid[];
  readonly talker: Uid | undefined;
}

/** What the phone layer asks of the call layer (implemented by `CallManager`). */
export interface CallControl {
  /** A phone's request about its room's call (after login and binding checks). */
  phoneRequest(
    uid: Uid,
    roomKey: RoomKey,
    order: PhoneRequest,
    doorAddress?: string,
    callId?: string,
  ): RequestResult;
  /** The live call of a room. */
  byRoom(roomKey: RoomKey): CallView | undefined;
  /** A phone logged in to a room. */
  phoneJoined(uid: Uid, roomKey: RoomKey): void;
  /** A phone left these rooms (closed, silent, replaced, or unbound). */
  phoneLeft(uid: Uid, roomKeys: Iterable<RoomKey>): void;
}
