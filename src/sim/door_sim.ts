/**
 * The door-station simulator: the caller side of the door protocol (door-protocol.md), as the
 * firmware of an installed door station behaves, for tests and for commissioning a building.
 *
 * One {@linkcode DoorSim} places one call:
 *
 * ```
 * resolving ─NS reply─▶ calling ─CALLANSWER─▶ ringing ─CALLSTART─▶ talking
 *    │ 6×100 ms            │ 6×600 ms / LINEUSE   │                    │
 *    ▼                     ▼                      ▼                    ▼
 *  ended ◀── lingering ◀── (gateway CALLEND: reply) / (door CALLEND 600 ms × 6: hanging_up)
 * ```
 *
 * Firmware rules it follows: ASKs are resent until a REPLY from the IP they were sent to (NS:
 * from anyone); every ASK of the gateway gets a byte-copy REPLY at its exact length, sent to the
 * source port (or to port 8302 with `replyToPort8302`); retransmitted ASKs get the same reply and
 * no second event; each gateway CALLCONFIRM resets the keep-alive window, whose expiry hangs up.
 *
 * Behaviours the spec leaves open, as chosen here:
 * - `hangupAfterS`: the door sends CALLEND that many seconds after CALLANSWER (the moment ringing
 *   starts), whether or not talk started; ring and talk timeouts still apply, whichever is first.
 * - `unlockNeedsTalk`: a REMOTEOPENLOCK before CALLSTART is acknowledged (REPLY, so the gateway's
 *   ask succeeds) but the lock does not open (event `lock_ignored`, reason `needs_talk`); the
 *   gateway cannot tell from the wire, so its call layer should send CALLSTART first.
 *   `unlockNeedsTalk: "silent"` (a widely deployed build): a REMOTEOPENLOCK before CALLSTART
 *   gets no REPLY at all and is not acted upon (`lock_ignored`, reason `needs_talk_silent`, once
 *   per burst of copies); the first REMOTEOPENLOCK after CALLSTART is answered and opens.
 * - Lock re-trigger guard: a new REMOTEOPENLOCK within `lockGuardMs` (5 s) of an opening is
 *   acknowledged without opening (`lock_ignored`, reason `guard`).
 * - A retransmission is a copy of the same ASK within `duplicateWindowMs` (1 s) of the previous
 *   copy, or a CALLSTART while already talking, or a CALLANSWER while already ringing.
 * - After the call ends the door lingers `lingerMs` answering CALLEND copies, then closes.
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../clock.ts";
import { AskEngine } from "../door/ask_engine.ts";
import type { DatagramPort, Endpoint } from "../net/port.ts";
import {
  type CallPacket,
  type CallParties,
  COMMAND,
  DATA_TYPE,
  decodePacket,
  DEFAULTS,
  encodeCall,
  encodeNsAsk,
  LENGTH,
  type MediaPacket,
  MSG_TYPE,
  type NsReply,
  OP,
  OP_NAME,
  PacketDecodeError,
  parseIp,
  type PayloadOffset,
  replyTo,
  sameAddress,
  SIGNAL_LENGTH,
  type SignalOp,
} from "../protocol/mod.ts";
import { decodeG711, G711_CODECS, type G711Codec, g711Silence } from "./g711.ts";
import { audioPacket, nextFrameNo, TestCard, ToneSource, videoPackets } from "./media_source.ts";

/** Defaults of {@linkcode DoorSimOptions}. */
export const DOOR_SIM_DEFAULTS = {
  address: "M00010100",
  ip: "127.0.0.2",
  port: DEFAULTS.DOOR_PORT,
  group: DEFAULTS.MULTICAST_GROUP,
  magic: "XXXCID",
  room: "0809",
  payloadOffset: 77,
  codec: "ulaw",
  keepaliveWindowMs: 6000,
  ringTimeoutS: 30,
  talkTimeoutS: 120,
  fps: 15,
  confirmIntervalMs: 0,
  lingerMs: 700,
  duplicateWindowMs: 1000,
  lockGuardMs: 5000,
  nsRounds: 1,
} as const;

/** The keep-alive window of the strict, widely deployed build (door-protocol.md §4). */
export const STRICT_KEEPALIVE_WINDOW_MS = 2400;

/** Retransmission of the door's own ASKs (door-protocol.md §3, §4). */
export const DOOR_ASK_TIMING = {
  ns: { intervalMs: 100, maxSends: 6 },
  call: { intervalMs: 600, maxSends: 6 },
  callend: { intervalMs: 600, maxSends: 6 },
} as const;

/** Why a simulated door call ended, with the words the CLI prints (the door sim's own reasons). */
export const DOOR_SIM_END = {
  ns_unanswered: "nobody answered the name resolution (room offline?)",
  call_unanswered: "the CALL was never answered",
  busy: "line busy (LINEUSE)",
  ended_by_gateway: "gateway ended the call",
  keepalive_expired: "keep-alive window passed without a CALLCONFIRM",
  ring_timeout: "ring timeout (nobody pressed talk)",
  talk_timeout: "talk timeout",
  hangup_after: "scripted hang-up (--hangup-after)",
  hung_up: "hung up at the door",
  power_off: "door powered off",
  error: "simulator error",
} as const;

/** Why a simulated door call ended (not the gateway call's `EndReason`). */
export type DoorSimEnd = keyof typeof DOOR_SIM_END;

/** End reasons that make the door send CALLEND itself. */
export type HangupReason = Extract<
  DoorSimEnd,
  "keepalive_expired" | "ring_timeout" | "talk_timeout" | "hangup_after" | "hung_up"
>;

/** Why a datagram from the network was not acted upon. */
export const DROP_REASON = {
  decode: "not a valid packet",
  length: "not exactly the expected length (exact-length build)",
  wrong_ip: "not from the IP the door talks to",
  wrong_party: "addressed to another door or room",
  unexpected: "not expected in this phase",
} as const;

/** A drop reason. */
export type DropReason = keyof typeof DROP_REASON;

/** Where the simulated call stands. */
export type DoorSimPhase =
  | "idle"
  | "resolving"
  | "calling"
  | "ringing"
  | "talking"
  | "hanging_up"
  | "lingering"
  | "done";

