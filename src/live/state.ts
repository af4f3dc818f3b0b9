/**
 * The live-state query port: a snapshot of what the gateway knows now — doors heard, phones
 * online, calls in progress. The console and `/healthz` read it; nothing else reaches into the
 * call manager's, hub's or relay's maps.
 *
 * @module
 */

/** A door as the gateway has heard it. */
export interface DoorSnapshot {
  /** Display form, e.g. `M00010100`. */
  readonly address: string;
  readonly ip: string;
  /** How the gateway trusts it: learned on first contact, or pinned (fixed ADDR=IP). */
  readonly mode: "learned" | "pinned";
  /** Epoch ms. */
  readonly firstHeard: number | undefined;
  readonly lastHeard: number | undefined;
  /** Media header form, when its media was seen. */
  readonly headerForm: 77 | 86 | undefined;
  /** Audio law, when known. */
  readonly law: "alaw" | "ulaw" | undefined;
  /** The door opens its lock only while talking. */
  readonly needsTalkForUnlock: boolean;
}

/** A phone connection that is logged in. */
export interface PhoneSnapshot {
  readonly uid: string;
  /** Room keys it is logged in to. */
  readonly rooms: readonly string[];
  readonly ip: string;
  /** Epoch ms of its login. */
  readonly since: number;
  /** Epoch ms of the last message heard. */
  readonly lastHeard: number;
  readonly transport: "ws";
}

/** Media counters of a live call. */
export interface CallMediaSnapshot {
  readonly doorIn: number;
  readonly toPhones: number;
  readonly phoneIn: number;
  readonly toDoor: number;
  readonly dropped: number;
}

/** A call in progress. */
export interface CallSnapshot {
  readonly callId: string;
  readonly phase: string;
  readonly doorAddress: string;
  readonly doorIp: string;
  readonly roomKey: string;
  /** The ring group (or the phones still taking part). */
  readonly participants: readonly string[];
  readonly talker: string | undefined;
  readonly media: CallMediaSnapshot | undefined;
}

/** What the console and health checks read. */
export interface LiveState {
  doors(): DoorSnapshot[];
  phones(): PhoneSnapshot[];
  calls(): CallSnapshot[];
}
