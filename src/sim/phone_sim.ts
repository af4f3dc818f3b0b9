/**
 * A scriptable phone for tests, installers and benchmarks: speaks the phone protocol
 * (phone-protocol.md) to a gateway over WebSocket, and its media over UDP or the WebSocket.
 *
 * - logs in on connect, heartbeats every `heartbeatMs`;
 * - on `call`: `call ok` (per script), `enable_video` (UDP: opens a media socket, sends the
 *   control datagram to the gateway's `mediaPort` and repeats it every 2 s), `talk`, `unlock`,
 *   `over` after the script's delays; answers a gateway `over` with `over success`;
 * - counts the door's XXXCID media it receives (by op and data type); after `talk begin` it can
 *   send G.711 CALLDOWN packets (64 bytes every 8 ms, timestamps +8, frame numbers +1);
 * - records every order received and sent as typed, timestamped {@linkcode PhoneEvent}s.
 *
 * Script timers run on the injected {@linkcode Clock}; `waitFor` timeouts are real time.
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../clock.ts";
import type { DatagramPort, Endpoint } from "../net/port.ts";
import { openUdpPort } from "../net/udp.ts";
import { linearToUlaw } from "./g711.ts";
import {
  AUDIO_FRAME_BYTES,
  AUDIO_FRAME_MS,
  DATA_TYPE,
  DEFAULT_MAGIC,
  encodeMedia,
  hasMagic,
  LENGTH,
  magicBytes,
  OFFSET,
  OP,
  roomKey,
} from "../protocol/mod.ts";
import {
  type CallMessage,
  encodeMediaControl,
  ERROR_CODE,
  GATEWAY_ORDERS,
  type GatewayMessage,
  type MediaTransport,
  parseGatewayMessage,
  PHONE_ORDERS,
  type PhoneOrder,
} from "../phone/messages.ts";

/** What the phone does when a call arrives. */
export const ANSWER_MODE = {
  /** Ring silently: never send `call ok`. */
  RING: "ring",
  /** Send `call ok` only. */
  CALLOK: "callok",
  /** Send `call ok`, then `talk` after `talkAfterS`. */
  TALK: "talk",
} as const;

/** An answer mode. */
export type AnswerMode = typeof ANSWER_MODE[keyof typeof ANSWER_MODE];

/** How the phone asks for the door's media (`none`: not at all). */
export type VideoMode = MediaTransport | "none";

/** When the phone stops heartbeating (simulates a phone going silent; the socket stays open). */
export type StopHeartbeats = boolean | "on_call" | "on_talk";

/** The phone's behaviour. All delays in seconds. */
export interface PhoneScript {
  /** @default {"talk"} */
  answer?: AnswerMode;
  /** Delay of `talk` after `call ok`. @default 1 */
  talkAfterS?: number;
  /**
   * `talk` again when the gateway answers it `error door_timeout` (the door did not reply to
   * CALLSTART in time), at most this many times, as a resident taps again. @default 0
   */
  talkRetries?: number;
  /** `unlock` N s after `talk begin` (or after the ring when the script does not talk). */
  unlockAfterS?: number;
  /** `over` N s after `talk begin` (or after the ring when the script does not talk). */
  hangupAfterS?: number;
  /** `over` N s after the ring unless talking by then (a decline). */
  declineAfterS?: number;
  /** Sent right after `call ok`. @default {"udp"} */
  enableVideo?: VideoMode;
  /** G.711 CALLDOWN packets every 8 ms after `talk begin` (needs a media transport). */
  sendAudio?: boolean;
  /** `true`: no heartbeat at all; `on_call` / `on_talk`: stop at that point. @default false */
  stopHeartbeats?: StopHeartbeats;
}

/** Options of {@linkcode PhoneSim}. */
export interface PhoneSimOptions {
  /** Signalling URL, `ws://host:port/phone` or `wss://…`. */
  url: string;
  /**
   * PEM certificates to trust for `wss://` besides the system's: the CA that signed the
   * gateway's certificate, or a self-signed certificate itself.
   */
  caCerts?: readonly string[];
  uid: string;
  token: string;
  /** Phone-side room address (`Y00010108090`). */
  roomAddress: string;
  community: string;
  /** Heartbeat period; default: the gateway's `heartbeatInterval`, else 2000. */
  heartbeatMs?: number;
  /** @default {{}} (answer and talk after 1 s, UDP video, no audio) */
  script?: PhoneScript;
  /** Timers of the script, heartbeats, keep-alives and audio. @default systemClock */
  clock?: Clock;
  /** Wall time for event timestamps shown to people. @default Date.now */
  wallClock?: () => number;
  /** Send `login` as soon as the socket opens. @default true */
  autoLogin?: boolean;
  /** Local address of the UDP media socket. @default {"0.0.0.0"} */
  mediaBindHost?: string;
  /** Where the gateway's media port is. @default the URL's host */
  mediaHost?: string;
  /** Period of the UDP control datagram. @default 2000 */
  mediaKeepAliveMs?: number;
  /** XXXCID magic of media packets. @default {"XXXCID"} */
  magic?: string;
  /** Called for every event, as it is recorded. */
  onEvent?: (e: PhoneEvent) => void;
}

