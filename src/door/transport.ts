/**
 * The door transport: one UDP socket on the door port, joined to the name-resolution group,
 * speaking the door protocol on the gateway's behalf (door-protocol.md §1–§4).
 *
 * - Per source IP, NS asks and CALL/CALLEND asks are rate limited (token buckets,
 *   {@linkcode DoorRateLimiter}); the excess is dropped and counted
 *   (`door_dropped_total{reason="rate_limited"}`) before anything else looks at it.
 * - Admission ({@linkcode DoorAdmission}): a refused door is dropped; an unknown one is served
 *   but leaves no trace; only a call that completed the handshake (CALLANSWER, then a CALLCONFIRM
 *   REPLY from the CALL's IP) reports the door learnable (`onConfirmed`).
 * - NS asks: answered (unicast, to the source) only for rooms the presence callback reports
 *   online; silence otherwise.
 * - Door ASKs (CALL, CALLEND): the first copy becomes an event; copies get the same answer again
 *   and never a second event ({@linkcode AskCache}).
 * - Door CALLCONFIRM ASKs: answered at once with a 61-byte REPLY.
 * - Our ASKs: resent every 100 ms, 6 sends at most ({@linkcode AskEngine}), matched by command,
 *   operation, parties and the door's IP.
 * - Keep-alive per call ({@linkcode KeepAlive}).
 * - Door media (CALLUP) is handed to `onMedia` before any decoding allocation.
 *
 * @module
 */

import { OnceFilter } from "../once.ts";
import { LogThrottle } from "../log_throttle.ts";
import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { DatagramPort, Endpoint } from "../net/port.ts";
import {
  type CallPacket,
  type CallParties,
  canonicalAddress,
  COMMAND,
  decodePacket,
  DEFAULT_MAGIC,
  displayAddress,
  encodeCall,
  hasMagic,
  magicBytes,
  MSG_TYPE,
  type NsAsk,
  nsReplyFor,
  OP,
  OP_NAME,
  PacketDecodeError,
  replyTo,
  roomKey,
  type SignalOp,
} from "../protocol/mod.ts";
import type { CallAnswer, DoorCall, DoorEvent, DoorHangup, DoorPort } from "../call/ports.ts";
import type { EventSink } from "../events/bus.ts";
import { AskCache } from "./ask_cache.ts";
import { describePacket } from "./trace.ts";
import { AskEngine } from "./ask_engine.ts";
import { KeepAlive } from "./keepalive.ts";
import { DEFAULT_DOOR_RATES, DoorRateLimiter, type DoorRates } from "./rate_limit.ts";
import type { DoorStanding } from "./registry.ts";

/**
 * Decides whether a door may speak to us (the door registry plugs in here): `known` (held at
 * that IP), `unknown` (served, but nothing is learned from this packet) or `refused` (dropped).
 */
export type DoorAdmission = (address: string, ip: string) => DoorStanding;

/** Options of {@linkcode DoorTransport}. */
export interface DoorTransportOptions {
  port: DatagramPort;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** @default {"XXXCID"} */
  magic?: string;
  /** Is a phone of this room (11-digit key) online? */
  isOnline: (roomKey: string) => boolean;
  /** The IPv4 the door should use to reach us. */
  localIpFor: (doorIp: string) => string;
  /** New door events (a CALL or a CALLEND ASK, never a retransmission). */
  onEvent: (event: DoorEvent) => void;
  /** Domain events: `door_seen`, and `door_trace` while someone listens. */
  events?: EventSink;
  /** Fixed `--lan-ip`, when set (else the CALL's callee IP, else `localIpFor`). */
  lanIp?: string | undefined;
  /** Door media datagrams (CALLUP), undecoded. The bytes are only valid during the call. */
  onMedia?: (data: Uint8Array, from: Endpoint) => void;
  /** Door admission; default: every door is known. */
  admit?: DoorAdmission;
  /**
   * A call completed the handshake: we answered CALLANSWER and the door replied to a CALLCONFIRM
   * from the CALL's IP (the registry learns the door here, and nowhere else).
   */
  onConfirmed?: (address: string, ip: string) => void;
  /** Per-source-IP limits of NS asks and of CALL/CALLEND asks. @default {DEFAULT_DOOR_RATES} */
  rates?: DoorRates;
  /** Silence window of the keep-alive. @default {6000} */
  lostAfterMs?: number;
}

