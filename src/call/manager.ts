/**
 * The call manager: the imperative shell around {@linkcode transition}. It owns the live calls
 * (by id and by room), turns door events and phone requests into machine events, and runs the
 * machine's effects through injected ports (door transport, phone notifier, clock, records,
 * media).
 *
 * Busy (seed 占线): a room is in at most one call; a CALL for a room in a call with another door
 * is answered LINEUSE without disturbing the phones. A new CALL from the same door (the door
 * rebooted mid-call) ends the old call and proceeds.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { Endpoint } from "../net/port.ts";
import {
  type CallPacket,
  type CallParties,
  displayAddress,
  encodeCall,
  MSG_TYPE,
  OP,
  replyTo,
  roomKey as roomKeyOf,
  sameAddress,
} from "../protocol/mod.ts";
import type { DoorEvent } from "../door/transport.ts";
import { startCall, transition } from "./machine.ts";
import { ERROR_TEXT, type ErrorCode } from "../phone/messages.ts";
import type { CallEvent, CallOrder, CallState, Effect, EndReason, TimerName } from "./types.ts";
import { LIVE_PHASES } from "./types.ts";

/** The door side as the manager needs it (implemented by `DoorTransport`). */
export interface DoorPort {
  answer(key: string, bytes: Uint8Array): void;
  ask(
    op: typeof OP.CALLSTART | typeof OP.REMOTEOPENLOCK | typeof OP.CALLEND,
    parties: CallParties,
    to: Endpoint,
  ): Promise<boolean>;
  startKeepAlive(parties: CallParties, to: Endpoint, onLost: () => void): () => void;
  sendOnce(bytes: Uint8Array, to: Endpoint): void;
  /** Forgets a door ASK so that its next copy starts anew. */
  forget?(key: string): void;
}

/** A message to a phone about a call; the notifier adds `uid`, `roomAddress`, `community`. */
export interface CallMessage {
  readonly order: CallOrder;
  readonly doorAddress: string;
  readonly callId: string;
  readonly [field: string]: unknown;
}

/** The phone side as the manager needs it. */
export interface PhoneNotifier {
  /** Sends to the phone `uid` in the context of room `roomKey`; false when it is not connected. */
  send(uid: string, roomKey: string, message: CallMessage): boolean;
  /** Uids of the room's online phones (heard within the heartbeat timeout). */
  online(roomKey: string): string[];
}

/** Where call records go (implemented over Deno KV); failures are logged, never thrown. */
export interface CallRecorder {
  start(record: CallStartRecord): Promise<void>;
  update(callId: string, patch: Record<string, unknown>): Promise<void>;
  unlock(
    callId: string,
    entry: { uid: string; at: string; result: "success" | "fail"; reason?: string },
  ): Promise<void>;
}

/** The first write of a call record. */
export interface CallStartRecord {
  callId: string;
  door: string;
  doorIp: string;
  roomAddress: string;
  roomKey: string;
  ringAt: string;
}

/** What the media relay learns about a call. */
export interface MediaHooks {
  /** A call exists: its key, the door, the parties and the header form come later with media. */
  open(call: LiveCallInfo): void;
  /** Who receives door media, whose audio goes to the door. */
  route(callId: string, video: readonly string[], audioFrom: string | undefined): void;
  /** The call is over: stop forwarding at once. */
  close(callId: string): void;
}

/** Read-only facts about a live call. */
export interface LiveCallInfo {
  readonly callId: string;
  readonly mediaKey: string;
  readonly roomKey: string;
  readonly door: Endpoint;
  readonly parties: CallParties;
  readonly doorAddress: string;
}

/** Options of {@linkcode CallManager}. */
export interface CallManagerOptions {
  door: DoorPort;
  phones: PhoneNotifier;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  ringTimeoutMs: number;
  talkTimeoutMs: number;
  /** The gateway's IPv4 for a door (put at bytes 53–56 of what we send). */
  localIpFor: (doorIp: string) => string;
  /** Fixed `--lan-ip`, when set. */
  lanIp?: string | undefined;
  records?: CallRecorder;
  media?: MediaHooks;
  /** @default crypto.randomUUID */
  newId?: () => string;
  /** @default 128 random bits as hex */
  newMediaKey?: () => string;
}