/** Where a message travelled. */
export type Via = "ws" | "udp";

/** What every {@linkcode PhoneEvent} carries. */
export interface PhoneEventBase {
  /** `clock.now()` when recorded. */
  at: number;
  /** Wall time (ms since the epoch) when recorded. */
  time: number;
}

/** The phone sent an order (or raw text). */
export interface SentEvent extends PhoneEventBase {
  kind: "out";
  via: Via;
  /** `(raw)` when the text had no string `order`. */
  order: string;
  message: Record<string, unknown>;
  /** True for the media control datagram's keep-alive repeats (after the first of a call). */
  repeat?: boolean;
}

/** The phone received a valid gateway message. */
export interface ReceivedEvent extends PhoneEventBase {
  kind: "in";
  via: Via;
  order: GatewayMessage["order"];
  message: GatewayMessage;
}

/** The gateway sent something that breaks the spec (the phone does not react to it). */
export interface InvalidEvent extends PhoneEventBase {
  kind: "invalid";
  via: Via;
  text: string;
  error: string;
}

/** The signalling socket opened. */
export interface OpenEvent extends PhoneEventBase {
  kind: "open";
}

/** The signalling socket closed. */
export interface ClosedEvent extends PhoneEventBase {
  kind: "closed";
  code: number;
  reason: string;
}

/** A call ended (either side, or the connection). */
export interface CallEndEvent extends PhoneEventBase {
  kind: "call_end";
  call: CallSummary;
}

/** Anything else worth a line in a log (media socket opened, first video, send failure…). */
export interface NoteEvent extends PhoneEventBase {
  kind: "note";
  text: string;
}

/** Everything the simulator records. */
export type PhoneEvent =
  | SentEvent
  | ReceivedEvent
  | InvalidEvent
  | OpenEvent
  | ClosedEvent
  | CallEndEvent
  | NoteEvent;

/**
 * What the simulated phone saw of the media (whole session in {@linkcode PhoneSim.counters}, per
 * call in summaries); not the relay's `MediaCounters`.
 */
export interface PhoneMediaStats {
  /** Door video packets (data types 2–5). */
  videoPackets: number;
  /** Bytes of those datagrams. */
  videoBytes: number;
  /** Door audio packets (data type 1). */
  audioIn: number;
  /** CALLDOWN audio packets sent. */
  audioOut: number;
  /** XXXCID media datagrams by operation byte. */
  byOp: Record<number, number>;
  /** XXXCID media datagrams by data type. */
  byDataType: Record<number, number>;
  /** Datagrams / binary frames that were neither media nor a control answer. */
  other: number;
  /** `{"order":"enable_video ok"}` datagrams received. */
  controlOk: number;
  /** `clock.now()` of the last door video / audio packet, and of the last audio sent. */
  lastVideoAt?: number;
  lastAudioInAt?: number;
  lastAudioOutAt?: number;
  /** Header timestamps (ms) of the last door video / audio packet. */
  lastVideoTimestamp?: number;
  lastAudioInTimestamp?: number;
}

/** Where a call stands. */
export type CallPhase = "ringing" | "answered" | "talking" | "ending" | "ended";

/** One call as the phone saw it. */
export interface CallSummary {
  callId: string;
  doorAddress: string;
  mediaKey: string;
  phase: CallPhase;
  /** `clock.now()` of the `call`. */
  startedAt: number;
  endedAt?: number;
  endedBy?: "gateway" | "phone" | "connection" | "replaced" | "closed";
  /** `reason` of the gateway's `over`. */
  overReason?: string;
  transport?: MediaTransport;
  talked: boolean;
  /** `talk` sent again after `error door_timeout` ({@linkcode PhoneScript.talkRetries}). */
  talkRetries: number;
  /** `undefined`: not asked; then `true` / `false` after the answer. */
  unlocked?: boolean;
  unlockRequested: boolean;
  unlockFailReason?: string;
  /** Media control datagrams sent for this call. */
  controlSent: number;
  media: PhoneMediaStats;
  /** What went wrong against the script (an installer's exit code hangs on this). */
  problems: string[];
}

/** A predicate or an order / event kind for {@linkcode PhoneSim.waitFor}. */
export type EventMatch = string | ((e: PhoneEvent) => boolean);

const CALL_ORDERS: ReadonlySet<string> = new Set([
  PHONE_ORDERS.CALL_OK,
  PHONE_ORDERS.ENABLE_VIDEO,
  PHONE_ORDERS.TALK,
  PHONE_ORDERS.UNLOCK,
  PHONE_ORDERS.OVER,
  PHONE_ORDERS.OVER_SUCCESS,
]);

const DEFAULT_HEARTBEAT_MS = 2000;
const DEFAULT_KEEPALIVE_MS = 2000;
const MAX_AUDIO_CATCH_UP = 4;

function newCounters(): PhoneMediaStats {
  return {
    videoPackets: 0,
    videoBytes: 0,
    audioIn: 0,
    audioOut: 0,
    byOp: {},
    byDataType: {},
    other: 0,
    controlOk: 0,
  };
}