/** What the simulator reports; `t` is the injected clock's time in ms. */
export type DoorSimEvent =
  | {
    readonly type: "ns_sent";
    readonly t: number;
    readonly target: string;
    readonly attempt: number;
  }
  | { readonly type: "ns_resolved"; readonly t: number; readonly ip: string; readonly from: string }
  | { readonly type: "ns_failed"; readonly t: number; readonly sends: number }
  | {
    readonly type: "call_sent";
    readonly t: number;
    readonly ip: string;
    readonly attempt: number;
  }
  | { readonly type: "call_failed"; readonly t: number; readonly sends: number }
  | { readonly type: "answered"; readonly t: number; readonly ip: string }
  | { readonly type: "busy"; readonly t: number; readonly ip: string }
  | {
    readonly type: "video_started";
    readonly t: number;
    readonly to: string;
    readonly fps: number;
    readonly frameBytes: number;
    readonly packets: number;
  }
  | { readonly type: "confirm_received"; readonly t: number; readonly count: number }
  | {
    readonly type: "talk";
    readonly t: number;
    readonly mediaIp: string;
    readonly replyFlags: number;
    readonly codec: G711Codec;
    readonly payloadOffset: PayloadOffset;
  }
  | { readonly type: "audio_received"; readonly t: number; readonly count: number }
  | { readonly type: "lock_opened"; readonly t: number; readonly count: number }
  | {
    readonly type: "lock_ignored";
    readonly t: number;
    readonly reason: "needs_talk" | "needs_talk_silent" | "guard";
  }
  | { readonly type: "iframe_forced"; readonly t: number }
  | {
    readonly type: "dropped";
    readonly t: number;
    readonly reason: DropReason;
    readonly what: string;
    readonly length: number;
    readonly from: string;
  }
  | { readonly type: "hangup_sent"; readonly t: number; readonly reason: HangupReason }
  | {
    readonly type: "ended";
    readonly t: number;
    readonly reason: DoorSimEnd;
    readonly completed: boolean;
    /** The phase the call was in when it ended. */
    readonly phase: DoorSimPhase;
  };

/** An event type name. */
export type DoorSimEventType = DoorSimEvent["type"];

/** Counters of one simulated call. */
export interface DoorSimCounters {
  nsSent: number;
  callSent: number;
  callendSent: number;
  videoFrames: number;
  iFrames: number;
  videoPackets: number;
  audioSent: number;
  /** CALLDOWN audio packets received from the gateway (all). */
  audioReceived: number;
  /** … of which played (after CALLSTART, newer timestamp). */
  audioPlayed: number;
  /** … of which dropped: timestamp not newer than the last played. */
  audioOutOfOrder: number;
  /** … of which dropped: arrived before CALLSTART. */
  audioBeforeTalk: number;
  /** Gateway CALLCONFIRM ASKs answered. */
  confirmsReceived: number;
  /** The door's own CALLCONFIRM ASKs (`confirmIntervalMs`) and the REPLYs they got. */
  confirmsSent: number;
  confirmRepliesReceived: number;
  /** Gateway ASKs answered again as retransmissions (no event). */
  duplicates: number;
  /** REPLYs the door sent. */
  repliesSent: number;
  /** Datagrams not acted upon (see {@linkcode DROP_REASON}). */
  dropped: number;
}

/** What {@linkcode DoorSim.done} resolves to. */
export interface DoorSimSummary {
  readonly reason: DoorSimEnd;
  /**
   * True when the call went as scripted: answered, then ended by the gateway, or hung up by
   * `hangupAfterS` with the CALLEND acknowledged.
   */
  readonly completed: boolean;
  readonly answered: boolean;
  readonly talked: boolean;
  readonly locksOpened: number;
  /** The IP the NS reply named (the gateway), when resolved. */
  readonly gatewayIp: string | undefined;
  /** Whether the door's own CALLEND got a REPLY (`undefined` when it sent none). */
  readonly callendReplied: boolean | undefined;
  readonly durationMs: number;
  readonly counters: Readonly<DoorSimCounters>;
  /** The error behind reason `error`. */
  readonly error?: string;
}

/** A source of video frames (the default is the JPEG {@linkcode TestCard}). */
export interface VideoSource {
  /** The encoded frame `n` (1-based, wraps after 65535). */
  frame(n: number): Uint8Array;
  /**
   * Whether frame `n` is an I-frame (a coded stream decides, not the door's GOP counter); absent:
   * every `gopFrames`-th frame, and the next one after a FORCEIFRAME.
   */
  keyFrame?(n: number): boolean;
}

/**
 * What the door heard of the gateway's audio (CALLDOWN played), decoded: level and frequency of
 * the loud part, and when each burst began (for latency).
 */
export interface ReceivedAudio {
  /** Packets louder than the threshold (-40 dBFS RMS) in the analysed window. */
  readonly loudPackets: number;
  /** RMS of the loud samples, as a fraction of full scale. */
  readonly rms: number;
  /** Frequency by zero crossings of the loud samples, Hz (0 when none). */
  readonly frequencyHz: number;
  /** Wall time (epoch ms, the door's clock) of each quiet → loud change, oldest first (≤ 64). */
  readonly onsets: readonly number[];
}

