/**
 * The media relay (phone-protocol.md "Media", door-protocol.md §5): door media to the phones that
 * enabled video, phone audio to the door during talk. In process, on the hot path: no per-packet
 * allocation, logging or JSON; counters instead.
 *
 * - Latching: a phone's control datagram `{"order":"enable_video","uid","callId","mediaKey"}`
 *   latches the datagram's source address for that phone in that call (works behind NAT). Each
 *   phone has its own key in the call, so a datagram naming another phone's uid is dropped
 *   (`bad_key`). The same phone may re-latch from a new address with its key (network change)
 *   once its current sink is gone (a UDP address silent 3 s, a closed WebSocket) or after it
 *   re-asked on its authenticated socket; else `relatch_refused`.
 * - Door media (CALLUP) goes unchanged to every latched phone in the call's video set: all
 *   ringing phones, then only the talker after `talk begin`. Door audio only once there is a
 *   talker: a door talking for an unlock while the phones still ring is heard by nobody.
 * - Phone audio (CALLDOWN) goes to the door only from the talker during talk, at most at the
 *   real-time rate (a token bucket of {@linkcode PACE_BURST} packets refilled one per 8 ms; the
 *   excess is dropped as `paced`): addresses and IPs rewritten to the call's, timestamps that
 *   follow the real clock (max(last + 8 ms, time since the first packet)) and frame numbers +1,
 *   in the header form (77/86) the door uses. Sent from the door socket.
 * - Forwarding stops the moment a call is closed.
 *
 * @module
 */

import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { type Endpoint, endpointKey } from "../net/port.ts";
import {
  AUDIO_FRAME_MS,
  COMMAND,
  DATA_TYPE,
  encodeCall,
  hasMagic,
  LENGTH,
  magicBytes,
  mediaPayloadOffset,
  MSG_TYPE,
  OFFSET,
  OP,
  patchMediaHeader,
  type PayloadOffset,
  writeAddress,
  writeIp,
} from "../protocol/mod.ts";
import { MEDIA_CONTROL_OK, parseMediaControl } from "../phone/messages.ts";
import type { LiveCallInfo, MediaPort } from "../call/ports.ts";
import type { PhoneMedia } from "../phone/ports.ts";
import type { EventSink } from "../events/bus.ts";
import { FirstFrame } from "./first_frame.ts";
import { COLLECT_LENGTH, COUNTER, type MediaOffload } from "./offload.ts";

/** Why media was dropped (counter label). */
export const DROP = {
  unknown_source: "unknown_source",
  bad_key: "bad_key",
  relatch_refused: "relatch_refused",
  bad_control: "bad_control",
  not_media: "not_media",
  before_talk: "before_talk",
  not_talker: "not_talker",
  no_call: "no_call",
  door_audio_before_talk: "door_audio_before_talk",
  paced: "paced",
} as const;

/** A drop reason. */
export type DropReason = keyof typeof DROP;

/** Packet and byte counters of one call (and of the whole relay). */
export interface MediaCounters {
  doorIn: number;
  doorInBytes: number;
  toPhones: number;
  toPhonesBytes: number;
  phoneIn: number;
  phoneInBytes: number;
  toDoor: number;
  toDoorBytes: number;
  dropped: Record<DropReason, number>;
}

function newCounters(): MediaCounters {
  return {
    doorIn: 0,
    doorInBytes: 0,
    toPhones: 0,
    toPhonesBytes: 0,
    phoneIn: 0,
    phoneInBytes: 0,
    toDoor: 0,
    toDoorBytes: 0,
    dropped: Object.fromEntries(Object.keys(DROP).map((k) => [k, 0])) as Record<DropReason, number>,
  };
}

/** Where a phone receives media: a UDP address or its WebSocket. */
type Sink =
  | { kind: "udp"; to: Endpoint; key: string; lastHeard: number }
  | { kind: "ws"; send: (bytes: Uint8Array) => void; isOpen: () => boolean };