/** 64 bytes of μ-law: a 1 kHz tone at about −12 dBFS (8 samples per period, 8 periods). */
export const TONE_PAYLOAD: Uint8Array = (() => {
  const out = new Uint8Array(AUDIO_FRAME_BYTES);
  for (let i = 0; i < out.length; i++) {
    out[i] = linearToUlaw(8000 * Math.sin((2 * Math.PI * i) / 8));
  }
  return out;
})();

function checkDelay(name: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isFinite(v) || v < 0)) {
    throw new RangeError(`Cannot use ${name} ${v}: expected a number of seconds ≥ 0`);
  }
}

/**
 * Why a WebSocket did not open, from its error event: the runtime's reason (`invalid peer
 * certificate: UnknownIssuer`, `Connection refused (os error 111)`) without Deno's prefix.
 */
export function connectError(ev: Event): string {
  const message = (ev as ErrorEvent).message ?? "";
  const reason = message.replace(/^(NetworkError: )?failed to connect to WebSocket: /i, "").trim();
  return reason || "the connection failed";
}

/**
 * A simulated phone.
 *
 * @example
 * ```ts
 * const phone = new PhoneSim({ url: "ws://127.0.0.1:8080/phone", uid: "u1", token: "t",
 *   roomAddress: "Y00010108090", community: "花苑", script: { answer: "talk", hangupAfterS: 5 } });
 * await phone.start();
 * await phone.waitFor("call_end", 60_000);
 * await phone.close();
 * ```
 */
export class PhoneSim {
  /** Every event, in order. */
  readonly events: PhoneEvent[] = [];
  /** Media counters of the whole session. */
  readonly counters: PhoneMediaStats = newCounters();
  /** Every call, oldest first (the last one may still be running). */
  readonly calls: CallSummary[] = [];

  readonly #o: PhoneSimOptions;
  readonly #script:
    & Required<Pick<PhoneScript, "answer" | "talkAfterS" | "enableVideo">>
    & PhoneScript;
  readonly #clock: Clock;
  readonly #wall: () => number;
  readonly #magic: Uint8Array;
  readonly #mediaHost: string;
  readonly #keepAliveMs: number;
  #ws: WebSocket | undefined;
  #client: Deno.HttpClient | undefined;
  #wsClosed: Promise<void> = Promise.resolve();
  #udp: DatagramPort | undefined;
  #udpOpening: Promise<DatagramPort> | undefined;
  #udpLoop: Promise<void> = Promise.resolve();
  #closed = false;
  #loggedIn = false;
  #heartbeatInterval: number | undefined;
  #mediaPort: number | undefined;
  #heartbeatTimer: TimerId | undefined;
  #heartbeatsStopped = false;
  #timers = new Set<TimerId>();
  #callTimers = new Set<TimerId>();
  #call: CallSummary | undefined;
  #audioTimer: TimerId | undefined;
  #audioDue = 0;
  #audioTs = 0;
  #audioFrame = 0;
  #waiters = new Set<{ reject: (e: Error) => void }>();