/** Options of {@linkcode DoorSim}. All durations are on the injected clock. */
export interface DoorSimOptions {
  /** The door's UDP socket (bound to `ip:port`); the simulator closes it when done. */
  socket: DatagramPort;
  /** @default systemClock */
  clock?: Clock;
  /** The door's address. @default {"M00010100"} */
  address?: string;
  /** The door's own IPv4, written into its packets. @default the socket's address, else 127.0.0.2 */
  ip?: string;
  /** The protocol port of every peer (and of the door itself). @default {8302} */
  port?: number;
  /** Name-resolution group. @default {"238.9.9.1"} */
  group?: string;
  /** @default {"XXXCID"} */
  magic?: string;
  /**
   * The room to call: a full `S` address, or a 4-digit room number combined with the door's
   * building and unit and extension `0` (door M0001010x, room 0809 → S00010108090).
   * @default {"0809"}
   */
  room?: string;
  /** Media header form. @default {77} */
  payloadOffset?: PayloadOffset;
  /** @default {"ulaw"} */
  codec?: G711Codec;
  /** Set flag 0x04 on the CALLSTART reply (the "8126 door"). */
  flag04?: boolean;
  /** Drop gateway signalling whose length is not exactly 57/61/62 (some builds). */
  exactLengths?: boolean;
  /** Hang up when no gateway CALLCONFIRM came for this long. @default {6000} (strict build: 2400) */
  keepaliveWindowMs?: number;
  /** Hang up when ringing this long without CALLSTART. @default {30} */
  ringTimeoutS?: number;
  /** Hang up when talking this long. @default {120} */
  talkTimeoutS?: number;
  /** Hang up this many seconds after CALLANSWER (see the module notes). */
  hangupAfterS?: number;
  /** Video frame rate, 10–25. @default {15} */
  fps?: number;
  /** I-frame every this many frames. @default fps (one a second) */
  gopFrames?: number;
  /** Send replies to port 8302 of the peer instead of the source port (older firmwares). */
  replyToPort8302?: boolean;
  /** Open the lock only after CALLSTART; `"silent"`: no REPLY before it either (module notes). */
  unlockNeedsTalk?: boolean | "silent";
  /** The door's own CALLCONFIRM ASKs while in a call, every this many ms; 0 = off. @default {0} */
  confirmIntervalMs?: number;
  /** Time to keep answering CALLEND copies after the end. @default {700} */
  lingerMs?: number;
  /** Copies of an ASK this close together are retransmissions. @default {1000} */
  duplicateWindowMs?: number;
  /** Lock re-trigger guard. @default {5000} */
  lockGuardMs?: number;
  /**
   * Name resolutions (each 6 asks 100 ms apart) before the door gives up: more than one is a
   * visitor pressing the room again after "no answer". @default {1}
   */
  nsRounds?: number;
  /** Video frames. @default a {@linkcode TestCard} */
  video?: VideoSource;
  /** Send silence instead of the tone until {@linkcode DoorSim.setTone} turns it on. */
  toneMuted?: boolean;
  /** Called for every event, synchronously. */
  onEvent?: (event: DoorSimEvent) => void;
}

type Resolved = Required<
  Omit<
    DoorSimOptions,
    "socket" | "clock" | "hangupAfterS" | "video" | "onEvent" | "ip" | "toneMuted"
  >
>;

type TimerName =
  | "video"
  | "audio"
  | "window"
  | "ring"
  | "talk"
  | "hangup_after"
  | "confirm"
  | "linger";

/**
 * The `S` address a door calls for `room`: a full `S` address as is, or a 4-digit room number
 * within the door's building and unit, extension 0. Throws a `RangeError` naming the problem.
 */
export function roomAddressFor(door: string, room: string): string {
  if (/^S\d{11}$/.test(room)) return room;
  if (/^\d{4}$/.test(room)) {
    const m = /^M(\d{4})(\d{2})/.exec(door);
    if (!m) {
      throw new RangeError(`Cannot derive a room address from door "${door}": expected M + digits`);
    }
    return `S${m[1]}${m[2]}${room}0`;
  }
  throw new RangeError(
    `Cannot use room "${room}": expected S + 11 digits (S00010108090) or a 4-digit room (0809)`,
  );
}

function checkRange(name: string, value: number, min: number, max: number): void {
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`Cannot use ${name} ${value}: expected ${min}–${max}`);
  }
}

function resolveOptions(o: DoorSimOptions): Resolved {
  const d = DOOR_SIM_DEFAULTS;
  const address = o.address ?? d.address;
  if (!/^M\d{7,19}$/.test(address)) {
    throw new RangeError(`Cannot use door address "${address}": expected M + digits (M00010100)`);
  }
  const fps = o.fps ?? d.fps;
  checkRange("fps", fps, 10, 25);
  const payloadOffset = o.payloadOffset ?? d.payloadOffset;
  if (payloadOffset !== 77 && payloadOffset !== 86) {
    throw new RangeError(`Cannot use payload offset ${payloadOffset}: expected 77 or 86`);
  }
  const codec = o.codec ?? d.codec;
  if (!G711_CODECS.includes(codec)) {
    throw new RangeError(`Cannot use codec "${codec}": expected ulaw or alaw`);
  }
  const group = o.group ?? d.group;
  if (!parseIp(group)) throw new RangeError(`Cannot use group "${group}": expected an IPv4`);
  const r: Resolved = {
    address,
    port: o.port ?? d.port,
    group,
    magic: o.magic ?? d.magic,
    room: roomAddressFor(address, o.room ?? d.room),
    payloadOffset,
    codec,
    flag04: o.flag04 ?? false,
    exactLengths: o.exactLengths ?? false,
    keepaliveWindowMs: o.keepaliveWindowMs ?? d.keepaliveWindowMs,
    ringTimeoutS: o.ringTimeoutS ?? d.ringTimeoutS,
    talkTimeoutS: o.talkTimeoutS ?? d.talkTimeoutS,
    fps,
    gopFrames: o.gopFrames ?? fps,
    replyToPort8302: o.replyToPort8302 ?? false,
    unlockNeedsTalk: o.unlockNeedsTalk ?? false,
    confirmIntervalMs: o.confirmIntervalMs ?? d.confirmIntervalMs,
    lingerMs: o.lingerMs ?? d.lingerMs,
    duplicateWindowMs: o.duplicateWindowMs ?? d.duplicateWindowMs,
    lockGuardMs: o.lockGuardMs ?? d.lockGuardMs,
    nsRounds: o.nsRounds ?? d.nsRounds,
  };
  checkRange("port", r.port, 1, 65535);
  checkRange("keep-alive window (ms)", r.keepaliveWindowMs, 100, 600_000);
  checkRange("ring timeout (s)", r.ringTimeoutS, 1, 3600);
  checkRange("talk timeout (s)", r.talkTimeoutS, 1, 36_000);
  checkRange("GOP (frames)", r.gopFrames, 1, 1000);
  checkRange("confirm interval (ms)", r.confirmIntervalMs, 0, 60_000);
  checkRange("NS rounds", r.nsRounds, 1, 10);
  if (o.hangupAfterS !== undefined) checkRange("hang-up-after (s)", o.hangupAfterS, 0, 36_000);
  return r;
}