interface LiveCall extends LiveCallInfo {
  state: CallState;
  callKey: string;
  /** CALL bytes 57–61 (multicast flag, group IP), copied into CALLANSWER (§4). */
  callExtra: { multicast: number; groupIp: string };
  hangupKey: string | undefined;
  hangupRaw: Uint8Array | undefined;
  timers: Map<TimerName, TimerId>;
  stopKeepAlive: (() => void) | undefined;
  queue: CallEvent[];
  running: boolean;
}

/** Phone request orders the manager handles. */
export type PhoneRequest = "call ok" | "talk" | "unlock" | "over" | "over success";

const REQUEST_EVENT = {
  "call ok": "phone_call_ok",
  "talk": "phone_talk",
  "unlock": "phone_unlock",
  "over": "phone_over",
  "over success": "phone_over_success",
} as const satisfies Record<PhoneRequest, CallEvent["type"]>;

/** Result of a phone request: accepted, or the phone protocol's error code. */
export type RequestResult = { ok: true; callId: string } | { ok: false; code: "not_in_call" };

function randomHex(bytes: number): string {
  return crypto.getRandomValues(new Uint8Array(bytes)).toHex();
}

/** Owns the live calls. */
export class CallManager {
  #o: CallManagerOptions;
  #calls = new Map<string, LiveCall>();
  #byRoom = new Map<string, LiveCall>();
  #ended = new Set<Promise<void>>();

  /** Creates the manager; it does nothing until events arrive. */
  constructor(options: CallManagerOptions) {
    this.#o = options;
  }

  /** Number of live calls. */
  get size(): number {
    return this.#calls.size;
  }

  /** Live call facts by id. */
  get(
    callId: string,
  ):
    | (LiveCallInfo & {
      phase: CallState["phase"];
      talker?: string | undefined;
      ringing: readonly string[];
    })
    | undefined {
    const c = this.#calls.get(callId);
    return c &&
      { ...infoOf(c), phase: c.state.phase, talker: c.state.talker, ringing: c.state.ringing };
  }

  /** The live call of a room. */
  byRoom(roomKey: string): (LiveCallInfo & { phase: CallState["phase"] }) | undefined {
    const c = this.#byRoom.get(roomKey);
    return c && { ...infoOf(c), phase: c.state.phase };
  }