/** Key of one call between a door and a room: door IP, door address, room address. */
export function partiesKey(ip: string, parties: Pick<CallParties, "caller" | "callee">): string {
  return `${ip}|${canonicalAddress(parties.caller)}|${canonicalAddress(parties.callee)}`;
}

/** Key of an ASK or REPLY of one operation within a call. */
export function askKey(
  ip: string,
  op: number,
  parties: Pick<CallParties, "caller" | "callee">,
): string {
  return `${partiesKey(ip, parties)}|${op}`;
}

/** What the transport keeps of a door's CALL for answering it. */
interface WireCall {
  readonly key: string;
  /** CALL bytes 57–61 (multicast flag, group IP), copied into CALLANSWER (§4). */
  readonly extra: { multicast: number; groupIp: string };
}

/** What the transport keeps of a door's CALLEND for replying to it. */
interface WireHangup {
  readonly key: string;
  readonly raw: Uint8Array;
}

/** Doors remembered for `door_seen` (bounded). */
const MAX_SEEN = 4096;
/** A door heard again is reported at most this often. */
const SEEN_EVERY_MS = 10_000;

/** A door-facing UDP endpoint of the gateway: the call layer's {@linkcode DoorPort}. */
export class DoorTransport implements DoorPort {
  #o: DoorTransportOptions;
  #magic: string;
  #magicBytes: Uint8Array;
  #cache = new AskCache();
  /** Bad datagrams are logged once per reason and source IP, counted always. */
  #logged = new OnceFilter();
  #asks: AskEngine;
  #keepAlives = new Map<string, KeepAlive>();
  #closed = false;
  #loop: Promise<void> | undefined;
  #c: Record<string, { value: number }>;
  #dropped = new Map<string, { value: number }>();
  #debug: boolean;
  #wireCalls = new WeakMap<DoorCall, WireCall>();
  #wireHangups = new WeakMap<DoorHangup, WireHangup>();
  #seen = new Map<string, { ip: string; at: number }>();
  #throttle: LogThrottle;
  #limits: DoorRateLimiter;
  /** Keep-alives whose door replied at least once. */
  #confirmed = new WeakSet<KeepAlive>();