function zeroCounters(): DoorSimCounters {
  return {
    nsSent: 0,
    callSent: 0,
    callendSent: 0,
    videoFrames: 0,
    iFrames: 0,
    videoPackets: 0,
    audioSent: 0,
    audioReceived: 0,
    audioPlayed: 0,
    audioOutOfOrder: 0,
    audioBeforeTalk: 0,
    confirmsReceived: 0,
    confirmsSent: 0,
    confirmRepliesReceived: 0,
    duplicates: 0,
    repliesSent: 0,
    dropped: 0,
  };
}

/** Video frames sent back to back after a stall at most; older ones are skipped. */
const MAX_VIDEO_CATCH_UP = 3;
/** Audio packets sent back to back after a stall at most (200 ms). */
const MAX_AUDIO_CATCH_UP = 25;
/** Played-audio events: the first packet, then every 5 s of audio. */
const AUDIO_EVENT_EVERY = 625;
/** Received audio kept for {@linkcode DoorSim.receivedAudio}: the last 1 s of loud samples. */
const LOUD_KEEP = 8000;
/** A played packet is loud above this RMS (-40 dBFS). */
const LOUD_RMS = 32768 * 0.01;

/**
 * A simulated door station placing one call. {@linkcode DoorSim.start} begins; the
 * {@linkcode DoorSim.done} promise resolves with a summary once the call is over, every timer
 * cleared and the socket closed.
 *
 * @example
 * ```ts
 * const socket = await openUdpPort({ hostname: "127.0.0.2", port: 8302 });
 * const sim = new DoorSim({ socket, room: "0809", onEvent: (e) => log(e) });
 * const summary = await sim.start();
 * ```
 */
