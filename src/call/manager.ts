/**
 * The call manager: the imperative shell around {@linkcode transition}. It owns the live calls
 * (by id and by room), turns door events and phone requests into machine events, and runs the
 * machine's effects through the ports of `ports.ts` (door, phones, media) and the injected clock.
 * What happens is emitted as events (`call_started`, `call_phase`, `call_answered`, `call_talk`,
 * `unlock_attempted`, `call_ended`, `call_refused`, `door_quirk`): records, metrics and call logs
 * subscribe. It builds no wire bytes.
 *
 * Unlock on doors that open only while talking: the injected {@linkcode DoorQuirks} says which
 * doors need CALLSTART before REMOTEOPENLOCK (the machine's `phone_unlock.talkFirst`); when a
 * call shows it (REMOTEOPENLOCK unanswered, answered after CALLSTART) the manager remembers the
 * door there and emits `door_quirk` once.
 *
 * Busy (seed 占线): a room is in at most one call; a CALL for a room in a call with another door
 * is answered LINEUSE without disturbing the phones. A new CALL from the same door (the door
 * rebooted mid-call) ends the old call and proceeds. The known door wins: when the room's call
 * came from a door the registry did not know (when its CALL arrived) and a known door calls,
 * the unknown door's call ends at once (`door_superseded`: LINEUSE, or CALLEND once answered)
 * and the known door's call proceeds; in every other case the first call keeps the room.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { EventSink } from "../events/bus.ts";
import { sameAddress } from "../protocol/address.ts";
import { MemoryDoorQuirks } from "./door_quirks.ts";
import { startCall, transition } from "./machine.ts";
import type { CallEvent, CallState, Effect, EndReason, TimerName } from "./types.ts";
import { isAnswered, LIVE_PHASES, ringGroupOf, talkerOf } from "./types.ts";
import type {
  CallControl,
  CallNotice,
  CallView,
  DoorCall,
  DoorEvent,
  DoorHangup,
  DoorPort,
  DoorQuirks,
  LiveCallInfo,
  MediaPort,
  PhoneNotifier,
  PhoneRequest,
  RemotePhones,
  RequestResult,
} from "./ports.ts";

/** Options of {@linkcode CallManager}. */
export interface CallManagerOptions {
  door: DoorPort;
  phones: PhoneNotifier;
  clock: Clock;
  logger: Logger;
  /** Where call events go (records, metrics and call logs subscribe there). */
  events: EventSink;
  ringTimeoutMs: number;
  talkTimeoutMs: number;
  media?: MediaPort;
  /** Phones of the room on other gateways (`--cluster`). @default none */
  remote?: RemotePhones;
  /**
   * Is this door known (held by the registry at that IP) now, as its CALL arrives? Only a known
   * door's call may replace an unknown door's. @default every door is known
   */
  isKnownDoor?: (address: string, ip: string) => boolean;
  /** What is known of doors' firmware (unlock needs talk). @default in memory, per process */
  quirks?: DoorQuirks;
  /**
   * Can push wake a phone of this room (a bound phone not connected, not in do-not-disturb,
   * with the webhook configured)? Then a CALL that finds no phone online is answered at once
   * and waits `wakeWindowMs` for a phone to connect. @default never
   */
  canWake?: (roomKey: string) => boolean;
  /** How long such a call waits for a phone to wake (at most the ring timeout). @default 20000 */
  wakeWindowMs?: number;
  /** @default crypto.randomUUID */
  newId?: () => string;
  /** A phone's media key in a call (one per phone and call). @default 128 random bits as hex */
  newMediaKey?: () => string;
}

interface LiveCall extends LiveCallInfo {
  /** Each phone's media key, made when it is first sent `call` (bounded by the ring group). */
  mediaKeys: Map<string, string>;
  state: CallState;
  /** The door side of the call (the door layer's handle). */
  doorCall: DoorCall;
  hangup: DoorHangup | undefined;
  /** Whether the registry knew the door when its CALL arrived. */
  known: boolean;
  timers: Map<TimerName, TimerId>;
  stopKeepAlive: (() => void) | undefined;
  queue: CallEvent[];
  running: boolean;
}

const REQUEST_EVENT = {
  "call ok": "phone_call_ok",
  "talk": "phone_talk",
  "unlock": "phone_unlock",
  "over": "phone_over",
  "over success": "phone_over_success",
} as const satisfies Record<PhoneRequest, CallEvent["type"]>;

function randomHex(bytes: number): string {
  return crypto.getRandomValues(new Uint8Array(bytes)).toHex();
}