  /** Wires the transport; call {@linkcode DoorTransport.listen} to receive. */
  constructor(options: DoorTransportOptions) {
    this.#o = options;
    this.#magic = options.magic ?? DEFAULT_MAGIC;
    this.#magicBytes = magicBytes(this.#magic);
    this.#debug = options.logger.enabled("debug");
    this.#throttle = new LogThrottle(options.clock);
    this.#limits = new DoorRateLimiter(options.clock, options.rates ?? DEFAULT_DOOR_RATES);
    this.#asks = new AskEngine(options.clock, (bytes, to) => this.#send(bytes, to));
    const m = options.metrics;
    this.#c = {
      received: m.counter(
        "door_datagrams_received_total",
        {},
        "Datagrams received on the door port",
      ),
      media: m.counter("door_media_received_total", {}, "Door media datagrams received"),
      nsAnswered: m.counter("door_ns_answered_total", {}, "NS asks answered"),
      nsIgnored: m.counter("door_ns_ignored_total", {}, "NS asks for rooms with no online phone"),
      duplicates: m.counter("door_ask_duplicates_total", {}, "Retransmitted door ASKs"),
      confirmsAnswered: m.counter(
        "door_confirms_answered_total",
        {},
        "Door CALLCONFIRM ASKs answered",
      ),
      unmatched: m.counter("door_unmatched_replies_total", {}, "REPLYs matching none of our ASKs"),
    };
  }

  /** The bound port. */
  get local(): Endpoint {
    return this.#o.port.local;
  }

  /** Our ASKs in flight. */
  get pendingAsks(): number {
    return this.#asks.pending;
  }

  /** Active keep-alives. */
  get keepAlives(): number {
    return this.#keepAlives.size;
  }

  /** Starts the receive loop. */
  listen(): void {
    this.#loop ??= this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      let msg: [Uint8Array, Endpoint];
      try {
        msg = await this.#o.port.receive();
      } catch (e) {
        if (this.#closed) break;
        this.#o.logger.debug("door receive failed", { error: e });
        continue;
      }
      this.handle(msg[0], msg[1]);
      this.#o.port.release(msg[0]);
    }
  }

  /** Handles one datagram (public for tests that inject bytes). Never throws. */
  handle(data: Uint8Array, from: Endpoint): void {
    this.#c.received!.value++;
    // Media fast path: door CALLUP, checked on four bytes and the magic, no decode.
    if (
      data.length >= 77 && data[8] === OP.CALLUP && data[6] === COMMAND.VIDEOTALK &&
      hasMagic(data, this.#magicBytes)
    ) {
      this.#c.media!.value++;
      this.#o.onMedia?.(data, from);
      return;
    }
    try {
      if (this.#o.events?.wants("door_trace")) this.#trace("in", data, from);
      this.#dispatch(data, from);
    } catch (e) {
      this.#bad("handler_error", from, String(e));
    }
  }

  /** Sends signalling (traced while someone listens). */
  #send(bytes: Uint8Array, to: Endpoint): void {
    if (this.#o.events?.wants("door_trace")) this.#trace("out", bytes, to);
    this.#o.port.send(bytes, to);
  }

  #trace(direction: "in" | "out", bytes: Uint8Array, peer: Endpoint): void {
    this.#o.events!.emit({
      type: "door_trace",
      at: this.#o.clock.wallNow(),
      direction,
      peer: `${peer.hostname}:${peer.port}`,
      summary: describePacket(bytes, this.#magic),
      length: bytes.length,
    });
  }

  /** Reports a door heard (first contact, a new IP, or every {@linkcode SEEN_EVERY_MS}). */
  #heard(address: string, ip: string): void {
    const events = this.#o.events;
    if (!events?.wants("door_seen")) return;
    const now = this.#o.clock.now();
    const key = displayAddress(address);
    const last = this.#seen.get(key);
    if (last && last.ip === ip && now - last.at < SEEN_EVERY_MS) return;
    if (!last && this.#seen.size >= MAX_SEEN) {
      // Forget the oldest entry (Map order is insertion order).
      this.#seen.delete(this.#seen.keys().next().value!);
    }
    this.#seen.delete(key);
    this.#seen.set(key, { ip, at: now });
    events.emit({ type: "door_seen", at: this.#o.clock.wallNow(), address: key, ip });
  }

  #bad(reason: string, from: Endpoint, detail?: string): void {
    let c = this.#dropped.get(reason);
    if (!c) {
      c = this.#o.metrics.counter(
        "door_dropped_total",
        { reason },
        "Door datagrams dropped, by reason",
      );
      this.#dropped.set(reason, c);
    }
    c.value++;
    if (this.#debug && this.#logged.first(`${reason}|${from.hostname}`)) {
      this.#o.logger.debug(
        "door datagram dropped (further drops for this reason and source are only counted)",
        {
          reason,
          from: from.hostname,
          port: from.port,
          detail,
        },
      );
    }
  }

  #dispatch(data: Uint8Array, from: Endpoint): void {
    const p = decodePacket(data, { magic: this.#magic });
    if (p instanceof PacketDecodeError) {
      this.#bad(p.code, from, `${p.message} (offset ${p.offset})`);
      return;
    }
    switch (p.kind) {
      case "ns_ask":
        return this.#onNsAsk(p, data, from);
      case "ns_reply":
        return this.#bad("unexpected_ns_reply", from);
      case "media":
        return this.#bad("unexpected_media", from);
      case "call":
        return this.#onCall(p, data, from);
    }
  }

  /** The door's standing, or `undefined` when the packet is dropped (and counted). */
  #admitted(
    address: string,
    ip: string,
    claimedIp: string,
    from: Endpoint,
  ): "known" | "unknown" | undefined {
    if (claimedIp !== ip) {
      this.#bad("ip_mismatch", from, `${address} claims ${claimedIp}`);
      return undefined;
    }
    const standing = this.#o.admit?.(address, ip) ?? "known";
    if (standing === "refused") {
      this.#bad("door_rejected", from, address);
      return undefined;
    }
    // Only a known door is reported as heard: a stranger's packets leave no trace but counters.
    if (standing === "known") this.#heard(address, ip);
    return standing;
  }

  /** Takes a token of `kind` for the source IP; a flood beyond it is dropped and counted. */
  #paced(kind: "ns" | "call", from: Endpoint): boolean {
    if (this.#limits.take(kind, from.hostname)) return true;
    this.#bad("rate_limited", from, kind);
    return false;
  }

  #onNsAsk(p: NsAsk, raw: Uint8Array, from: Endpoint): void {
    // An NS ask from an unknown door is answered (a new door must be able to call) but creates
    // and moves nothing: the registry learns only from an answered call.
    if (!this.#paced("ns", from)) return;
    if (!this.#admitted(p.asker, from.hostname, p.askerIp, from)) return;
    const room = p.target.startsWith("S") ? roomKey(p.target) : undefined;
    if (room === undefined || !this.#o.isOnline(room)) {
      this.#c.nsIgnored!.value++;
      const events = this.#o.events;
      if (
        room !== undefined && events?.wants("ns_unanswered") &&
        this.#throttle.allow(`${from.hostname}|${p.asker}|${room}`)
      ) {
        events.emit({
          type: "ns_unanswered",
          at: this.#o.clock.wallNow(),
          doorAddress: displayAddress(p.asker),
          doorIp: from.hostname,
          roomKey: room,
        });
      }
      return;
    }
    this.#c.nsAnswered!.value++;
    const ip = this.#o.localIpFor(from.hostname);
    this.#send(nsReplyFor(raw, { address: p.target, ip }), from);
  }

  #onCall(p: CallPacket, raw: Uint8Array, from: Endpoint): void {
    if (p.command !== COMMAND.VIDEOTALK) return this.#bad("unsupported_command", from);
    if (p.type === MSG_TYPE.REPLY) {
      const key = askKey(from.hostname, p.op, p);
      if (p.op === OP.CALLCONFIRM) {
        const ka = this.#keepAlives.get(partiesKey(from.hostname, p));
        if (!ka) {
          this.#c.unmatched!.value++;
          return;
        }
        // A sign of life of a door in a call with us (the registry refreshes only its own IP).
        this.#heard(p.caller, from.hostname);
        if (!this.#confirmed.has(ka)) {
          // The first reply of this call: the handshake is complete, the door may be learned.
          this.#confirmed.add(ka);
          this.#o.onConfirmed?.(displayAddress(p.caller), from.hostname);
        }
        ka.onReply();
        return;
      }
      if (this.#asks.onReply(key)) this.#heard(p.caller, from.hostname);
      else this.#c.unmatched!.value++;
      return;
    }
    // An ASK from the door.
    if ((p.op === OP.CALL || p.op === OP.CALLEND) && !this.#paced("call", from)) return;
    if (!this.#admitted(p.caller, from.hostname, p.callerIp, from)) return;
    if (p.op === OP.CALLCONFIRM) {
      this.#c.confirmsAnswered!.value++;
      this.#send(replyTo(raw, OP.CALLCONFIRM), from);
      return;
    }
    if (p.op !== OP.CALL && p.op !== OP.CALLEND) {
      return this.#bad(`unexpected_ask_${OP_NAME[p.op] ?? p.op}`, from);
    }
    const key = askKey(from.hostname, p.op, p);
    const seen = this.#cache.seen(key, from, this.#o.clock.now());
    if (!seen.fresh) {
      this.#c.duplicates!.value++;
      if (seen.answer) this.#send(seen.answer, seen.to);
      return;
    }
    // A new CALL is a new call: its CALLEND has the same bytes as the last call's, and must not
    // pass for a late copy of it (a visitor who presses, hangs up and presses again at once).
    if (p.op === OP.CALL) this.#cache.forget(askKey(from.hostname, OP.CALLEND, p));
    if (p.op === OP.CALL) {
      const call: DoorCall = {
        door: from,
        doorAddress: displayAddress(p.caller),
        roomAddress: displayAddress(p.callee),
        roomKey: p.callee.startsWith("S") ? roomKey(p.callee) : undefined,
        parties: this.#parties(p, from),
      };
      this.#wireCalls.set(call, {
        key,
        extra: { multicast: p.multicast ?? 0, groupIp: p.groupIp ?? "0.0.0.0" },
      });
      this.#o.onEvent({ type: "call", call });
    } else {
      const hangup: DoorHangup = {
        door: from,
        doorAddress: displayAddress(p.caller),
        roomKey: roomKey(p.callee),
      };
      this.#wireHangups.set(hangup, { key, raw: raw.slice() });
      this.#o.onEvent({ type: "hangup", hangup });
    }
  }

  /** Caller and callee of a CALL, with the IP the door should use for us as the callee's. */
  #parties(p: CallPacket, from: Endpoint): CallParties {
    const ourIp = this.#o.lanIp ??
      (p.calleeIp !== "0.0.0.0" ? p.calleeIp : this.#o.localIpFor(from.hostname));
    return { caller: p.caller, callerIp: p.callerIp, callee: p.callee, calleeIp: ourIp };
  }

  // ---- DoorPort (the call layer's view) ----

  /** Answers a door's CALL (and every copy of it) with CALLANSWER or LINEUSE. */
  answer(call: DoorCall, answer: CallAnswer): void {
    const w = this.#wireCalls.get(call);
    if (!w) return;
    const bytes = answer === "CALLANSWER"
      ? encodeCall(
        { type: MSG_TYPE.ASK, op: OP.CALLANSWER, ...call.parties, ...w.extra },
        this.#magic,
      )
      : encodeCall({ type: MSG_TYPE.ASK, op: OP.LINEUSE, ...call.parties }, this.#magic);
    this.#answerAsk(w.key, bytes);
  }

  /** CALLSTART; true on the door's reply. */
  start(call: DoorCall): Promise<boolean> {
    return this.#callAsk(OP.CALLSTART, call);
  }

  /** REMOTEOPENLOCK; true on the door's reply. */
  unlock(call: DoorCall): Promise<boolean> {
    return this.#callAsk(OP.REMOTEOPENLOCK, call);
  }

  /** Our CALLEND; true on the door's reply. */
  end(call: DoorCall): Promise<boolean> {
    return this.#callAsk(OP.CALLEND, call);
  }

  async #callAsk(op: SignalOp, call: DoorCall): Promise<boolean> {
    const ok = await this.ask(op, call.parties, call.door);
    if (!ok) {
      this.#o.metrics.inc("door_asks_unanswered_total", { op: OP_NAME[op] ?? String(op) });
    }
    return ok;
  }

  /** Replies to the door's CALLEND (and its copies). */
  confirmHangup(hangup: DoorHangup): void {
    const w = this.#wireHangups.get(hangup);
    if (w) this.#answerAsk(w.key, replyTo(w.raw, OP.CALLEND));
  }

  /** The CALLCONFIRM keep-alive of a call. */
  keepAlive(call: DoorCall, onLost: () => void): () => void {
    return this.startKeepAlive(call.parties, call.door, onLost);
  }

  /** The call is over: the same CALL bytes from this door start a new call from now on. */
  release(call: DoorCall): void {
    const w = this.#wireCalls.get(call);
    if (w) this.#cache.forget(w.key);
  }

  /** Answers a door ASK by its key and keeps the answer for its retransmissions. */
  #answerAsk(key: string, bytes: Uint8Array): void {
    const to = this.#cache.answer(key, bytes, this.#o.clock.now());
    if (to) this.#send(bytes, to);
  }

  /**
   * Sends our ASK of `op` for the call `parties` to the door at `to`, every 100 ms, 6 sends at
   * most; resolves `true` on the door's REPLY.
   */
  ask(op: SignalOp, parties: CallParties, to: Endpoint, signal?: AbortSignal): Promise<boolean> {
    const bytes = encodeCall({ type: MSG_TYPE.ASK, op, ...parties }, this.#magic);
    return this.#asks.ask(bytes, to, {
      key: askKey(to.hostname, op, parties),
      intervalMs: 100,
      maxSends: 6,
      signal,
    });
  }

  /** Starts the CALLCONFIRM keep-alive of a call; `onLost` fires once if the door falls silent. */
  startKeepAlive(parties: CallParties, to: Endpoint, onLost: () => void): () => void {
    const key = partiesKey(to.hostname, parties);
    this.#keepAlives.get(key)?.stop();
    const counter = new Uint8Array(4);
    const ka = new KeepAlive({
      clock: this.#o.clock,
      lostAfterMs: this.#o.lostAfterMs ?? 6000,
      send: (n) => {
        new DataView(counter.buffer).setUint32(0, n, true);
        this.#send(
          encodeCall({
            type: MSG_TYPE.ASK,
            op: OP.CALLCONFIRM,
            ...parties,
            counter: counter.toHex(),
          }, this.#magic),
          to,
        );
      },
      onLost: () => {
        if (this.#keepAlives.get(key) === ka) this.#keepAlives.delete(key);
        onLost();
      },
    });
    this.#keepAlives.set(key, ka);
    return () => {
      ka.stop();
      if (this.#keepAlives.get(key) === ka) this.#keepAlives.delete(key);
    };
  }

  /** Stops everything and closes the socket. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#asks.cancel();
    for (const ka of this.#keepAlives.values()) ka.stop();
    this.#keepAlives.clear();
    this.#o.port.close();
    await this.#loop;
  }
}