/**
 * Phone audio packets the relay forwards at once above the real-time rate (one per 8 ms): a
 * phone's jitter, not a flood.
 */
export const PACE_BURST = 16;

interface RelayCall {
  info: LiveCallInfo;
  /** Bytes 9–56 (caller/callee block) of what we send to the door. */
  parties48: Uint8Array;
  /** Header form of the door, learned from its first media packet. */
  form: PayloadOffset;
  /** `door_media` was emitted for this call. */
  formReported: boolean;
  sinks: Map<string, Sink>;
  /** Phones in the video set, in order (an array: iterated per packet without allocation). */
  video: string[];
  /** Latched sinks of the video set, rebuilt on change: the per-packet fan-out list. */
  fanout: Sink[];
  audioFrom: string | undefined;
  /** Last timestamp sent to the door (not wrapped; written as uint32). */
  outTs: number;
  outFrame: number;
  /** `now()` minus the timestamp of the first audio packet sent: timestamps follow the clock. */
  tsOrigin: number;
  /** Pacing of phone audio: tokens left and when they were counted. */
  paceTokens: number;
  paceAt: number;
  forcedFor: Set<string>;
  /** Phones that re-asked for UDP media on their authenticated socket: may re-latch at once. */
  relatchArmed: Set<string>;
  c: MediaCounters;
  /** The snapshot tap, until the call's first complete video frame is taken. */
  first: FirstFrame | undefined;
  /** Its slot in the native engine (`offload`), if any. */
  slot: number | undefined;
  /** The talker address the engine forwards audio from, if any. */
  talkerKey: string | undefined;
}

/** Options of {@linkcode MediaRelay}. */
export interface MediaRelayOptions {
  logger: Logger;
  metrics: Metrics;
  magic?: string;
  /** Sends a datagram from the phone media socket (8303). */
  sendToPhone: (bytes: Uint8Array, to: Endpoint) => void;
  /** Sends a datagram from the door socket (8302). */
  sendToDoor: (bytes: Uint8Array, to: Endpoint) => void;
  /** Monotonic ms. @default performance.now */
  now?: () => number;
  /** Wall time of events, epoch ms. @default Date.now */
  wallNow?: () => number;
  /** Domain events: `door_media` once per call (never per packet). */
  events?: EventSink;
  /**
   * A latched phone address must be silent this long before the same phone may latch from
   * another address with its key alone (a replayed control datagram cannot steal a live
   * stream). `enable_video` on the phone's signalling socket allows it at once. @default 3000
   */
  relatchAfterMs?: number;
  /**
   * The snapshot tap: called once per call with its first complete video frame (reassembled
   * from the door's chunks; the bytes are the caller's to keep). The relay stops looking once
   * the frame is taken, or after 100 frames without one.
   */
  onFirstFrame?: (callId: string, frame: Uint8Array, dataType: number) => void;
  /**
   * The native media engine: door media of a call whose phones all take UDP (once the snapshot
   * is taken and the door's form known) and the UDP talker's audio are forwarded there; this
   * relay keeps latching, routing and every other case, and merges the engine's counters.
   */
  offload?: MediaOffload;
}

const STANDARD_MAGIC = magicBytes("XXXCID");
const SCRATCH = 32;

/** The in-process media forwarder. */
export class MediaRelay implements MediaPort, PhoneMedia {
  #o: MediaRelayOptions;
  #magic: Uint8Array;
  #magicText: string;
  #calls = new Map<string, RelayCall>();
  #byDoorIp = new Map<string, RelayCall>();
  #byPhoneAddr = new Map<string, { call: RelayCall; uid: string }>();
  #byWsUid = new Map<string, RelayCall>();
  #total = newCounters();
  /** Ring of buffers for the one case that needs a copy: re-framing 77 ↔ 86 for the door. */
  #scratch = Array.from({ length: SCRATCH }, () => new Uint8Array(2048));
  #scratchAt = 0;
  #now: () => number;
  #relatchAfter: number;
  #collected = new Float64Array(COLLECT_LENGTH);
  #talkerState = new Float64Array(4);