  /** Validates the options; nothing is opened before {@linkcode PhoneSim.start}. */
  constructor(options: PhoneSimOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new RangeError(`Cannot use url "${options.url}": not a URL`);
    }
    if (url.protocol !== "ws:" && url.protocol !== "wss:") {
      throw new RangeError(`Cannot use url "${options.url}": expected ws:// or wss://`);
    }
    if (options.heartbeatMs !== undefined && !(options.heartbeatMs > 0)) {
      throw new RangeError(`Cannot use heartbeatMs ${options.heartbeatMs}: expected > 0`);
    }
    const script = options.script ?? {};
    for (const k of ["talkAfterS", "unlockAfterS", "hangupAfterS", "declineAfterS"] as const) {
      checkDelay(k, script[k]);
    }
    this.#script = {
      ...script,
      answer: script.answer ?? ANSWER_MODE.TALK,
      talkAfterS: script.talkAfterS ?? 1,
      enableVideo: script.enableVideo ?? "udp",
    };
    if (this.#script.sendAudio && this.#script.enableVideo === "none") {
      throw new RangeError(
        "Cannot send audio with enableVideo none: audio needs a media transport",
      );
    }
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#wall = options.wallClock ?? Date.now;
    this.#magic = magicBytes(options.magic ?? DEFAULT_MAGIC);
    this.#mediaHost = options.mediaHost ?? url.hostname.replace(/^\[(.*)\]$/, "$1");
    this.#keepAliveMs = options.mediaKeepAliveMs ?? DEFAULT_KEEPALIVE_MS;
  }

  /** The gateway's media port from `login ok` (undefined before). */
  get mediaPort(): number | undefined {
    return this.#mediaPort;
  }

  /** True after `login ok`. */
  get loggedIn(): boolean {
    return this.#loggedIn;
  }

  /** The running call, if any. */
  get call(): CallSummary | undefined {
    return this.#call;
  }

  /** Calls that ended. */
  get completedCalls(): number {
    return this.calls.filter((c) => c.phase === "ended").length;
  }

  /** The local address of the UDP media socket, once opened. */
  get mediaLocal(): Endpoint | undefined {
    return this.#udp?.local;
  }

  /** Opens the signalling socket; resolves once open (and `login` sent), rejects when it fails. */
  start(): Promise<void> {
    if (this.#ws) return Promise.reject(new Error("Cannot start: already started"));
    if (this.#closed) return Promise.reject(new Error("Cannot start: closed"));
    const ca = this.#o.caCerts;
    if (ca?.length) this.#client = Deno.createHttpClient({ caCerts: [...ca] });
    // Deno's WebSocket takes `{ client }` (its own CA); typed by hand, because a test that
    // references the DOM library changes the global WebSocket's constructor type.
    const WithClient = WebSocket as unknown as new (
      url: string,
      options: { client: Deno.HttpClient },
    ) => WebSocket;
    const ws = this.#client
      ? new WithClient(this.#o.url, { client: this.#client })
      : new WebSocket(this.#o.url);
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    let resolveClosed!: () => void;
    this.#wsClosed = new Promise((r) => resolveClosed = r);
    return new Promise<void>((resolve, reject) => {
      let opened = false;
      ws.onopen = () => {
        opened = true;
        this.#record({ kind: "open" });
        if (this.#o.autoLogin ?? true) this.login();
        resolve();
      };
      ws.onmessage = (ev: MessageEvent) => this.#onWsMessage(ev.data);
      ws.onerror = (ev: Event) => {
        if (!opened) reject(new Error(`Cannot connect to ${this.#o.url}: ${connectError(ev)}`));
      };
      ws.onclose = (ev: CloseEvent) => {
        this.#record({ kind: "closed", code: ev.code, reason: ev.reason });
        this.#onDisconnect();
        if (!opened) reject(new Error(`Cannot connect to ${this.#o.url}: closed (${ev.code})`));
        resolveClosed();
      };
    });
  }

  /**
   * Closes the WebSocket, the UDP socket and every timer; pending {@linkcode PhoneSim.waitFor}s
   * reject. Resolves when everything is released. Idempotent.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      if (this.#call && this.#call.phase !== "ended") this.#endCall("closed");
      this.#stopHeartbeatTimer();
      this.#stopAudio();
      for (const id of this.#timers) this.#clock.clearTimeout(id);
      this.#timers.clear();
      this.#callTimers.clear();
      const ws = this.#ws;
      if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) {
        try {
          ws.close(1000, "phone sim closed");
        } catch {
          // already closing
        }
      }
      for (const w of this.#waiters) w.reject(new Error("Cannot wait: phone sim closed"));
      this.#waiters.clear();
    }
    const udp = this.#udp ?? await this.#udpOpening?.catch(() => undefined);
    udp?.close();
    await this.#udpLoop;
    await this.#wsClosed;
    this.#client?.close();
    this.#client = undefined;
  }

  // ------------------------------------------------------------------ sending

  /** Sends any object as a JSON text frame (tests: malformed messages). False when not open. */
  send(obj: unknown): boolean {
    const text = JSON.stringify(obj);
    return this.#sendText(text ?? "", obj);
  }

  /** Sends raw text as a text frame. False when not open. */
  sendRaw(text: string): boolean {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return this.#sendText(text, parsed);
  }

  /**
   * Sends a phone order with the phone's identity (and, for call orders, the running call's
   * `doorAddress` and `callId`), in the seed's field order. `extra` fields win.
   */
  sendOrder(order: PhoneOrder, extra: Record<string, unknown> = {}): boolean {
    const call = this.#call;
    const msg: Record<string, unknown> = { order };
    if (CALL_ORDERS.has(order) && call) msg.doorAddress = call.doorAddress;
    msg.roomAddress = this.#o.roomAddress;
    msg.uid = this.#o.uid;
    msg.community = this.#o.community;
    if (order === PHONE_ORDERS.LOGIN) msg.token = this.#o.token;
    if (CALL_ORDERS.has(order) && call) msg.callId = call.callId;
    return this.send({ ...msg, ...extra });
  }

  /** Sends `login`. */
  login(): boolean {
    return this.sendOrder(PHONE_ORDERS.LOGIN);
  }

  /** Sends one `heartbeat`. */
  heartbeat(): boolean {
    return this.sendOrder(PHONE_ORDERS.HEARTBEAT);
  }

  /** Stops heartbeating (the phone goes silent; its socket stays open). */
  stopHeartbeats(): void {
    this.#heartbeatsStopped = true;
    this.#stopHeartbeatTimer();
    this.#note("heartbeats stopped");
  }

  /** Sends `call ok` for the running call. */
  callOk(): boolean {
    const call = this.#call;
    if (call && call.phase === "ringing") call.phase = "answered";
    return this.sendOrder(PHONE_ORDERS.CALL_OK);
  }

  /** Sends `talk` for the running call. */
  talk(): boolean {
    return this.sendOrder(PHONE_ORDERS.TALK);
  }

  /** Sends `unlock` for the running call. */
  unlock(): boolean {
    if (this.#call) this.#call.unlockRequested = true;
    return this.sendOrder(PHONE_ORDERS.UNLOCK);
  }

  /** Sends `over` (hang up, or decline while ringing) for the running call. */
  hangup(): boolean {
    const call = this.#call;
    if (call && call.phase !== "ended") {
      call.phase = "ending";
      this.#stopAudio();
    }
    return this.sendOrder(PHONE_ORDERS.OVER);
  }

  /**
   * Asks for the door's media: `enable_video` on the WebSocket; for UDP also opens the media
   * socket and sends the control datagram to the gateway's media port, repeated as a keep-alive.
   */
  async enableVideo(transport: MediaTransport = "udp"): Promise<void> {
    const call = this.#call;
    if (!call) {
      this.#note("enable_video: no call");
      return;
    }
    call.transport = transport;
    if (transport === "udp") {
      try {
        await this.#openUdp();
      } catch (e) {
        this.#note(`cannot open the media socket: ${e instanceof Error ? e.message : e}`);
        return;
      }
      if (this.#closed || this.#call !== call || call.phase === "ended") return;
    }
    this.sendOrder(PHONE_ORDERS.ENABLE_VIDEO, { transport });
    if (transport === "udp") this.#controlKeepAlive(call);
  }

  /** Starts sending CALLDOWN audio (64 bytes every 8 ms) on the call's media transport. */
  startAudio(): void {
    if (this.#audioTimer !== undefined || !this.#call?.transport) return;
    this.#audioDue = this.#clock.now();
    this.#audioTs = Math.floor(this.#clock.now()) >>> 0;
    this.#audioFrame = 0;
    this.#audioTick();
  }

  // ------------------------------------------------------------------ waiting

  /** A predicate: an event received with this order (and optional extra condition). */
  static received(
    order: string,
    pred?: (m: GatewayMessage) => boolean,
  ): (e: PhoneEvent) => boolean {
    return (e) => e.kind === "in" && e.order === order && (!pred || pred(e.message));
  }

  /** A predicate: an event sent with this order. */
  static sent(
    order: string,
    pred?: (m: Record<string, unknown>) => boolean,
  ): (e: PhoneEvent) => boolean {
    return (e) => e.kind === "out" && e.order === order && (!pred || pred(e.message));
  }

  /**
   * Resolves with the first event (from index `since`, default 0: past events count) that
   * matches: a string is an order sent or received, or an event kind (`call_end`, `closed`…).
   * Rejects after `timeoutMs` of real time, or when the simulator closes.
   */
  waitFor(match: EventMatch, timeoutMs = 5000, since = 0): Promise<PhoneEvent> {
    const test = typeof match === "function"
      ? match
      : (e: PhoneEvent) =>
        ((e.kind === "in" || e.kind === "out") && e.order === match) || e.kind === match;
    for (let i = since; i < this.events.length; i++) {
      const e = this.events[i]!;
      if (test(e)) return Promise.resolve(e);
    }
    if (this.#closed) return Promise.reject(new Error("Cannot wait: phone sim closed"));
    return new Promise<PhoneEvent>((resolve, reject) => {
      const waiter = {
        reject: (err: Error) => {
          clearTimeout(timer);
          this.#onEventWaiters.delete(check);
          reject(err);
        },
      };
      const check = (e: PhoneEvent) => {
        if (!test(e)) return;
        clearTimeout(timer);
        this.#onEventWaiters.delete(check);
        this.#waiters.delete(waiter);
        resolve(e);
      };
      const timer = setTimeout(() => {
        this.#onEventWaiters.delete(check);
        this.#waiters.delete(waiter);
        const what = typeof match === "string" ? `"${match}"` : "a matching event";
        reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#onEventWaiters.add(check);
      this.#waiters.add(waiter);
    });
  }

  /** Messages received with `order` (all when omitted). */
  messagesIn(order?: string): GatewayMessage[] {
    return this.events.flatMap((e) =>
      e.kind === "in" && (order === undefined || e.order === order) ? [e.message] : []
    );
  }

  /** Messages sent with `order` (all when omitted). */
  messagesOut(order?: string): Record<string, unknown>[] {
    return this.events.flatMap((e) =>
      e.kind === "out" && (order === undefined || e.order === order) ? [e.message] : []
    );
  }

  // ------------------------------------------------------------------ internals

  #onEventWaiters = new Set<(e: PhoneEvent) => void>();

  #record(e: DistributiveOmit<PhoneEvent, "at" | "time">): void {
    const event = { ...e, at: this.#clock.now(), time: this.#wall() } as PhoneEvent;
    this.events.push(event);
    try {
      this.#o.onEvent?.(event);
    } catch {
      // a printer's failure must not stop the phone
    }
    for (const w of [...this.#onEventWaiters]) w(event);
  }

  #note(text: string): void {
    this.#record({ kind: "note", text });
  }

  #sendText(text: string, parsed: unknown): boolean {
    const ws = this.#ws;
    const obj = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)
      ? parsed as Record<string, unknown>
      : { raw: text };
    const order = typeof obj.order === "string" ? obj.order : "(raw)";
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      this.#note(`cannot send "${order}": socket not open`);
      return false;
    }
    try {
      ws.send(text);
    } catch (e) {
      this.#note(`cannot send "${order}": ${e instanceof Error ? e.message : e}`);
      return false;
    }
    this.#record({ kind: "out", via: "ws", order, message: obj });
    return true;
  }

  #after(ms: number, fn: () => void, forCall = false): TimerId {
    const id = this.#clock.setTimeout(() => {
      this.#timers.delete(id);
      this.#callTimers.delete(id);
      if (!this.#closed) fn();
    }, ms);
    this.#timers.add(id);
    if (forCall) this.#callTimers.add(id);
    return id;
  }

  #clearCallTimers(): void {
    for (const id of this.#callTimers) {
      this.#clock.clearTimeout(id);
      this.#timers.delete(id);
    }
    this.#callTimers.clear();
  }

  #onWsMessage(data: unknown): void {
    if (this.#closed) return;
    if (typeof data === "string") {
      const m = parseGatewayMessage(data);
      if ("error" in m) {
        this.#record({
          kind: "invalid",
          via: "ws",
          text: data.slice(0, 512),
          error: m.error.message,
        });
        return;
      }
      this.#record({ kind: "in", via: "ws", order: m.order, message: m });
      this.#onGatewayMessage(m);
    } else if (data instanceof ArrayBuffer) {
      this.#onMedia(new Uint8Array(data), "ws");
    }
  }

  #onGatewayMessage(m: GatewayMessage): void {
    switch (m.order) {
      case GATEWAY_ORDERS.LOGIN_OK:
        this.#loggedIn = true;
        this.#heartbeatInterval = m.heartbeatInterval;
        this.#mediaPort = m.mediaPort;
        if (this.#script.stopHeartbeats === true) this.#heartbeatsStopped = true;
        this.#scheduleHeartbeat();
        break;
      case GATEWAY_ORDERS.CALL:
        this.#onCall(m);
        break;
      case GATEWAY_ORDERS.TALK_BEGIN:
        if (this.#isCurrent(m.callId)) this.#onTalkBegin();
        break;
      case GATEWAY_ORDERS.UNLOCK_SUCCESS:
        if (this.#call && this.#isCurrent(m.callId)) this.#call.unlocked = true;
        break;
      case GATEWAY_ORDERS.UNLOCK_FAIL:
        if (this.#call && this.#isCurrent(m.callId)) {
          this.#call.unlocked = false;
          this.#call.unlockFailReason = m.reason;
        }
        break;
      case GATEWAY_ORDERS.OVER: {
        // Always answered, for the call the gateway names.
        this.send({
          order: PHONE_ORDERS.OVER_SUCCESS,
          doorAddress: m.doorAddress,
          roomAddress: this.#o.roomAddress,
          uid: this.#o.uid,
          community: this.#o.community,
          callId: m.callId,
        });
        const call = this.#call;
        if (call && call.phase !== "ended" && this.#isCurrent(m.callId)) {
          call.overReason = m.reason;
          this.#endCall("gateway");
        }
        break;
      }
      case GATEWAY_ORDERS.OVER_SUCCESS:
        if (this.#call && this.#call.phase !== "ended" && this.#isCurrent(m.callId)) {
          this.#endCall("phone");
        }
        break;
      case GATEWAY_ORDERS.ERROR: {
        const call = this.#call;
        if (call && call.phase !== "ended") {
          const text = `error ${m.code}${m.ref ? ` (${m.ref})` : ""}: ${m.message}`;
          if (
            m.ref === PHONE_ORDERS.TALK && m.code === ERROR_CODE.DOOR_TIMEOUT &&
            call.talkRetries < (this.#script.talkRetries ?? 0) && call.phase !== "ending"
          ) {
            call.talkRetries++;
            this.#note(`${text}; talk again (${call.talkRetries})`);
            this.talk();
            break;
          }
          call.problems.push(text);
          if (m.ref === PHONE_ORDERS.OVER) this.#endCall("phone");
        }
        break;
      }
      default:
        break;
    }
  }

  #isCurrent(callId: string): boolean {
    return this.#call !== undefined && this.#call.callId === callId;
  }

  #onCall(m: CallMessage): void {
    const prev = this.#call;
    if (prev && prev.phase !== "ended") {
      if (prev.callId === m.callId) {
        this.#note(`duplicate call ${m.callId} ignored`);
        return;
      }
      prev.problems.push(`replaced by call ${m.callId}`);
      this.#endCall("replaced");
    }
    const call: CallSummary = {
      callId: m.callId,
      doorAddress: m.doorAddress,
      mediaKey: m.mediaKey,
      phase: "ringing",
      startedAt: this.#clock.now(),
      talked: false,
      talkRetries: 0,
      unlockRequested: false,
      controlSent: 0,
      media: newCounters(),
      problems: [],
    };
    this.#call = call;
    this.calls.push(call);
    const s = this.#script;
    if (s.stopHeartbeats === "on_call" && !this.#heartbeatsStopped) this.stopHeartbeats();
    if (s.answer !== ANSWER_MODE.RING) {
      this.callOk();
      if (s.enableVideo !== "none") void this.enableVideo(s.enableVideo);
    }
    if (s.answer === ANSWER_MODE.TALK) {
      this.#after(s.talkAfterS * 1000, () => {
        if (this.#call === call && (call.phase === "ringing" || call.phase === "answered")) {
          this.talk();
        }
      }, true);
    } else {
      this.#scheduleUnlockAndHangup(call);
    }
    if (s.declineAfterS !== undefined) {
      this.#after(s.declineAfterS * 1000, () => {
        if (this.#call === call && (call.phase === "ringing" || call.phase === "answered")) {
          this.hangup();
        }
      }, true);
    }
  }

  #scheduleUnlockAndHangup(call: CallSummary): void {
    const s = this.#script;
    const live = () => this.#call === call && call.phase !== "ended" && call.phase !== "ending";
    if (s.unlockAfterS !== undefined) {
      this.#after(s.unlockAfterS * 1000, () => {
        if (live()) this.unlock();
      }, true);
    }
    if (s.hangupAfterS !== undefined) {
      this.#after(s.hangupAfterS * 1000, () => {
        if (live()) this.hangup();
      }, true);
    }
  }

  #onTalkBegin(): void {
    const call = this.#call;
    if (!call || call.phase === "talking" || call.phase === "ended") return;
    call.phase = "talking";
    call.talked = true;
    const s = this.#script;
    if (s.stopHeartbeats === "on_talk" && !this.#heartbeatsStopped) this.stopHeartbeats();
    if (s.answer === ANSWER_MODE.TALK) {
      // The decline timer must not fire once talking: it checks the phase.
      this.#scheduleUnlockAndHangup(call);
    }
    if (s.sendAudio) this.startAudio();
  }

  #endCall(by: NonNullable<CallSummary["endedBy"]>): void {
    const call = this.#call;
    if (!call || call.phase === "ended") return;
    call.phase = "ended";
    call.endedBy = by;
    call.endedAt = this.#clock.now();
    this.#clearCallTimers();
    this.#stopAudio();
    const s = this.#script;
    if (s.answer === ANSWER_MODE.TALK && !call.talked && s.declineAfterS === undefined) {
      call.problems.push("no talk begin");
    }
    if (call.unlockRequested && call.unlocked !== true) {
      call.problems.push(
        call.unlocked === false ? `unlock fail: ${call.unlockFailReason}` : "unlock not answered",
      );
    }
    if (by === "connection") call.problems.push("connection closed during the call");
    this.#record({ kind: "call_end", call: structuredClone(call) });
  }

  #onDisconnect(): void {
    this.#loggedIn = false;
    this.#stopHeartbeatTimer();
    if (this.#call && this.#call.phase !== "ended" && !this.#closed) this.#endCall("connection");
  }

  #scheduleHeartbeat(): void {
    this.#stopHeartbeatTimer();
    if (this.#heartbeatsStopped || this.#closed) return;
    const ms = this.#o.heartbeatMs ??
      (this.#heartbeatInterval ? this.#heartbeatInterval * 1000 : DEFAULT_HEARTBEAT_MS);
    this.#heartbeatTimer = this.#after(ms, () => {
      this.#heartbeatTimer = undefined;
      if (this.#heartbeatsStopped || this.#ws?.readyState !== WebSocket.OPEN) return;
      this.heartbeat();
      this.#scheduleHeartbeat();
    });
  }

  #stopHeartbeatTimer(): void {
    if (this.#heartbeatTimer === undefined) return;
    this.#clock.clearTimeout(this.#heartbeatTimer);
    this.#timers.delete(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
  }

  // ------------------------------------------------------------------ media

  #openUdp(): Promise<DatagramPort> {
    if (this.#udp) return Promise.resolve(this.#udp);
    if (!this.#udpOpening) {
      this.#udpOpening = openUdpPort({ hostname: this.#o.mediaBindHost ?? "0.0.0.0", port: 0 })
        .then((port) => {
          if (this.#closed) {
            port.close();
            throw new Error("closed");
          }
          this.#udp = port;
          this.#note(`media socket ${port.local.hostname}:${port.local.port}`);
          this.#udpLoop = this.#receiveLoop(port);
          return port;
        });
      this.#udpOpening.catch(() => {});
    }
    return this.#udpOpening;
  }

  async #receiveLoop(port: DatagramPort): Promise<void> {
    for (;;) {
      let data: Uint8Array;
      try {
        [data] = await port.receive();
      } catch {
        return;
      }
      if (this.#closed) return;
      this.#onMedia(data, "udp");
    }
  }

  #gatewayMedia(): Endpoint | undefined {
    return this.#mediaPort ? { hostname: this.#mediaHost, port: this.#mediaPort } : undefined;
  }

  #controlKeepAlive(call: CallSummary): void {
    if (this.#closed || this.#call !== call || call.phase === "ended") return;
    const udp = this.#udp;
    const to = this.#gatewayMedia();
    if (!udp || !to) {
      this.#note("cannot send the media control datagram: no mediaPort from login ok");
      return;
    }
    const ctrl = { uid: this.#o.uid, callId: call.callId, mediaKey: call.mediaKey };
    udp.send(encodeMediaControl(ctrl), to);
    call.controlSent++;
    this.#record({
      kind: "out",
      via: "udp",
      order: PHONE_ORDERS.ENABLE_VIDEO,
      message: { order: PHONE_ORDERS.ENABLE_VIDEO, ...ctrl },
      repeat: call.controlSent > 1,
    });
    this.#after(this.#keepAliveMs, () => this.#controlKeepAlive(call), true);
  }

  #count(fn: (c: PhoneMediaStats) => void): void {
    fn(this.counters);
    if (this.#call && this.#call.phase !== "ended") fn(this.#call.media);
  }

  #onMedia(data: Uint8Array, via: Via): void {
    if (data.length > 0 && data[0] === 0x7b) {
      const text = new TextDecoder().decode(data);
      const m = parseGatewayMessage(text);
      if (!("error" in m) && m.order === GATEWAY_ORDERS.ENABLE_VIDEO_OK) {
        this.#count((c) => c.controlOk++);
        // Only the first answer of a call is worth an event; keep-alives repeat every 2 s.
        if (this.counters.controlOk === 1 || (this.#call && this.#call.media.controlOk === 1)) {
          this.#record({ kind: "in", via, order: m.order, message: m });
        }
      } else {
        this.#count((c) => c.other++);
        this.#record({
          kind: "invalid",
          via,
          text: text.slice(0, 512),
          error: "error" in m ? m.error.message : `unexpected "${m.order}" on the media path`,
        });
      }
      return;
    }
    if (!hasMagic(data, this.#magic) || data.length < LENGTH.MEDIA_SHORT) {
      this.#count((c) => c.other++);
      return;
    }
    const op = data[OFFSET.OP]!;
    const dataType = data[OFFSET.DATA_TYPE]! | (data[OFFSET.DATA_TYPE + 1]! << 8);
    const ts = (data[OFFSET.TIMESTAMP]! | (data[OFFSET.TIMESTAMP + 1]! << 8) |
      (data[OFFSET.TIMESTAMP + 2]! << 16) | (data[OFFSET.TIMESTAMP + 3]! << 24)) >>> 0;
    const now = this.#clock.now();
    const call = this.#call;
    const firstVideo = dataType >= DATA_TYPE.CIF_I && dataType <= DATA_TYPE.D1_P &&
      call !== undefined && call.phase !== "ended" && call.media.videoPackets === 0;
    this.#count((c) => {
      c.byOp[op] = (c.byOp[op] ?? 0) + 1;
      c.byDataType[dataType] = (c.byDataType[dataType] ?? 0) + 1;
      if (dataType === DATA_TYPE.AUDIO) {
        c.audioIn++;
        c.lastAudioInAt = now;
        c.lastAudioInTimestamp = ts;
      } else if (dataType >= DATA_TYPE.CIF_I && dataType <= DATA_TYPE.D1_P) {
        c.videoPackets++;
        c.videoBytes += data.length;
        c.lastVideoAt = now;
        c.lastVideoTimestamp = ts;
      }
    });
    if (firstVideo) this.#note(`first video packet (${via}, data type ${dataType})`);
  }

  #audioTick(): void {
    this.#audioTimer = undefined;
    const call = this.#call;
    if (this.#closed || !call || call.phase !== "talking" || !call.transport) return;
    const now = this.#clock.now();
    let sent = 0;
    while (this.#audioDue <= now && sent < MAX_AUDIO_CATCH_UP) {
      this.#sendAudioPacket(call);
      this.#audioDue += AUDIO_FRAME_MS;
      sent++;
    }
    // Far behind (a stalled event loop): skip rather than burst.
    if (this.#audioDue < now - 5 * AUDIO_FRAME_MS) this.#audioDue = now;
    const id = this.#after(Math.max(0, this.#audioDue - now), () => this.#audioTick());
    this.#audioTimer = id;
  }

  #sendAudioPacket(call: CallSummary): void {
    let deliver: (packet: Uint8Array) => void;
    if (call.transport === "ws") {
      const ws = this.#ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      deliver = (packet) => ws.send(packet);
    } else {
      const udp = this.#udp;
      const to = this.#gatewayMedia();
      if (!udp || !to) return;
      deliver = (packet) => udp.send(packet, to);
    }
    this.#audioFrame = this.#audioFrame >= 0xffff ? 1 : this.#audioFrame + 1;
    deliver(encodeMedia({
      op: OP.CALLDOWN,
      caller: call.doorAddress,
      callerIp: "0.0.0.0",
      callee: `S${roomKey(this.#o.roomAddress) ?? "00000000000"}`,
      calleeIp: "0.0.0.0",
      timestamp: this.#audioTs,
      dataType: DATA_TYPE.AUDIO,
      frameNo: this.#audioFrame,
      payload: TONE_PAYLOAD,
    }, this.#o.magic ?? DEFAULT_MAGIC));
    this.#audioTs = (this.#audioTs + AUDIO_FRAME_MS) >>> 0;
    const now = this.#clock.now();
    this.#count((c) => {
      c.audioOut++;
      c.lastAudioOutAt = now;
    });
  }

  #stopAudio(): void {
    if (this.#audioTimer === undefined) return;
    this.#clock.clearTimeout(this.#audioTimer);
    this.#timers.delete(this.#audioTimer);
    this.#audioTimer = undefined;
  }
}

/** `Omit` over each member of a union. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