  /** Every live call (for metrics, shutdown and invariant checks). */
  list(): (LiveCallInfo & {
    phase: CallState["phase"];
    ringing: readonly string[];
    talker?: string | undefined;
  })[] {
    return [...this.#calls.values()].map((c) => ({
      ...infoOf(c),
      phase: c.state.phase,
      ringing: c.state.ringing,
      talker: c.state.talker,
    }));
  }

  /** Handles an event of the door transport. */
  onDoorEvent(e: DoorEvent): void {
    if (e.type === "call") this.#onDoorCall(e.packet, e.from, e.key);
    else this.#onDoorHangup(e.packet, e.from, e.key, e.raw);
  }

  #parties(p: CallPacket, from: Endpoint): CallParties {
    const ourIp = this.#o.lanIp ??
      (p.calleeIp !== "0.0.0.0" ? p.calleeIp : this.#o.localIpFor(from.hostname));
    return { caller: p.caller, callerIp: p.callerIp, callee: p.callee, calleeIp: ourIp };
  }

  #onDoorCall(p: CallPacket, from: Endpoint, key: string): void {
    const room = p.callee.startsWith("S") ? roomKeyOf(p.callee) : undefined;
    const parties = this.#parties(p, from);
    if (room === undefined) {
      this.#o.metrics.inc("calls_refused_total", { reason: "not_a_room" });
      this.#o.door.answer(key, encodeCall({ type: MSG_TYPE.ASK, op: OP.LINEUSE, ...parties }));
      return;
    }
    const existing = this.#byRoom.get(room);
    if (existing) {
      if (
        existing.door.hostname === from.hostname && sameAddress(existing.parties.caller, p.caller)
      ) {
        // The same door calls again after its retransmission window: it rebooted mid-call.
        this.#o.logger.info("door called again during its call: ending the old call", {
          callId: existing.callId,
        });
        this.#dispatch(existing, { type: "door_recall" });
        if (this.#byRoom.get(room) === existing) {
          // Defensive: the old call did not end, so the room stays busy rather than doubled.
          this.#o.door.answer(key, encodeCall({ type: MSG_TYPE.ASK, op: OP.LINEUSE, ...parties }));
          return;
        }
      } else {
        this.#o.metrics.inc("calls_refused_total", { reason: "busy" });
        this.#o.logger.info("room busy: LINEUSE", {
          room,
          door: p.caller,
          busyWith: existing.doorAddress,
        });
        this.#o.door.answer(key, encodeCall({ type: MSG_TYPE.ASK, op: OP.LINEUSE, ...parties }));
        return;
      }
    }
    const call: LiveCall = {
      callId: this.#o.newId?.() ?? crypto.randomUUID(),
      mediaKey: this.#o.newMediaKey?.() ?? randomHex(16),
      roomKey: room,
      door: from,
      parties,
      doorAddress: displayAddress(p.caller),
      state: undefined as unknown as CallState,
      callKey: key,
      callExtra: { multicast: p.multicast ?? 0, groupIp: p.groupIp ?? "0.0.0.0" },
      hangupKey: undefined,
      hangupRaw: undefined,
      timers: new Map(),
      stopKeepAlive: undefined,
      queue: [],
      running: false,
    };
    this.#calls.set(call.callId, call);
    this.#byRoom.set(room, call);
    this.#o.metrics.inc("calls_total");
    this.#o.logger.info("door calls room", {
      callId: call.callId,
      door: call.doorAddress,
      doorIp: from.hostname,
      room,
    });
    this.#record(() =>
      this.#o.records?.start({
        callId: call.callId,
        door: call.doorAddress,
        doorIp: from.hostname,
        roomAddress: displayAddress(p.callee),
        roomKey: room,
        ringAt: new Date().toISOString(),
      })
    );
    this.#o.media?.open(infoOf(call));
    const phones = this.#o.phones.online(room);
    const t = startCall(phones, this.#ctx());
    call.state = t.state;
    this.#run(call, t.effects);
  }

  #onDoorHangup(p: CallPacket, from: Endpoint, key: string, raw: Uint8Array): void {
    const room = roomKeyOf(p.callee);
    const call = room === undefined ? undefined : this.#byRoom.get(room);
    if (
      !call || call.door.hostname !== from.hostname || !sameAddress(call.parties.caller, p.caller)
    ) {
      // A call we do not know (we restarted, or it ended already): just confirm the hang-up.
      this.#o.metrics.inc("door_hangups_unknown_total");
      this.#o.door.answer(key, replyTo(raw, OP.CALLEND));
      return;
    }
    call.hangupKey = key;
    call.hangupRaw = raw;
    this.#dispatch(call, { type: "door_hangup" });
  }

  /**
   * A phone's request about its room's call. The caller has checked login and binding; this
   * checks that the room is in a call with that door (and that call id, when given).
   */
  phoneRequest(
    uid: string,
    roomKey: string,
    order: PhoneRequest,
    doorAddress?: string,
    callId?: string,
  ): RequestResult {
    const call = this.#byRoom.get(roomKey);
    const live = call && (LIVE_PHASES.has(call.state.phase) || order === "over success");
    if (
      !call || !live ||
      (doorAddress !== undefined && !sameAddress(doorAddress, call.parties.caller)) ||
      (callId !== undefined && callId !== call.callId)
    ) {
      return { ok: false, code: "not_in_call" };
    }
    this.#dispatch(call, { type: REQUEST_EVENT[order], uid });
    return { ok: true, callId: call.callId };
  }

  /** A phone of these rooms went offline (socket closed or heartbeats stopped). */
  phoneLeft(uid: string, roomKeys: Iterable<string>): void {
    for (const room of roomKeys) {
      const call = this.#byRoom.get(room);
      if (call) this.#dispatch(call, { type: "phone_left", uid });
    }
  }

  /** A phone of this room came online: it joins a ringing call. */
  phoneJoined(uid: string, roomKey: string): void {
    const call = this.#byRoom.get(roomKey);
    if (call) this.#dispatch(call, { type: "phone_joined", uid });
  }

  /** Ends every call (CALLEND to doors, `over` to phones) and waits for the doors, at most `ms`. */
  async shutdown(ms = 1500): Promise<void> {
    for (const call of [...this.#calls.values()]) this.#dispatch(call, { type: "shutdown" });
    const pending = [...this.#ended];
    let timer: TimerId | undefined;
    await Promise.race([
      Promise.allSettled(pending),
      new Promise<void>((resolve) => (timer = this.#o.clock.setTimeout(resolve, ms))),
    ]);
    if (timer !== undefined) this.#o.clock.clearTimeout(timer);
  }

  #ctx() {
    return {
      now: this.#o.clock.now(),
      ringTimeoutMs: this.#o.ringTimeoutMs,
      talkTimeoutMs: this.#o.talkTimeoutMs,
    };
  }

  #dispatch(call: LiveCall, event: CallEvent): void {
    call.queue.push(event);
    if (call.running) return;
    call.running = true;
    try {
      while (call.queue.length) {
        const e = call.queue.shift()!;
        const before = call.state.phase;
        const t = transition(call.state, e, this.#ctx());
        call.state = t.state;
        if (before !== t.state.phase) {
          this.#o.logger.debug("call phase", {
            callId: call.callId,
            from: before,
            to: t.state.phase,
            event: e.type,
          });
        }
        this.#run(call, t.effects);
      }
    } finally {
      call.running = false;
    }
  }

  #message(call: LiveCall, order: CallOrder, extra: Record<string, unknown> = {}): CallMessage {
    return { order, doorAddress: call.doorAddress, callId: call.callId, ...extra };
  }

  #run(call: LiveCall, effects: readonly Effect[]): void {
    for (const fx of effects) {
      try {
        this.#effect(call, fx);
      } catch (e) {
        this.#o.logger.error("call effect failed", {
          callId: call.callId,
          effect: fx.type,
          error: e,
        });
      }
    }
  }

  #effect(call: LiveCall, fx: Effect): void {
    const o = this.#o;
    switch (fx.type) {
      case "answer_call":
        o.door.answer(
          call.callKey,
          encodeCall({ type: MSG_TYPE.ASK, op: OP[fx.op], ...call.parties, ...call.callExtra }),
        );
        return;
      case "door_ask": {
        const op = OP[fx.op];
        const done = o.door.ask(op, call.parties, call.door).then((ok) => {
          if (!ok) o.metrics.inc("door_asks_unanswered_total", { op: fx.op });
          const ev = fx.op === "CALLSTART"
            ? "callstart_result"
            : fx.op === "REMOTEOPENLOCK"
            ? "unlock_result"
            : "callend_result";
          if (this.#calls.get(call.callId) === call) this.#dispatch(call, { type: ev, ok });
        });
        if (fx.op === "CALLEND") {
          const p = done.finally(() => this.#ended.delete(p));
          this.#ended.add(p);
        }
        return;
      }
      case "reply_hangup":
        if (call.hangupKey && call.hangupRaw) {
          o.door.answer(call.hangupKey, replyTo(call.hangupRaw, OP.CALLEND));
        }
        return;
      case "keepalive":
        if (fx.on && !call.stopKeepAlive) {
          call.stopKeepAlive = o.door.startKeepAlive(call.parties, call.door, () => {
            call.stopKeepAlive = undefined;
            o.logger.warn("door lost: no CALLCONFIRM reply", {
              callId: call.callId,
              door: call.doorAddress,
            });
            this.#dispatch(call, { type: "door_lost" });
          });
        } else if (!fx.on) {
          call.stopKeepAlive?.();
          call.stopKeepAlive = undefined;
        }
        return;
      case "notify": {
        const extra: Record<string, unknown> = {};
        if (fx.order === "call") extra.mediaKey = call.mediaKey;
        if (fx.reason) extra.reason = fx.reason;
        if (fx.order === "error") {
          extra.code = fx.code;
          extra.ref = fx.ref;
          extra.message = ERROR_TEXT[fx.code as ErrorCode] ?? fx.code;
        }
        for (const uid of fx.to) {
          o.phones.send(uid, call.roomKey, this.#message(call, fx.order, extra));
        }
        return;
      }
      case "timer_start": {
        const old = call.timers.get(fx.name);
        if (old !== undefined) o.clock.clearTimeout(old);
        call.timers.set(
          fx.name,
          o.clock.setTimeout(() => {
            call.timers.delete(fx.name);
            this.#dispatch(call, { type: "timer", name: fx.name });
          }, fx.ms),
        );
        return;
      }
      case "timer_cancel": {
        const id = call.timers.get(fx.name);
        if (id !== undefined) o.clock.clearTimeout(id);
        call.timers.delete(fx.name);
        return;
      }
      case "media":
        o.media?.route(call.callId, fx.video, fx.audioFrom);
        return;
      case "record": {
        const at = new Date().toISOString();
        const patch = fx.field === "talkAt"
          ? { talkAt: at, answeredBy: fx.uid }
          : { answeredAt: at };
        this.#record(() => o.records?.update(call.callId, patch));
        return;
      }
      case "record_unlock":
        o.metrics.inc("unlocks_total", { result: fx.ok ? "success" : "fail" });
        for (const uid of fx.uids) {
          this.#record(() =>
            o.records?.unlock(call.callId, {
              uid,
              at: new Date().toISOString(),
              result: fx.ok ? "success" : "fail",
              ...(fx.ok ? {} : { reason: "door_timeout" }),
            })
          );
        }
        return;
      case "end":
        this.#end(call, fx.reason);
        return;
    }
  }

  #end(call: LiveCall, reason: EndReason): void {
    // A door that got CALLANSWER stopped resending its CALL long ago: the same bytes from it now
    // are the visitor pressing again. (A refused CALL keeps its LINEUSE for trailing copies.)
    // Not when the door's new CALL (same bytes, same key) is what ended this call.
    if (call.state.answered && reason !== "door_recalled") this.#o.door.forget?.(call.callKey);
    for (const id of call.timers.values()) this.#o.clock.clearTimeout(id);
    call.timers.clear();
    call.stopKeepAlive?.();
    call.stopKeepAlive = undefined;
    this.#calls.delete(call.callId);
    if (this.#byRoom.get(call.roomKey) === call) this.#byRoom.delete(call.roomKey);
    this.#o.media?.close(call.callId);
    this.#o.metrics.inc("calls_ended_total", { reason });
    this.#o.logger.info("call ended", { callId: call.callId, reason });
    this.#record(() =>
      this.#o.records?.update(call.callId, { endedAt: new Date().toISOString(), endReason: reason })
    );
  }

  #record(write: () => Promise<void> | undefined): void {
    try {
      write()?.catch((e) => this.#o.logger.error("call record write failed", { error: e }));
    } catch (e) {
      this.#o.logger.error("call record write failed", { error: e });
    }
  }
}

function infoOf(c: LiveCall): LiveCallInfo {
  return {
    callId: c.callId,
    mediaKey: c.mediaKey,
    roomKey: c.roomKey,
    door: c.door,
    parties: c.parties,
    doorAddress: c.doorAddress,
  };
}