/** Owns the live calls. */
export class CallManager implements CallControl {
  #o: CallManagerOptions;
  #calls = new Map<string, LiveCall>();
  #byRoom = new Map<string, LiveCall>();
  #ended = new Set<Promise<void>>();
  #quirks: DoorQuirks;

  /** Creates the manager; it does nothing until events arrive. */
  constructor(options: CallManagerOptions) {
    this.#o = options;
    this.#quirks = options.quirks ?? new MemoryDoorQuirks();
  }

  /** Number of live calls. */
  get size(): number {
    return this.#calls.size;
  }

  /** Live call facts by id. */
  get(callId: string): CallView | undefined {
    const c = this.#calls.get(callId);
    return c && viewOf(c);
  }

  /** The live call of a room. */
  byRoom(roomKey: string): CallView | undefined {
    const c = this.#byRoom.get(roomKey);
    return c && viewOf(c);
  }

  /** Every live call (live state, shutdown and invariant checks). */
  list(): CallView[] {
    return [...this.#calls.values()].map(viewOf);
  }

  /** Handles an event of the door side. */
  onDoorEvent(e: DoorEvent): void {
    if (e.type === "call") this.#onDoorCall(e.call);
    else this.#onDoorHangup(e.hangup);
  }

  #refuse(d: DoorCall, reason: "not_a_room" | "busy"): void {
    this.#o.door.answer(d, "LINEUSE");
    this.#o.events.emit({
      type: "call_refused",
      at: this.#o.clock.wallNow(),
      doorAddress: d.doorAddress,
      doorIp: d.door.hostname,
      roomAddress: d.roomAddress,
      reason,
    });
  }

  #onDoorCall(d: DoorCall): void {
    const room = d.roomKey;
    if (room === undefined) return this.#refuse(d, "not_a_room");
    const known = this.#o.isKnownDoor?.(d.doorAddress, d.door.hostname) ?? true;
    const existing = this.#byRoom.get(room);
    if (existing && known && !existing.known && !sameDoor(existing, d)) {
      // A door the registry did not know holds the room; a known door calls: the known one wins.
      this.#o.logger.warn("a known door called a room held by an unknown door: its call ends", {
        callId: existing.callId,
        unknownDoor: existing.doorAddress,
        unknownIp: existing.door.hostname,
        knownDoor: d.doorAddress,
        knownIp: d.door.hostname,
      });
      this.#dispatch(existing, { type: "door_superseded" });
      if (this.#byRoom.get(room) === existing) return this.#refuse(d, "busy");
    } else if (existing) {
      if (sameDoor(existing, d)) {
        // The same door calls again after its retransmission window: it rebooted mid-call.
        this.#o.logger.info("door called again during its call: ending the old call", {
          callId: existing.callId,
        });
        this.#dispatch(existing, { type: "door_recall" });
        if (this.#byRoom.get(room) === existing) {
          // Defensive: the old call did not end, so the room stays busy rather than doubled.
          this.#o.door.answer(d, "LINEUSE");
          return;
        }
      } else {
        return this.#refuse(d, "busy");
      }
    }
    const mediaKeys = new Map<string, string>();
    const call: LiveCall = {
      callId: this.#o.newId?.() ?? crypto.randomUUID(),
      mediaKeys,
      mediaKeyOf: (uid) => mediaKeys.get(uid),
      roomKey: room,
      door: d.door,
      parties: d.parties,
      doorAddress: d.doorAddress,
      state: undefined as unknown as CallState,
      doorCall: d,
      hangup: undefined,
      known,
      timers: new Map(),
      stopKeepAlive: undefined,
      queue: [],
      running: false,
    };
    this.#calls.set(call.callId, call);
    this.#byRoom.set(room, call);
    const phones = this.#online(room);
    // Nobody online, but push can wake a phone: the door is answered at once (see machine).
    const wake = phones.length === 0 && (this.#o.canWake?.(room) ?? false);
    const at = this.#o.clock.wallNow();
    this.#o.events.emit({
      type: "call_started",
      at,
      callId: call.callId,
      doorAddress: call.doorAddress,
      doorIp: d.door.hostname,
      roomAddress: d.roomAddress,
      roomKey: room,
      ...(wake ? { wakeBy: at + this.#wakeWindowMs() } : {}),
    });
    this.#o.media?.open(infoOf(call));
    const t = startCall(phones, this.#ctx(), wake);
    call.state = t.state;
    this.#phase(call, "new", "door_call");
    this.#run(call, t.effects);
  }

  #onDoorHangup(h: DoorHangup): void {
    const call = h.roomKey === undefined ? undefined : this.#byRoom.get(h.roomKey);
    if (!call || call.door.hostname !== h.door.hostname || call.doorAddress !== h.doorAddress) {
      // A call we do not know (we restarted, or it ended already): just confirm the hang-up.
      this.#o.door.confirmHangup(h);
      return;
    }
    call.hangup = h;
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
      (doorAddress !== undefined && !sameAddress(doorAddress, call.doorAddress)) ||
      (callId !== undefined && callId !== call.callId)
    ) {
      return { ok: false, code: "not_in_call" };
    }
    const event: CallEvent = order === "unlock"
      ? { type: "phone_unlock", uid, talkFirst: this.#quirks.needsTalkForUnlock(call.doorAddress) }
      : { type: REQUEST_EVENT[order], uid };
    this.#dispatch(call, event);
    return { ok: true, callId: call.callId };
  }

  /** A phone of these rooms went offline (socket closed, heartbeats stopped, or unbound). */
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

  /**
   * Ends one call from the gateway's side (the console's "hang up" of a stuck call): CALLEND to
   * the door, `over` to its phones, recorded as `admin_hangup`. False when no such call.
   */
  hangUp(callId: string): boolean {
    const call = this.#calls.get(callId);
    if (!call) return false;
    this.#dispatch(call, { type: "shutdown", reason: "admin_hangup" });
    return true;
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

  /** The room's phones here, then those on other gateways. */
  #online(room: string): string[] {
    const here = this.#o.phones.online(room);
    const remote = this.#o.remote?.online(room) ?? [];
    return remote.length ? [...here, ...remote.filter((u) => !here.includes(u))] : here;
  }

  /** To the phone here, else on another gateway. */
  #send(call: LiveCall, uid: string, notice: CallNotice): void {
    if (this.#o.phones.send(uid, call.roomKey, notice)) return;
    this.#o.remote?.send(uid, call.roomKey, notice, infoOf(call));
  }

  #wakeWindowMs(): number {
    return Math.min(this.#o.wakeWindowMs ?? 20_000, this.#o.ringTimeoutMs);
  }

  #ctx() {
    return {
      now: this.#o.clock.now(),
      ringTimeoutMs: this.#o.ringTimeoutMs,
      talkTimeoutMs: this.#o.talkTimeoutMs,
      wakeWindowMs: this.#wakeWindowMs(),
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
        if (before !== t.state.phase) this.#phase(call, before, e.type);
        this.#run(call, t.effects);
      }
    } finally {
      call.running = false;
    }
  }

  #phase(call: LiveCall, from: string, cause: string): void {
    this.#o.events.emit({
      type: "call_phase",
      at: this.#o.clock.wallNow(),
      callId: call.callId,
      from,
      to: call.state.phase,
      cause,
    });
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

  #ask(call: LiveCall, op: "CALLSTART" | "REMOTEOPENLOCK" | "CALLEND"): void {
    const door = this.#o.door;
    const asked = op === "CALLSTART"
      ? door.start(call.doorCall)
      : op === "REMOTEOPENLOCK"
      ? door.unlock(call.doorCall)
      : door.end(call.doorCall);
    const type = op === "CALLSTART"
      ? "callstart_result"
      : op === "REMOTEOPENLOCK"
      ? "unlock_result"
      : "callend_result";
    const done = asked.then((ok) => {
      if (this.#calls.get(call.callId) === call) this.#dispatch(call, { type, ok });
    });
    if (op === "CALLEND") {
      const p = done.finally(() => this.#ended.delete(p));
      this.#ended.add(p);
    }
  }

  #notify(call: LiveCall, fx: Extract<Effect, { type: "notify" }>): void {
    const base = { doorAddress: call.doorAddress, callId: call.callId };
    let notice: CallNotice;
    switch (fx.order) {
      case "call":
        // Each phone its own key: one phone's key cannot latch another phone's media.
        for (const uid of fx.to) {
          let mediaKey = call.mediaKeys.get(uid);
          if (mediaKey === undefined) {
            mediaKey = this.#o.newMediaKey?.() ?? randomHex(16);
            call.mediaKeys.set(uid, mediaKey);
          }
          this.#send(call, uid, { ...base, order: "call", mediaKey });
        }
        return;
      case "over":
        notice = { ...base, order: "over", reason: fx.reason as CallNoticeReason };
        break;
      case "unlock fail":
        notice = { ...base, order: "unlock fail", ...(fx.reason ? { reason: fx.reason } : {}) };
        break;
      case "error":
        notice = {
          ...base,
          order: "error",
          code: fx.code as CallNoticeCode,
          ref: fx.ref ?? "",
        };
        break;
      default:
        notice = { ...base, order: fx.order };
    }
    for (const uid of fx.to) this.#send(call, uid, notice);
  }

  #effect(call: LiveCall, fx: Effect): void {
    const o = this.#o;
    switch (fx.type) {
      case "answer_call":
        o.door.answer(call.doorCall, fx.op);
        return;
      case "door_ask":
        this.#ask(call, fx.op);
        return;
      case "reply_hangup":
        if (call.hangup) o.door.confirmHangup(call.hangup);
        return;
      case "keepalive":
        if (fx.on && !call.stopKeepAlive) {
          call.stopKeepAlive = o.door.keepAlive(call.doorCall, () => {
            call.stopKeepAlive = undefined;
            this.#dispatch(call, { type: "door_lost" });
          });
        } else if (!fx.on) {
          call.stopKeepAlive?.();
          call.stopKeepAlive = undefined;
        }
        return;
      case "notify":
        this.#notify(call, fx);
        return;
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
      case "record":
        o.events.emit({
          type: fx.field === "talkAt" ? "call_talk" : "call_answered",
          at: o.clock.wallNow(),
          callId: call.callId,
          uid: fx.uid,
        });
        return;
      case "record_unlock":
        for (const uid of fx.uids) {
          o.events.emit({
            type: "unlock_attempted",
            at: o.clock.wallNow(),
            uid,
            roomAddress: `Y${call.roomKey}`,
            doorAddress: call.doorAddress,
            callId: call.callId,
            result: fx.ok ? "success" : "fail",
            ...(fx.ok ? {} : { reason: "door_timeout" }),
          });
        }
        return;
      case "door_quirk":
        this.#learnQuirk(call);
        return;
      case "end":
        this.#end(call, fx.reason);
        return;
    }
  }

  /** The call showed that its door opens the lock only while talking: remember it, once. */
  #learnQuirk(call: LiveCall): void {
    if (this.#quirks.needsTalkForUnlock(call.doorAddress)) return;
    this.#quirks.setNeedsTalkForUnlock(call.doorAddress);
    this.#o.logger.info("door opens its lock only while talking: unlocks send CALLSTART first", {
      callId: call.callId,
      door: call.doorAddress,
      doorIp: call.door.hostname,
    });
    this.#o.events.emit({
      type: "door_quirk",
      at: this.#o.clock.wallNow(),
      address: call.doorAddress,
      ip: call.door.hostname,
      needsTalkForUnlock: true,
    });
  }

  #end(call: LiveCall, reason: EndReason): void {
    // A door that got CALLANSWER stopped resending its CALL long ago: the same bytes from it now
    // are the visitor pressing again. (A refused CALL keeps its LINEUSE for trailing copies.)
    // Not when the door's new CALL (same bytes) is what ended this call.
    if (isAnswered(call.state) && reason !== "door_recalled") this.#o.door.release(call.doorCall);
    for (const id of call.timers.values()) this.#o.clock.clearTimeout(id);
    call.timers.clear();
    call.stopKeepAlive?.();
    call.stopKeepAlive = undefined;
    this.#calls.delete(call.callId);
    if (this.#byRoom.get(call.roomKey) === call) this.#byRoom.delete(call.roomKey);
    this.#o.media?.close(call.callId);
    this.#o.events.emit({
      type: "call_ended",
      at: this.#o.clock.wallNow(),
      callId: call.callId,
      roomKey: call.roomKey,
      reason,
    });
  }
}

function sameDoor(call: LiveCall, d: DoorCall): boolean {
  return call.door.hostname === d.door.hostname && call.doorAddress === d.doorAddress;
}

type CallNoticeReason = Extract<CallNotice, { order: "over" }>["reason"];
type CallNoticeCode = Extract<CallNotice, { order: "error" }>["code"];

function infoOf(c: LiveCall): LiveCallInfo {
  return {
    callId: c.callId,
    mediaKeyOf: c.mediaKeyOf,
    roomKey: c.roomKey,
    door: c.door,
    parties: c.parties,
    doorAddress: c.doorAddress,
  };
}

function viewOf(c: LiveCall): CallView {
  return {
    ...infoOf(c),
    phase: c.state.phase,
    ringing: ringGroupOf(c.state),
    talker: talkerOf(c.state),
  };
}