export class DoorSim {
  /** The door's address. */
  readonly address: string;
  /** The door's IPv4. */
  readonly ip: string;
  /** The `S` address called. */
  readonly room: string;
  #o: Resolved;
  #socket: DatagramPort;
  #clock: Clock;
  #onEvent: ((e: DoorSimEvent) => void) | undefined;
  #hangupAfterS: number | undefined;
  #asks: AskEngine;
  #phase: DoorSimPhase = "idle";
  #timers = new Map<TimerName, TimerId>();
  #events: DoorSimEvent[] = [];
  #waiters: {
    type: DoorSimEventType;
    resolve: (e: DoorSimEvent) => void;
    reject: (e: Error) => void;
  }[] = [];
  #c: DoorSimCounters = zeroCounters();
  #loop: Promise<void> | undefined;
  #closed = false;
  #done: Promise<DoorSimSummary>;
  #resolveDone!: (s: DoorSimSummary) => void;
  #startedAt = 0;
  #endReason: DoorSimEnd | undefined;
  #error: string | undefined;
  #gatewayIp: string | undefined;
  #mediaIp: string | undefined;
  #parties: CallParties | undefined;
  #answered = false;
  #talked = false;
  #locks = 0;
  #lastLockAt = -Infinity;
  #lastIgnoredUnlockAt = -Infinity;
  #lastAsk = new Map<number, number>();
  #hangupReason: HangupReason | undefined;
  #callendReplied: boolean | undefined;
  // media
  #video: VideoSource | undefined;
  #videoSource: VideoSource;
  #tone: ToneSource;
  #epoch = 0;
  #forceIFrame = false;
  #videoStart = 0;
  #videoIndex = 0;
  #videoFrameNo = 0;
  #audioStart = 0;
  #audioIndex = 0;
  #audioFrameNo = 0;
  #audioTs0 = 0;
  #lastPlayedTs: number | undefined;
  #confirmCounter = 0;
  #toneOn: boolean;
  #silence: Uint8Array;
  #loud = new Int16Array(LOUD_KEEP);
  #loudAt = 0;
  #loudCount = 0;
  #wasLoud = false;
  #onsets: number[] = [];

  /** Validates the options (a `RangeError` names a bad one); nothing is sent before `start`. */
  constructor(options: DoorSimOptions) {
    this.#o = resolveOptions(options);
    this.#socket = options.socket;
    this.#clock = options.clock ?? systemClock;
    this.#onEvent = options.onEvent;
    this.#hangupAfterS = options.hangupAfterS;
    // Built before the call (under emulation a first build stalls the loop for seconds).
    this.#videoSource = options.video ?? TestCard.shared();
    this.address = this.#o.address;
    const local = options.socket.local.hostname;
    this.ip = options.ip ?? (parseIp(local) && local !== "0.0.0.0" ? local : DOOR_SIM_DEFAULTS.ip);
    if (!parseIp(this.ip)) throw new RangeError(`Cannot use ip "${this.ip}": expected an IPv4`);
    this.room = this.#o.room;
    this.#tone = new ToneSource({ codec: this.#o.codec });
    this.#toneOn = !options.toneMuted;
    this.#silence = new Uint8Array(64).fill(g711Silence(this.#o.codec));
    this.#asks = new AskEngine(this.#clock, (bytes, to) => this.#sendAsk(bytes, to));
    this.#done = new Promise((resolve) => (this.#resolveDone = resolve));
  }

  /** Resolves with the summary once the call is over and the socket closed. */
  get done(): Promise<DoorSimSummary> {
    return this.#done;
  }

  /** The current phase. */
  get phase(): DoorSimPhase {
    return this.#phase;
  }

  /** The IP the NS reply named, once resolved. */
  get gatewayIp(): string | undefined {
    return this.#gatewayIp;
  }

  /** Every event so far, in order. */
  get events(): readonly DoorSimEvent[] {
    return this.#events;
  }

  /** A snapshot of the counters. */
  get counters(): Readonly<DoorSimCounters> {
    return { ...this.#c };
  }

  /** The resolved options (defaults filled in). */
  get options(): Readonly<Resolved & { hangupAfterS: number | undefined; ip: string }> {
    return { ...this.#o, hangupAfterS: this.#hangupAfterS, ip: this.ip };
  }

  /**
   * Turns the door's tone on or off (off: G.711 silence, same packets and timing). Returns the
   * wall time (epoch ms) of the change: the next audio packet carries it.
   */
  setTone(on: boolean): number {
    this.#toneOn = on;
    return this.#clock.wallNow();
  }

  /** The gateway's audio as the door played it: the loud packets of the last second. */
  receivedAudio(): ReceivedAudio {
    const n = Math.min(this.#loudCount, LOUD_KEEP);
    let sum = 0;
    let crossings = 0;
    let prev = 0;
    for (let k = 0; k < n; k++) {
      const v = this.#loud[(this.#loudAt - n + k + LOUD_KEEP) % LOUD_KEEP]!;
      sum += v * v;
      if (k > 0 && (prev < 0) !== (v < 0)) crossings++;
      prev = v;
    }
    return {
      loudPackets: Math.floor(n / 64),
      rms: n ? Math.sqrt(sum / n) / 32768 : 0,
      frequencyHz: n > 1 ? (crossings / 2) * (8000 / (n - 1)) : 0,
      onsets: [...this.#onsets],
    };
  }

  /**
   * Resolves with the first event of `type` (at once when one already happened); rejects once
   * the simulator is done without it ("Cannot see the door's …: its call ended (reason)").
   */
  when<T extends DoorSimEventType>(type: T): Promise<Extract<DoorSimEvent, { type: T }>> {
    const seen = this.#events.find((e) => e.type === type);
    if (seen) return Promise.resolve(seen as Extract<DoorSimEvent, { type: T }>);
    if (this.#phase === "done") return Promise.reject(this.#missed(type));
    return new Promise((resolve, reject) => {
      this.#waiters.push({ type, resolve: resolve as (e: DoorSimEvent) => void, reject });
    });
  }

  /** Starts the call (NS, then CALL); returns {@linkcode DoorSim.done}. Idempotent. */
  start(): Promise<DoorSimSummary> {
    if (this.#phase === "idle" && !this.#closed) {
      this.#startedAt = this.#clock.now();
      this.#loop = this.#run();
      this.#dial().catch((e) => this.#fail(e));
    }
    return this.#done;
  }

  /**
   * The visitor gives up: CALLEND (600 ms × 6) once a CALL went out, else the resolution just
   * stops. Returns {@linkcode DoorSim.done}.
   */
  hangUp(): Promise<DoorSimSummary> {
    if (this.#phase === "resolving") this.#finish("hung_up");
    else if (this.#phase === "idle") void this.#close();
    else this.#hangUp("hung_up").catch((e) => this.#fail(e));
    return this.#done;
  }

  /**
   * The door loses power: no further packet, timers cleared, socket closed at once (the gateway
   * must notice by its keep-alive). Returns {@linkcode DoorSim.done}.
   */
  powerOff(): Promise<DoorSimSummary> {
    if (this.#phase !== "lingering" && this.#phase !== "done") this.#end("power_off");
    void this.#close();
    return this.#done;
  }

  /** Same as {@linkcode DoorSim.powerOff} (for `finally` blocks). */
  close(): Promise<DoorSimSummary> {
    return this.powerOff();
  }

  // -------------------------------------------------------------------------------------------
  // Outgoing flow.

  async #dial(): Promise<void> {
    this.#phase = "resolving";
    const o = this.#o;
    const ns = encodeNsAsk(
      { asker: o.address, askerIp: this.ip, target: o.room, targetIp: "0.0.0.0" },
      o.magic,
    );
    let resolved = false;
    for (let round = 0; round < o.nsRounds && !resolved; round++) {
      resolved = await this.#asks.ask(ns, { hostname: o.group, port: o.port }, {
        key: "ns",
        ...DOOR_ASK_TIMING.ns,
      });
      if (this.#phase !== "resolving") return;
    }
    if (!resolved || this.#gatewayIp === undefined) {
      this.#emit({ type: "ns_failed", t: this.#now(), sends: this.#c.nsSent });
      this.#finish("ns_unanswered");
      return;
    }
    const gatewayIp = this.#gatewayIp;
    this.#parties = { caller: o.address, callerIp: this.ip, callee: o.room, calleeIp: gatewayIp };
    this.#phase = "calling";
    const call = encodeCall(
      { type: MSG_TYPE.ASK, op: OP.CALL, ...this.#parties, multicast: 0, groupIp: "0.0.0.0" },
      o.magic,
    );
    const answered = await this.#asks.ask(call, this.#peer(gatewayIp), {
      key: "call",
      ...DOOR_ASK_TIMING.call,
    });
    if (this.#phase !== "calling") return;
    if (!answered) {
      this.#emit({ type: "call_failed", t: this.#now(), sends: this.#c.callSent });
      this.#finish("call_unanswered");
    }
  }

  #sendAsk(bytes: Uint8Array, to: Endpoint): void {
    this.#socket.send(bytes, to);
    const t = this.#now();
    if (bytes[6] === COMMAND.NSORDER) {
      this.#c.nsSent++;
      this.#emit({ type: "ns_sent", t, target: this.#o.room, attempt: this.#c.nsSent });
    } else if (bytes[8] === OP.CALL) {
      this.#c.callSent++;
      this.#emit({ type: "call_sent", t, ip: to.hostname, attempt: this.#c.callSent });
    } else if (bytes[8] === OP.CALLEND) {
      this.#c.callendSent++;
    }
  }

  async #hangUp(reason: HangupReason): Promise<void> {
    const phase = this.#phase;
    if (phase !== "calling" && phase !== "ringing" && phase !== "talking") return;
    this.#stopCall();
    this.#asks.cancel("call");
    this.#phase = "hanging_up";
    this.#hangupReason = reason;
    this.#emit({ type: "hangup_sent", t: this.#now(), reason });
    const bytes = encodeCall(
      { type: MSG_TYPE.ASK, op: OP.CALLEND, ...this.#parties! },
      this.#o.magic,
    );
    const ok = await this.#asks.ask(bytes, this.#peer(this.#gatewayIp!), {
      key: "callend",
      ...DOOR_ASK_TIMING.callend,
    });
    if (this.#phase !== "hanging_up") return;
    this.#callendReplied = ok;
    this.#finish(reason);
  }

  #startRinging(): void {
    const o = this.#o;
    this.#phase = "ringing";
    this.#answered = true;
    this.#mediaIp = this.#gatewayIp;
    this.#epoch = this.#clock.now();
    this.#armWindow();
    this.#set("ring", o.ringTimeoutS * 1000, () => this.#timerHangUp("ring_timeout"));
    if (this.#hangupAfterS !== undefined) {
      this.#set("hangup_after", this.#hangupAfterS * 1000, () => this.#timerHangUp("hangup_after"));
    }
    if (o.confirmIntervalMs > 0) {
      this.#set("confirm", o.confirmIntervalMs, () => this.#sendConfirm());
    }
    this.#video = this.#videoSource;
    this.#videoStart = this.#clock.now();
    this.#videoIndex = 0;
    this.#videoTick();
  }

  #timerHangUp(reason: HangupReason): void {
    this.#hangUp(reason).catch((e) => this.#fail(e));
  }

  #armWindow(): void {
    this.#set("window", this.#o.keepaliveWindowMs, () => this.#timerHangUp("keepalive_expired"));
  }

  #startTalking(mediaIp: string): void {
    this.#phase = "talking";
    this.#talked = true;
    this.#mediaIp = mediaIp;
    this.#clear("ring");
    this.#set("talk", this.#o.talkTimeoutS * 1000, () => this.#timerHangUp("talk_timeout"));
    this.#audioStart = this.#clock.now();
    this.#audioIndex = 0;
    this.#audioTs0 = Math.round(this.#audioStart - this.#epoch);
    this.#audioTick();
  }

  #sendConfirm(): void {
    this.#confirmCounter++;
    const counter = new Uint8Array(4);
    new DataView(counter.buffer).setUint32(0, this.#confirmCounter, true);
    this.#socket.send(
      encodeCall({
        type: MSG_TYPE.ASK,
        op: OP.CALLCONFIRM,
        ...this.#parties!,
        counter: counter.toHex(),
      }, this.#o.magic),
      this.#peer(this.#gatewayIp!),
    );
    this.#c.confirmsSent++;
    this.#set("confirm", this.#o.confirmIntervalMs, () => this.#sendConfirm());
  }

  // -------------------------------------------------------------------------------------------
  // Media.

  #videoTick(): void {
    const interval = 1000 / this.#o.fps;
    const now = this.#clock.now();
    const due = Math.floor((now - this.#videoStart) / interval + 1e-6) + 1;
    if (due - this.#videoIndex > MAX_VIDEO_CATCH_UP) this.#videoIndex = due - 1;
    while (this.#videoIndex < due) this.#sendFrame(this.#videoIndex++, interval);
    const next = this.#videoStart + this.#videoIndex * interval;
    this.#set("video", Math.max(1, next - now), () => this.#videoTick());
  }

  #sendFrame(index: number, interval: number): void {
    this.#videoFrameNo = nextFrameNo(this.#videoFrameNo);
    const source = this.#video!;
    const iframe = source.keyFrame
      ? source.keyFrame(this.#videoFrameNo)
      : this.#forceIFrame || this.#c.videoFrames % this.#o.gopFrames === 0;
    this.#forceIFrame = false;
    const frame = source.frame(this.#videoFrameNo);
    const packets = videoPackets(frame, {
      parties: this.#parties!,
      timestamp: Math.round(this.#videoStart - this.#epoch + index * interval),
      frameNo: this.#videoFrameNo,
      iframe,
      payloadOffset: this.#o.payloadOffset,
      magic: this.#o.magic,
    });
    const to = this.#peer(this.#mediaIp!);
    for (const p of packets) this.#socket.send(p, to);
    this.#c.videoFrames++;
    this.#c.videoPackets += packets.length;
    if (iframe) this.#c.iFrames++;
    if (this.#c.videoFrames === 1) {
      this.#emit({
        type: "video_started",
        t: this.#now(),
        to: to.hostname,
        fps: this.#o.fps,
        frameBytes: frame.length,
        packets: packets.length,
      });
    }
  }

  #audioTick(): void {
    const now = this.#clock.now();
    const due = Math.floor((now - this.#audioStart) / 8) + 1;
    if (due - this.#audioIndex > MAX_AUDIO_CATCH_UP) this.#audioIndex = due - 1;
    const to = this.#peer(this.#mediaIp!);
    while (this.#audioIndex < due) {
      this.#audioFrameNo = nextFrameNo(this.#audioFrameNo);
      const tone = this.#tone.next();
      const bytes = audioPacket(this.#toneOn ? tone : this.#silence, {
        parties: this.#parties!,
        timestamp: this.#audioTs0 + 8 * this.#audioIndex++,
        frameNo: this.#audioFrameNo,
        payloadOffset: this.#o.payloadOffset,
      }, this.#o.magic);
      this.#socket.send(bytes, to);
      this.#c.audioSent++;
    }
    const next = this.#audioStart + this.#audioIndex * 8;
    this.#set("audio", Math.max(1, next - now), () => this.#audioTick());
  }

  #onMedia(p: MediaPacket, from: Endpoint): void {
    const length = p.payloadOffset + p.dataLen;
    if (p.op !== OP.CALLDOWN) return this.#drop("unexpected", "CALLUP", length, from, false);
    if (from.hostname !== this.#gatewayIp && from.hostname !== this.#mediaIp) {
      return this.#drop("wrong_ip", "CALLDOWN", length, from, false);
    }
    if (p.dataType !== DATA_TYPE.AUDIO) return;
    this.#c.audioReceived++;
    if (this.#phase !== "talking") {
      this.#c.audioBeforeTalk++;
      return;
    }
    if (this.#lastPlayedTs !== undefined && ((p.timestamp - this.#lastPlayedTs) | 0) <= 0) {
      this.#c.audioOutOfOrder++;
      return;
    }
    this.#lastPlayedTs = p.timestamp;
    this.#c.audioPlayed++;
    this.#listen(p.payload);
    if (this.#c.audioPlayed === 1 || this.#c.audioPlayed % AUDIO_EVENT_EVERY === 0) {
      this.#emit({ type: "audio_received", t: this.#now(), count: this.#c.audioPlayed });
    }
  }

  /** Keeps the loud part of what the door plays, and when each burst began. */
  #listen(payload: Uint8Array): void {
    const pcm = decodeG711(this.#o.codec, payload);
    let sum = 0;
    for (let i = 0; i < pcm.length; i++) sum += pcm[i]! * pcm[i]!;
    const loud = Math.sqrt(sum / Math.max(1, pcm.length)) > LOUD_RMS;
    if (loud && !this.#wasLoud) {
      if (this.#onsets.length >= 64) this.#onsets.shift();
      this.#onsets.push(this.#clock.wallNow());
    }
    this.#wasLoud = loud;
    if (!loud) return;
    for (let i = 0; i < pcm.length; i++) {
      this.#loud[this.#loudAt] = pcm[i]!;
      this.#loudAt = (this.#loudAt + 1) % LOUD_KEEP;
    }
    this.#loudCount += pcm.length;
  }

  // -------------------------------------------------------------------------------------------
  // Incoming datagrams.

  async #run(): Promise<void> {
    let errors = 0;
    while (!this.#closed) {
      let msg: [Uint8Array, Endpoint];
      try {
        msg = await this.#socket.receive();
        errors = 0;
      } catch (e) {
        if (this.#closed) break;
        if (++errors >= 10) {
          this.#fail(e);
          break;
        }
        continue;
      }
      try {
        this.#handle(msg[0], msg[1]);
      } catch (e) {
        this.#fail(e);
      }
    }
  }

  #handle(data: Uint8Array, from: Endpoint): void {
    if (this.#phase === "done" || this.#phase === "idle") return;
    if (this.#o.exactLengths && data.length >= LENGTH.PREFIX && data[6] === COMMAND.VIDEOTALK) {
      // Strict builds check the length before anything else (media excepted).
      const op = data[8]!;
      const want = SIGNAL_LENGTH[op as SignalOp] as number | undefined;
      if (want !== undefined && data.length !== want) {
        const name = `${(data[7]! & 3) === MSG_TYPE.REPLY ? "REPLY" : "ASK"} ${OP_NAME[op]}`;
        return this.#drop("length", name, data.length, from);
      }
    }
    const p = decodePacket(data, { magic: this.#o.magic });
    if (p instanceof PacketDecodeError) return this.#drop("decode", p.code, data.length, from);
    switch (p.kind) {
      case "ns_reply":
        return this.#onNsReply(p, data, from);
      case "ns_ask":
        return; // another door resolving: not for us
      case "media":
        return this.#onMedia(p, from);
      case "call":
        return this.#onCall(p, data, from);
    }
  }

  #onNsReply(p: NsReply, raw: Uint8Array, from: Endpoint): void {
    if (this.#phase !== "resolving" || this.#gatewayIp !== undefined) return; // first reply won
    const expected = LENGTH.NS_REPLY_BASE + LENGTH.NS_ENTRY * p.entries.length;
    if (this.#o.exactLengths && raw.length !== expected) {
      return this.#drop("length", "NS reply", raw.length, from);
    }
    const entry = p.entries.find((e) => sameAddress(e.address, this.#o.room));
    if (!sameAddress(p.asker, this.#o.address) || !entry) {
      return this.#drop("wrong_party", "NS reply", raw.length, from);
    }
    this.#gatewayIp = entry.ip;
    this.#emit({ type: "ns_resolved", t: this.#now(), ip: entry.ip, from: from.hostname });
    this.#asks.onReply("ns");
  }

  #onCall(p: CallPacket, raw: Uint8Array, from: Endpoint): void {
    const name = `${p.type === MSG_TYPE.REPLY ? "REPLY" : "ASK"} ${OP_NAME[p.op] ?? p.op}`;
    if (p.command !== COMMAND.VIDEOTALK) return this.#drop("unexpected", name, raw.length, from);
    if (this.#gatewayIp === undefined || from.hostname !== this.#gatewayIp) {
      return this.#drop("wrong_ip", name, raw.length, from);
    }
    if (!sameAddress(p.caller, this.#o.address) || !sameAddress(p.callee, this.#o.room)) {
      return this.#drop("wrong_party", name, raw.length, from);
    }
    if (p.type === MSG_TYPE.REPLY) return this.#onReply(p, name, raw, from);
    const phase = this.#phase;
    const inCall = phase === "ringing" || phase === "talking";
    switch (p.op) {
      case OP.CALLANSWER:
      case OP.LINEUSE:
        return this.#onAnswer(p, name, raw, from);
      case OP.CALLCONFIRM:
        if (!inCall && phase !== "hanging_up") break;
        this.#reply(raw, OP.CALLCONFIRM, from);
        this.#c.confirmsReceived++;
        this.#emit({ type: "confirm_received", t: this.#now(), count: this.#c.confirmsReceived });
        if (inCall) this.#armWindow();
        return;
      case OP.CALLSTART:
        if (!inCall) break;
        this.#reply(raw, OP.CALLSTART, from, this.#o.flag04 ? 0x04 : 0);
        if (phase === "talking") {
          this.#c.duplicates++;
          return;
        }
        this.#startTalking(p.calleeIp !== "0.0.0.0" ? p.calleeIp : this.#gatewayIp);
        this.#emit({
          type: "talk",
          t: this.#now(),
          mediaIp: this.#mediaIp!,
          replyFlags: this.#o.flag04 ? 0x04 : 0,
          codec: this.#o.codec,
          payloadOffset: this.#o.payloadOffset,
        });
        return;
      case OP.REMOTEOPENLOCK:
        if (!inCall) break;
        if (this.#o.unlockNeedsTalk === "silent" && phase !== "talking") {
          return this.#ignoreUnlock();
        }
        this.#reply(raw, OP.REMOTEOPENLOCK, from);
        return this.#onUnlock();
      case OP.FORCEIFRAME:
        if (!inCall) break;
        this.#reply(raw, OP.FORCEIFRAME, from);
        if (this.#isRetransmission(OP.FORCEIFRAME)) return;
        this.#forceIFrame = true;
        this.#emit({ type: "iframe_forced", t: this.#now() });
        return;
      case OP.ZOOMIN:
      case OP.ZOOMOUT:
        if (!inCall) break;
        this.#reply(raw, p.op, from);
        return;
      case OP.CALLEND:
        if (phase === "lingering") {
          this.#reply(raw, OP.CALLEND, from);
          this.#c.duplicates++;
          return;
        }
        if (phase === "hanging_up") {
          // Both sides hung up at once: the gateway's CALLEND acknowledges ours.
          this.#reply(raw, OP.CALLEND, from);
          this.#asks.onReply("callend");
          return;
        }
        if (!inCall && phase !== "calling") break;
        this.#reply(raw, OP.CALLEND, from);
        this.#finish("ended_by_gateway");
        return;
    }
    this.#drop("unexpected", name, raw.length, from);
  }

  #onAnswer(p: CallPacket, name: string, raw: Uint8Array, from: Endpoint): void {
    if (this.#phase === "calling") {
      this.#asks.onReply("call");
      if (p.op === OP.LINEUSE) {
        this.#emit({ type: "busy", t: this.#now(), ip: from.hostname });
        this.#finish("busy");
        return;
      }
      this.#emit({ type: "answered", t: this.#now(), ip: from.hostname });
      this.#startRinging();
      return;
    }
    if (this.#phase === "ringing" || this.#phase === "talking") {
      // The gateway answering a retransmitted CALL: the call is already up.
      if (p.op === OP.CALLANSWER) {
        this.#c.duplicates++;
        return;
      }
    }
    this.#drop("unexpected", name, raw.length, from);
  }

  #onReply(p: CallPacket, name: string, raw: Uint8Array, from: Endpoint): void {
    if (p.op === OP.CALLEND && this.#asks.onReply("callend")) return;
    if (p.op === OP.CALLCONFIRM && this.#o.confirmIntervalMs > 0) {
      this.#c.confirmRepliesReceived++;
      return;
    }
    this.#drop("unexpected", name, raw.length, from);
  }

  #onUnlock(): void {
    if (this.#isRetransmission(OP.REMOTEOPENLOCK)) return;
    const t = this.#now();
    if (this.#o.unlockNeedsTalk && this.#phase !== "talking") {
      this.#emit({ type: "lock_ignored", t, reason: "needs_talk" });
      return;
    }
    if (t - this.#lastLockAt < this.#o.lockGuardMs) {
      this.#emit({ type: "lock_ignored", t, reason: "guard" });
      return;
    }
    this.#lastLockAt = t;
    this.#locks++;
    this.#emit({ type: "lock_opened", t, count: this.#locks });
  }

  /** The silent build before talk: no REPLY, no action; the copies of one burst reported once. */
  #ignoreUnlock(): void {
    const t = this.#now();
    const fresh = t - this.#lastIgnoredUnlockAt >= this.#o.duplicateWindowMs;
    this.#lastIgnoredUnlockAt = t;
    if (fresh) this.#emit({ type: "lock_ignored", t, reason: "needs_talk_silent" });
  }

  /** True (and counted) when an ASK of `op` came within the duplicate window of its last copy. */
  #isRetransmission(op: number): boolean {
    const now = this.#now();
    const last = this.#lastAsk.get(op);
    this.#lastAsk.set(op, now);
    if (last !== undefined && now - last < this.#o.duplicateWindowMs) {
      this.#c.duplicates++;
      return true;
    }
    return false;
  }

  #reply(raw: Uint8Array, op: SignalOp, from: Endpoint, flags = 0): void {
    const out = replyTo(raw, op);
    if (flags) out[7] = out[7]! | flags;
    const to = this.#o.replyToPort8302 ? this.#peer(from.hostname) : from;
    this.#socket.send(out, to);
    this.#c.repliesSent++;
  }

  #drop(reason: DropReason, what: string, length: number, from: Endpoint, event = true): void {
    this.#c.dropped++;
    if (event) {
      this.#emit({ type: "dropped", t: this.#now(), reason, what, length, from: from.hostname });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Ending.

  /** Stops media and the call's timers (not the linger timer). */
  #stopCall(): void {
    for (const name of [...this.#timers.keys()]) if (name !== "linger") this.#clear(name);
  }

  #finish(reason: DoorSimEnd): void {
    if (this.#phase === "lingering" || this.#phase === "done") return;
    this.#end(reason);
    if (this.#o.lingerMs > 0) this.#set("linger", this.#o.lingerMs, () => void this.#close());
    else void this.#close();
  }

  #end(reason: DoorSimEnd): void {
    const phase = this.#phase;
    this.#stopCall();
    this.#asks.cancel();
    this.#endReason = reason;
    this.#phase = "lingering";
    this.#emit({
      type: "ended",
      t: this.#now(),
      reason,
      completed: this.#completed(reason),
      phase,
    });
  }

  #completed(reason: DoorSimEnd): boolean {
    if (!this.#answered) return false;
    if (reason === "ended_by_gateway") return true;
    return reason === "hangup_after" && this.#callendReplied === true;
  }

  #fail(e: unknown): void {
    this.#error ??= e instanceof Error ? e.message : String(e);
    if (this.#phase !== "lingering" && this.#phase !== "done") this.#end("error");
    void this.#close();
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const name of [...this.#timers.keys()]) this.#clear(name);
    this.#asks.cancel();
    this.#phase = "done";
    this.#socket.close();
    await this.#loop;
    const reason = this.#endReason ?? "power_off";
    // What can no longer happen is not waited for forever.
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const w of waiting) w.reject(this.#missed(w.type));
    this.#resolveDone({
      reason,
      completed: this.#completed(reason),
      answered: this.#answered,
      talked: this.#talked,
      locksOpened: this.#locks,
      gatewayIp: this.#gatewayIp,
      callendReplied: this.#hangupReason ? this.#callendReplied ?? false : undefined,
      durationMs: this.#clock.now() - this.#startedAt,
      counters: { ...this.#c },
      ...(this.#error !== undefined ? { error: this.#error } : {}),
    });
  }

  // -------------------------------------------------------------------------------------------
  // Helpers.

  #now(): number {
    return this.#clock.now();
  }

  #peer(ip: string): Endpoint {
    return { hostname: ip, port: this.#o.port };
  }

  #set(name: TimerName, ms: number, fn: () => void): void {
    this.#clear(name);
    const id = this.#clock.setTimeout(() => {
      this.#timers.delete(name);
      fn();
    }, ms);
    this.#timers.set(name, id);
  }

  #clear(name: TimerName): void {
    const id = this.#timers.get(name);
    if (id === undefined) return;
    this.#clock.clearTimeout(id);
    this.#timers.delete(name);
  }

  #missed(type: DoorSimEventType): Error {
    return new Error(
      `Cannot see the door's "${type}": its call ended (${this.#endReason ?? "power_off"})`,
    );
  }

  #emit(e: DoorSimEvent): void {
    this.#events.push(e);
    if (this.#waiters.length) {
      const ready = this.#waiters.filter((w) => w.type === e.type);
      this.#waiters = this.#waiters.filter((w) => w.type !== e.type);
      for (const w of ready) w.resolve(e);
    }
    this.#onEvent?.(e);
  }
}