  /** Creates the relay; register its totals in the metrics. */
  constructor(options: MediaRelayOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => performance.now());
    this.#relatchAfter = options.relatchAfterMs ?? 3000;
    this.#magicText = options.magic ?? "XXXCID";
    this.#magic = magicBytes(this.#magicText);
    options.metrics.collector(() => this.#render());
    options.metrics.gauge("media_calls", () => this.#calls.size, "Calls with media state");
  }

  /** Totals since start. */
  get totals(): Readonly<MediaCounters> {
    this.#collectAll();
    return this.#total;
  }

  /** Counters of a live call. */
  countersOf(callId: string): Readonly<MediaCounters> | undefined {
    const call = this.#calls.get(callId);
    if (call) this.#collect(call);
    return call?.c;
  }

  #collectAll(): void {
    if (this.#o.offload) { for (const call of this.#calls.values()) this.#collect(call); }
  }

  /** Merges the engine's counters of the call (read and reset there) and takes back its state. */
  #collect(call: RelayCall): void {
    const o = this.#o.offload;
    if (!o || call.slot === undefined) return;
    const b = this.#collected;
    o.collect(call.slot, b);
    for (const c of [call.c, this.#total]) {
      c.doorIn += b[COUNTER.doorIn]!;
      c.doorInBytes += b[COUNTER.doorInBytes]!;
      c.toPhones += b[COUNTER.toPhones]!;
      c.toPhonesBytes += b[COUNTER.toPhonesBytes]!;
      c.phoneIn += b[COUNTER.phoneIn]!;
      c.phoneInBytes += b[COUNTER.phoneInBytes]!;
      c.toDoor += b[COUNTER.toDoor]!;
      c.toDoorBytes += b[COUNTER.toDoorBytes]!;
      c.dropped.door_audio_before_talk += b[COUNTER.dropDoorAudio]!;
      c.dropped.paced += b[COUNTER.dropPaced]!;
      c.dropped.not_media += b[COUNTER.dropNotMedia]!;
    }
    const form = b[COUNTER.form];
    if (form === LENGTH.MEDIA_SHORT || form === LENGTH.MEDIA_LONG) call.form = form;
    if (call.talkerKey === undefined) return;
    const now = this.#now();
    call.outTs = b[COUNTER.outTs]!;
    call.outFrame = b[COUNTER.outFrame]!;
    const age = b[COUNTER.originAge]!;
    call.tsOrigin = age === age ? now - age : NaN;
    call.paceTokens = b[COUNTER.paceTokens]!;
    call.paceAt = now;
    const heard = b[COUNTER.heardAgo]!;
    const sink = call.audioFrom === undefined ? undefined : call.sinks.get(call.audioFrom);
    if (heard >= 0 && sink?.kind === "udp" && sink.key === call.talkerKey) {
      sink.lastHeard = now - heard;
    }
  }

  /**
   * Gives the engine the call's routes: door media when every phone of the video set takes UDP,
   * the snapshot is taken and the door's form known; the talker's audio when it takes UDP.
   */
  #sync(call: RelayCall): void {
    const o = this.#o.offload;
    if (!o || call.slot === undefined) return;
    try {
      const phones: Endpoint[] = [];
      let udpOnly = true;
      for (const s of call.fanout) {
        if (s.kind === "udp") phones.push(s.to);
        else udpOnly = false;
      }
      const native = udpOnly && call.first === undefined && call.formReported;
      o.routeDoor(
        call.slot,
        call.info.door,
        native,
        call.audioFrom !== undefined,
        call.form,
        phones,
      );
      const sink = call.audioFrom === undefined ? undefined : call.sinks.get(call.audioFrom);
      const key = sink?.kind === "udp" ? sink.key : undefined;
      if (key === call.talkerKey) return;
      this.#collect(call); // the old talker route's state comes back first
      call.talkerKey = key;
      const now = this.#now();
      const st = this.#talkerState;
      st[0] = call.outTs;
      st[1] = call.outFrame;
      st[2] = call.tsOrigin === call.tsOrigin ? now - call.tsOrigin : NaN;
      const tokens = call.paceTokens + (now - call.paceAt) / AUDIO_FRAME_MS;
      st[3] = tokens > PACE_BURST ? PACE_BURST : tokens;
      o.talker(call.slot, sink?.kind === "udp" ? sink.to : undefined, call.parties48, st);
    } catch (e) {
      // An address the engine cannot take (not IPv4): this call's media stays here.
      this.#o.logger.warn("cannot route this call's media natively", {
        callId: call.info.callId,
        error: e,
      });
      o.release(call.slot);
      call.slot = undefined;
      call.talkerKey = undefined;
    }
  }

  /**
   * Prometheus text of the totals. Per-call counters are not labels here (one series per call
   * would grow without bound and name calls to whoever scrapes): they are in the live state.
   */
  #render(): string {
    this.#collectAll();
    const lines: string[] = [];
    const block = (name: string, help: string, value: (c: MediaCounters) => number) => {
      lines.push(
        `# HELP ${name} ${help}`,
        `# TYPE ${name} counter`,
        `${name} ${value(this.#total)}`,
      );
    };
    block("media_door_packets_in_total", "Door media packets received", (c) => c.doorIn);
    block("media_door_bytes_in_total", "Door media bytes received", (c) => c.doorInBytes);
    block("media_phone_packets_out_total", "Media packets sent to phones", (c) => c.toPhones);
    block("media_phone_bytes_out_total", "Media bytes sent to phones", (c) => c.toPhonesBytes);
    block("media_phone_packets_in_total", "Media datagrams received from phones", (c) => c.phoneIn);
    block("media_phone_bytes_in_total", "Media bytes received from phones", (c) => c.phoneInBytes);
    block("media_door_packets_out_total", "Phone audio packets sent to doors", (c) => c.toDoor);
    block("media_door_bytes_out_total", "Phone audio bytes sent to doors", (c) => c.toDoorBytes);
    lines.push(
      "# HELP media_dropped_total Media dropped, by reason",
      "# TYPE media_dropped_total counter",
    );
    for (const reason of Object.keys(DROP) as DropReason[]) {
      lines.push(`media_dropped_total{reason="${reason}"} ${this.#total.dropped[reason]}`);
    }
    return lines.join("\n");
  }

  // ---- MediaHooks (from the call manager) ----

  /** A call started. */
  open(info: LiveCallInfo): void {
    const parties48 = new Uint8Array(48);
    writeAddress(parties48, 0, info.parties.caller);
    writeIp(parties48, 20, info.parties.callerIp);
    writeAddress(parties48, 24, info.parties.callee);
    writeIp(parties48, 44, info.parties.calleeIp);
    const call: RelayCall = {
      info,
      parties48,
      form: LENGTH.MEDIA_SHORT,
      formReported: false,
      sinks: new Map(),
      video: [],
      fanout: [],
      audioFrom: undefined,
      outTs: 0,
      outFrame: 0,
      tsOrigin: NaN,
      paceTokens: PACE_BURST,
      paceAt: 0,
      forcedFor: new Set(),
      relatchArmed: new Set(),
      c: newCounters(),
      first: this.#o.onFirstFrame ? new FirstFrame() : undefined,
      slot: this.#o.offload?.allocate(),
      talkerKey: undefined,
    };
    this.#calls.set(info.callId, call);
    this.#byDoorIp.set(info.door.hostname, call);
    this.#sync(call);
  }

  /** Who gets door media; whose audio goes to the door. */
  route(callId: string, video: readonly string[], audioFrom: string | undefined): void {
    const call = this.#calls.get(callId);
    if (!call) return;
    call.video = [...video];
    call.audioFrom = audioFrom;
    this.#refan(call);
  }

  /** The call ended: forget it at once. */
  close(callId: string): void {
    const call = this.#calls.get(callId);
    if (!call) return;
    this.#calls.delete(callId);
    if (call.slot !== undefined) {
      this.#collect(call);
      this.#o.offload!.release(call.slot);
      call.slot = undefined;
    }
    if (this.#byDoorIp.get(call.info.door.hostname) === call) {
      this.#byDoorIp.delete(call.info.door.hostname);
    }
    for (const [uid, sink] of call.sinks) {
      if (sink.kind === "udp" && this.#byPhoneAddr.get(sink.key)?.call === call) {
        this.#byPhoneAddr.delete(sink.key);
      }
      if (sink.kind === "ws" && this.#byWsUid.get(uid) === call) this.#byWsUid.delete(uid);
    }
    const c = call.c;
    this.#o.logger.info("call media", {
      callId,
      doorIn: c.doorIn,
      toPhones: c.toPhones,
      phoneIn: c.phoneIn,
      toDoor: c.toDoor,
      bytesIn: c.doorInBytes + c.phoneInBytes,
      bytesOut: c.toPhonesBytes + c.toDoorBytes,
      dropped: Object.fromEntries(Object.entries(c.dropped).filter(([, n]) => n > 0)),
    });
  }

  #refan(call: RelayCall): void {
    const out: Sink[] = [];
    for (const uid of call.video) {
      const s = call.sinks.get(uid);
      if (s) out.push(s);
    }
    call.fanout = out;
    this.#sync(call);
  }

  #drop(call: RelayCall | undefined, reason: DropReason): void {
    this.#total.dropped[reason]++;
    if (call) call.c.dropped[reason]++;
  }

  #latch(call: RelayCall, uid: string, sink: Sink): void {
    const old = call.sinks.get(uid);
    if (old?.kind === "udp" && (sink.kind !== "udp" || old.key !== sink.key)) {
      this.#byPhoneAddr.delete(old.key);
    }
    call.sinks.set(uid, sink);
    if (sink.kind === "udp") this.#byPhoneAddr.set(sink.key, { call, uid });
    else this.#byWsUid.set(uid, call);
    this.#refan(call);
    this.#collect(call);
    if (!call.forcedFor.has(uid) && call.c.doorIn > 0) {
      // A phone starts watching a stream already running: ask the door for an I-frame so that
      // the picture appears at once. (A stream that has not started yet begins with one.)
      call.forcedFor.add(uid);
      this.#o.sendToDoor(
        encodeCall(
          { type: MSG_TYPE.ASK, op: OP.FORCEIFRAME, ...call.info.parties },
          this.#magicText,
        ),
        call.info.door,
      );
    }
  }

  // ---- PhoneMedia (from the phone service) ----

  /**
   * WebSocket transport: door media to `send` while `isOpen` (a control datagram of the same
   * phone replaces an open WebSocket only after the phone re-asked for UDP on it).
   */
  enableWs(
    callId: string,
    uid: string,
    send: (bytes: Uint8Array) => void,
    isOpen: () => boolean = () => true,
  ): boolean {
    const call = this.#calls.get(callId);
    if (!call) return false;
    this.#latch(call, uid, { kind: "ws", send, isOpen });
    return true;
  }

  /** The phone asked for UDP media on its signalling socket: its next control may re-latch at once. */
  enableUdp(callId: string, uid: string): void {
    this.#calls.get(callId)?.relatchArmed.add(uid);
  }

  /** Audio from a phone's WebSocket. */
  wsAudio(uid: string, bytes: Uint8Array): void {
    const call = this.#byWsUid.get(uid);
    this.#total.phoneIn++;
    this.#total.phoneInBytes += bytes.length;
    if (!call) return this.#drop(undefined, "unknown_source");
    this.#phoneAudio(call, uid, bytes);
  }

  // ---- datagrams ----

  /** A datagram from the door socket that is door media (CALLUP). */
  onDoorMedia(bytes: Uint8Array, from: Endpoint): void {
    const call = this.#byDoorIp.get(from.hostname);
    if (!call) return this.#drop(undefined, "no_call");
    const n = bytes.length;
    call.c.doorIn++;
    call.c.doorInBytes += n;
    this.#total.doorIn++;
    this.#total.doorInBytes += n;
    const at = mediaPayloadOffset(bytes, n);
    if (at !== 0) {
      const changed = at !== call.form;
      call.form = at;
      if (!call.formReported) this.#reportForm(call, at);
      if (call.first !== undefined) this.#tap(call, bytes, at);
      if (changed && call.slot !== undefined) this.#sync(call);
    }
    if (
      call.audioFrom === undefined && bytes[OFFSET.DATA_TYPE] === DATA_TYPE.AUDIO &&
      bytes[OFFSET.DATA_TYPE + 1] === 0
    ) {
      return this.#drop(call, "door_audio_before_talk");
    }
    const fan = call.fanout;
    for (let i = 0; i < fan.length; i++) {
      const s = fan[i]!;
      if (s.kind === "udp") this.#o.sendToPhone(bytes, s.to);
      else s.send(bytes);
    }
    call.c.toPhones += fan.length;
    call.c.toPhonesBytes += n * fan.length;
    this.#total.toPhones += fan.length;
    this.#total.toPhonesBytes += n * fan.length;
  }

  /** The snapshot tap (only until the first frame is taken). */
  #tap(call: RelayCall, bytes: Uint8Array, at: number): void {
    const r = call.first!.push(bytes, at);
    if (r === "more") return;
    call.first = undefined;
    this.#sync(call); // the engine may take the door's media from now on
    if (r === "give_up") return;
    try {
      this.#o.onFirstFrame!(call.info.callId, r.bytes, r.dataType);
    } catch (e) {
      this.#o.logger.error("snapshot tap failed", { callId: call.info.callId, error: e });
    }
  }

  /** Once per call: the door's header form, for the door inventory. */
  #reportForm(call: RelayCall, form: PayloadOffset): void {
    call.formReported = true;
    this.#sync(call);
    this.#o.events?.emit({
      type: "door_media",
      at: this.#o.wallNow?.() ?? Date.now(),
      address: call.info.doorAddress,
      ip: call.info.door.hostname,
      headerForm: form,
    });
  }

  /** A datagram on the phone media port: a control JSON or phone audio. */
  onPhoneDatagram(bytes: Uint8Array, from: Endpoint): void {
    this.#total.phoneIn++;
    this.#total.phoneInBytes += bytes.length;
    if (bytes[0] === 0x7b /* '{' */) return this.#control(bytes, from);
    const key = endpointKey(from);
    const latched = this.#byPhoneAddr.get(key);
    if (!latched) return this.#drop(undefined, "unknown_source");
    const sink = latched.call.sinks.get(latched.uid);
    if (sink?.kind === "udp") sink.lastHeard = this.#now();
    this.#phoneAudio(latched.call, latched.uid, bytes);
  }

  #control(bytes: Uint8Array, from: Endpoint): void {
    const m = parseMediaControl(bytes);
    if ("error" in m) return this.#drop(undefined, "bad_control");
    const call = this.#calls.get(m.callId);
    if (!call) return this.#drop(undefined, "no_call");
    // Each phone's own key: a phone of the call cannot latch for another uid with its key.
    const want = call.info.mediaKeyOf(m.uid);
    if (want === undefined || !constantTimeEqual(m.mediaKey, want)) {
      return this.#drop(call, "bad_key");
    }
    if (!call.video.includes(m.uid) && call.audioFrom !== m.uid) {
      return this.#drop(call, "not_talker");
    }
    const key = endpointKey(from);
    this.#collect(call); // the engine knows when the talker was last heard
    const now = this.#now();
    const current = call.sinks.get(m.uid);
    if (current?.kind === "udp" && current.key === key) {
      current.lastHeard = now;
    } else {
      const armed = call.relatchArmed.delete(m.uid);
      // A live sink is not taken over by a datagram alone (it may be a replay from elsewhere):
      // a UDP address must have been silent, a WebSocket closed, unless the phone re-asked.
      const live = current?.kind === "udp"
        ? now - current.lastHeard < this.#relatchAfter
        : current?.kind === "ws" && current.isOpen();
      if (live && !armed) return this.#drop(call, "relatch_refused");
      this.#latch(call, m.uid, { kind: "udp", to: from, key, lastHeard: now });
    }
    this.#o.sendToPhone(MEDIA_CONTROL_OK, from);
  }

  #phoneAudio(call: RelayCall, uid: string, bytes: Uint8Array): void {
    const n = bytes.length;
    call.c.phoneIn++;
    call.c.phoneInBytes += n;
    if (
      n < LENGTH.MEDIA_SHORT || bytes[OFFSET.OP] !== OP.CALLDOWN ||
      bytes[OFFSET.COMMAND] !== COMMAND.VIDEOTALK ||
      !(hasMagic(bytes, this.#magic) || hasMagic(bytes, STANDARD_MAGIC))
    ) return this.#drop(call, "not_media");
    const at = mediaPayloadOffset(bytes, n);
    if (at === 0) return this.#drop(call, "not_media");
    if (call.audioFrom === undefined) return this.#drop(call, "before_talk");
    if (call.audioFrom !== uid) return this.#drop(call, "not_talker");
    // Pacing: at most the real-time rate (one packet per 8 ms) plus a small burst. Numbers only.
    const now = this.#now();
    let tokens = call.paceTokens + (now - call.paceAt) / AUDIO_FRAME_MS;
    if (tokens > PACE_BURST) tokens = PACE_BURST;
    call.paceAt = now;
    if (tokens < 1) {
      call.paceTokens = tokens;
      return this.#drop(call, "paced");
    }
    call.paceTokens = tokens - 1;
    // The door's timestamps follow the real clock: +8 ms per packet, never behind the time since
    // the first packet (a gap in the phone's audio is a gap for the door too).
    if (call.tsOrigin !== call.tsOrigin) call.tsOrigin = now - AUDIO_FRAME_MS; // NaN: first packet
    const elapsed = Math.floor(now - call.tsOrigin);
    const next = call.outTs + AUDIO_FRAME_MS;
    call.outTs = elapsed > next ? elapsed : next;
    call.outFrame = call.outFrame >= 65535 ? 1 : call.outFrame + 1;
    let out = bytes;
    if (at !== call.form) {
      // Re-frame into the door's header form (the only copy on this path).
      const dataLen = n - at;
      out = this.#scratch[this.#scratchAt]!.subarray(0, call.form + dataLen);
      this.#scratchAt = (this.#scratchAt + 1) % SCRATCH;
      out.set(bytes.subarray(0, LENGTH.MEDIA_SHORT), 0);
      out.fill(0, LENGTH.MEDIA_SHORT, call.form);
      out.set(bytes.subarray(at), call.form);
    }
    // Phones speak XXXCID; an OEM door may expect its own magic.
    if (this.#magic !== STANDARD_MAGIC) out.set(this.#magic, 0);
    patchMediaHeader(out, call.parties48, call.outTs >>> 0, call.outFrame);
    this.#o.sendToDoor(out, call.info.door);
    call.c.toDoor++;
    call.c.toDoorBytes += out.length;
    this.#total.toDoor++;
    this.#total.toDoorBytes += out.length;
  }
}

/** Compares two strings without an early exit. */
function constantTimeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return diff === 0;
}
