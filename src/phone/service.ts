/**
 * The phone service: what the gateway does with each message of a phone connection
 * (phone-protocol.md, seed flows 二–六). Transport-free: the handler feeds it text frames.
 *
 * Checks, in order: size and shape (`bad_request`), login first (`login_required`), the login
 * rate limits per (uid, source IP) and per source IP, counting failures only (`rate_limited`),
 * the token (`unauthorized`), the unlock rate limits per uid and source IP (`rate_limited`), the
 * uid's binding to the message's room (`not_bound`), the room's call with that door
 * (`not_in_call`). Every failure is answered with an
 * `error` and never disturbs another phone or call.
 *
 * @module
 */

import { OnceFilter } from "../once.ts";
import { LogThrottle } from "../log_throttle.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { CallControl } from "../call/ports.ts";
import type { EventSink } from "../events/bus.ts";
import type { Clock } from "../clock.ts";
import type { BindingCheck, Limiter, PhoneMedia, PushRegistry } from "./ports.ts";
import { roomKey as roomKeyOf } from "../protocol/address.ts";
import {
  type DndMessage,
  ERROR_TEXT,
  type ErrorCode,
  parsePhoneMessage,
  type PhoneCallMessage,
  type PhoneMessage,
  type PushSubscribeMessage,
  type PushUnsubscribeMessage,
} from "./messages.ts";
import { CLOSE_CODE, type PhoneHub, type PhoneSession } from "./hub.ts";
import { describeText } from "./trace.ts";

/** `error` replies per second (and burst) per connection; further errors are only counted. */
export const ERROR_REPLY_RATE = 20;

/**
 * Unsent bytes on a phone's socket above which WebSocket media is skipped (counted), well below
 * the socket's drop limit (1 MiB), so that a slow phone loses frames, not its call.
 */
export const WS_MEDIA_SKIP_BYTES = 256 * 1024;

/** Options of {@linkcode PhoneService}. */
export interface PhoneServiceOptions {
  hub: PhoneHub;
  manager: Pick<CallControl, "phoneRequest" | "byRoom">;
  bindings: BindingCheck;
  logger: Logger;
  metrics: Metrics;
  mediaPort: number;
  /** Seconds between heartbeats the phones should keep. @default {2} */
  heartbeatInterval?: number;
  /** Where unlock attempts refused here go (the audit subscribes). */
  events?: EventSink;
  /** Wall time of events, monotonic time of log throttling. @default the system's */
  clock?: Pick<Clock, "wallNow" | "now">;
  media?: PhoneMedia;
  limiter?: Limiter;
  /** Web Push subscriptions (`push subscribe` / `push unsubscribe`); absent: not offered. */
  push?: PushRegistry;
}

/** `push subscribe` / `push unsubscribe` orders per connection a minute (burst as many). */
export const PUSH_ORDER_RATE_PER_MIN = 10;

/** Handles phone messages. */
export class PhoneService {
  #o: PhoneServiceOptions;
  /** Bad messages are logged once per session and order, counted always. */
  #logged = new OnceFilter();
  /** Refused logins: one line per uid, source and reason a minute. */
  #throttle: LogThrottle;
  /** Error replies left per connection (a token bucket). */
  #errorBudget = new WeakMap<PhoneSession, { tokens: number; at: number }>();
  /** Push orders left per connection (a token bucket). */
  #pushBudget = new WeakMap<PhoneSession, { tokens: number; at: number }>();
  #now: () => number;

  /** Wires the service. */
  constructor(options: PhoneServiceOptions) {
    this.#o = options;
    this.#throttle = new LogThrottle(options.clock ?? { now: () => performance.now() });
    const clock = options.clock;
    this.#now = clock ? () => clock.now() : () => performance.now();
  }

  /**
   * Sends an `error` to a session: at most {@linkcode ERROR_REPLY_RATE} a second per connection
   * (burst as many); beyond that the error is counted in `phone_errors_unanswered_total` and not
   * sent, so that a socket sending junk cannot make the gateway queue replies without bound.
   */
  error(s: PhoneSession, code: ErrorCode, ref?: string, message?: string): void {
    this.#o.metrics.inc("phone_errors_total", { code });
    if (!this.#takeErrorReply(s)) {
      this.#o.metrics.inc("phone_errors_unanswered_total", { code });
      return;
    }
    this.#o.hub.sendTo(s, {
      order: "error",
      code,
      message: message ?? ERROR_TEXT[code],
      ...(ref ? { ref } : {}),
    });
  }

  #takeErrorReply(s: PhoneSession): boolean {
    const now = this.#now();
    const b = this.#errorBudget.get(s) ?? { tokens: ERROR_REPLY_RATE, at: now };
    b.tokens = Math.min(ERROR_REPLY_RATE, b.tokens + ((now - b.at) / 1000) * ERROR_REPLY_RATE);
    b.at = now;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    this.#errorBudget.set(s, b);
    return ok;
  }

  /**
   * Handles one text frame; replies keep the order of requests. The promise (none when the
   * message was handled at once) settles when it was.
   */
  onText(s: PhoneSession, text: string): Promise<void> | undefined {
    const events = this.#o.events;
    if (events?.wants("phone_trace")) {
      events.emit({
        type: "phone_trace",
        at: (this.#o.clock ?? { wallNow: Date.now }).wallNow(),
        direction: "in",
        peer: s.ip,
        uid: s.uid,
        summary: describeText(text),
        length: text.length,
      });
    }
    if (s.pending === 0) {
      // Nothing before it is still being handled: handled now, and a message answered at once
      // (a heartbeat) costs no promise.
      let r: Promise<void> | void;
      try {
        r = this.#handle(s, text);
      } catch (e) {
        this.#failed(s, e);
        return undefined;
      }
      return r ? this.#track(s, r) : undefined;
    }
    return this.#track(s, s.chain.then(() => this.#handle(s, text)));
  }

  /** `handling` keeps the session's next messages behind it, so replies keep their order. */
  #track(s: PhoneSession, handling: Promise<void>): Promise<void> {
    s.pending++;
    s.chain = handling.catch((e) => this.#failed(s, e)).finally(() => void s.pending--);
    return s.chain;
  }

  #failed(s: PhoneSession, e: unknown): void {
    this.#o.logger.error("phone message handler failed", { session: s.id, error: e });
  }

  /** Handles one binary frame (media over the WebSocket). */
  onBinary(s: PhoneSession, bytes: Uint8Array): void {
    if (s.uid === undefined) {
      this.#o.metrics.inc("phone_media_dropped_total", { reason: "login_required" });
      return;
    }
    this.#o.hub.heard(s);
    this.#o.media?.wsAudio(s.uid, bytes);
  }

  /** A promise only for the orders that wait (login, push, the call's orders). */
  #handle(s: PhoneSession, text: string): Promise<void> | void {
    if (s.closed) return;
    const m = parsePhoneMessage(text);
    if ("error" in m) {
      if (this.#logged.first(`${s.id}|${m.error.ref ?? ""}`)) {
        this.#o.logger.debug(
          "bad phone message (further ones of this kind from this session are only counted)",
          { session: s.id, message: m.error.message },
        );
      }
      return this.error(
        s,
        "bad_request",
        m.error.ref,
        `Cannot read the message: ${m.error.message}`,
      );
    }
    if (m.order === "login") return this.#login(s, m);
    if (s.uid === undefined) return this.error(s, "login_required", m.order);
    this.#o.hub.heard(s);
    if (m.order === "heartbeat") {
      if (s.heartbeatOkUid !== s.uid) {
        s.heartbeatOkUid = s.uid;
        s.heartbeatOk = JSON.stringify({ order: "heartbeat ok", uid: s.uid });
      }
      // The same string each time: the socket reuses its frame too.
      this.#o.hub.sendTo(s, { order: "heartbeat ok", uid: s.uid }, s.heartbeatOk);
      return;
    }
    if (m.uid !== s.uid) {
      return this.error(s, "unauthorized", m.order, "Cannot act for another uid");
    }
    if (m.order === "dnd") return this.#dnd(s, m);
    if (m.order === "push subscribe" || m.order === "push unsubscribe") {
      return this.#push(s, m);
    }
    return this.#callOrder(s, m);
  }

  /** `dnd`: do not disturb this phone for one of its rooms until a time (0: off). */
  #dnd(s: PhoneSession, m: DndMessage): void {
    const room = roomKeyOf(m.roomAddress)!;
    if (!s.rooms.has(room)) {
      return this.error(
        s,
        "not_bound",
        m.order,
        "Cannot set do-not-disturb: this connection is not logged in for that room",
      );
    }
    const until = this.#o.hub.setDnd(s, room, m.until);
    this.#o.logger.info(until ? "phone do-not-disturb on" : "phone do-not-disturb off", {
      uid: s.uid,
      room,
      ...(until ? { until: new Date(until).toISOString() } : {}),
    });
    this.#o.hub.sendTo(s, {
      order: "dnd ok",
      uid: s.uid,
      roomAddress: m.roomAddress,
      community: m.community,
      until,
    });
  }

  /** `push subscribe` / `push unsubscribe`: Web Push for one of the connection's rooms. */
  async #push(s: PhoneSession, m: PushSubscribeMessage | PushUnsubscribeMessage): Promise<void> {
    const push = this.#o.push;
    const room = roomKeyOf(m.roomAddress)!;
    const joined = s.rooms.get(room);
    if (!joined) {
      return this.error(
        s,
        "not_bound",
        m.order,
        "Cannot change push: this connection is not logged in for that room",
      );
    }
    if (!push) {
      return this.error(s, "bad_request", m.order, "Cannot use push: this gateway has no Web Push");
    }
    const now = this.#now();
    const b = this.#pushBudget.get(s) ?? { tokens: PUSH_ORDER_RATE_PER_MIN, at: now };
    b.tokens = Math.min(
      PUSH_ORDER_RATE_PER_MIN,
      b.tokens + ((now - b.at) / 60_000) * PUSH_ORDER_RATE_PER_MIN,
    );
    b.at = now;
    this.#pushBudget.set(s, b);
    if (b.tokens < 1) return this.error(s, "rate_limited", m.order);
    b.tokens -= 1;
    const uid = s.uid!;
    const echo = { uid, roomAddress: m.roomAddress, community: m.community, endpoint: m.endpoint };
    if (m.order === "push unsubscribe") {
      const count = await push.unsubscribe(uid, room, m.endpoint);
      this.#o.hub.sendTo(s, { order: "push ok", ...echo, subscribed: false, count });
      return;
    }
    const r = await push.subscribe(uid, room, joined.tokenId, {
      endpoint: m.endpoint,
      p256dh: m.p256dh,
      auth: m.auth,
    });
    if (!r.ok) {
      this.#o.metrics.inc("push_subscriptions_refused_total", { code: r.code });
      return this.error(s, r.code, m.order, `Cannot keep the push subscription: ${r.message}`);
    }
    this.#o.logger.info("phone push subscription kept", { uid, room, subscriptions: r.count });
    this.#o.hub.sendTo(s, { order: "push ok", ...echo, subscribed: true, count: r.count });
  }

  async #login(s: PhoneSession, m: PhoneMessage & { order: "login" }): Promise<void> {
    const o = this.#o;
    // Wrong tokens are limited per (uid, source) and per source, never per uid alone: someone
    // else's guesses cannot lock a resident out. The tokens are taken before the check (a hash
    // and a KV read), so a refused source costs nothing and concurrent guesses cannot overshoot,
    // and given back when the token was right: failures count, not attempts.
    const keys = [`uid:${m.uid}|${s.ip}`, `ip:${s.ip}`] as const;
    if (o.limiter && !takeAll(o.limiter, keys)) {
      this.#refusedLog(m.uid, m.roomAddress, s.ip, "rate limited");
      return this.error(s, "rate_limited", "login");
    }
    const room = roomKeyOf(m.roomAddress);
    const binding = room === undefined
      ? undefined
      : await o.bindings.verify(m.uid, m.roomAddress, m.token);
    if (binding && room !== undefined) { for (const k of keys) o.limiter?.refund("login", k); }
    if (!binding || room === undefined) {
      o.metrics.inc("phone_logins_total", { result: "unauthorized" });
      const why = room === undefined ? "not a room address" : await this.#whyRefused(m.uid, room);
      this.#refusedLog(m.uid, m.roomAddress, s.ip, why);
      this.error(s, "unauthorized", "login");
      s.socket.close(CLOSE_CODE.unauthorized, "unauthorized");
      return;
    }
    o.metrics.inc("phone_logins_total", { result: "ok" });
    o.hub.login(s, m.uid, room, {
      roomAddress: m.roomAddress,
      community: m.community,
      ...(binding.tokenId !== undefined ? { tokenId: binding.tokenId } : {}),
    });
    o.logger.info("phone logged in", { uid: m.uid, room, ip: s.ip });
    o.hub.sendTo(s, {
      order: "login ok",
      uid: m.uid,
      roomAddress: m.roomAddress,
      community: m.community,
      heartbeatInterval: o.heartbeatInterval ?? 2,
      mediaPort: o.mediaPort,
      ...(o.push ? { vapidPublicKey: o.push.publicKey } : {}),
    });
  }

  /** Why a login was refused (never from the token itself): for the installer's log. */
  async #whyRefused(uid: string, room: string): Promise<string> {
    try {
      if (await this.#o.bindings.isBound(uid, room)) return "wrong token";
      const rooms = await this.#o.bindings.roomsOf?.(uid);
      if (rooms === undefined) return "not bound to that room, or wrong token";
      return rooms.length ? "not bound to that room" : "unknown uid";
    } catch {
      return "unknown";
    }
  }

  #refusedLog(uid: string, roomAddress: string, ip: string, reason: string): void {
    if (!this.#throttle.allow(`${uid}|${ip}|${reason}`)) return;
    this.#o.logger.info("phone login refused", { uid, roomAddress, ip, reason });
  }

  async #callOrder(s: PhoneSession, m: PhoneCallMessage): Promise<void> {
    const o = this.#o;
    const uid = s.uid!;
    const room = roomKeyOf(m.roomAddress)!;
    const audit = (result: "not_bound" | "not_in_call" | "rate_limited") => {
      if (m.order !== "unlock") return;
      o.events?.emit({
        type: "unlock_attempted",
        at: o.clock?.wallNow() ?? Date.now(),
        uid,
        roomAddress: m.roomAddress,
        doorAddress: m.doorAddress,
        result,
        ip: s.ip,
      });
    };
    if (
      m.order === "unlock" && o.limiter &&
      (!o.limiter.take("unlock", `uid:${uid}`) || !o.limiter.take("unlock", `ip:${s.ip}`))
    ) {
      audit("rate_limited");
      return this.error(s, "rate_limited", m.order);
    }
    if (!(await o.bindings.isBound(uid, room))) {
      audit("not_bound");
      return this.error(s, "not_bound", m.order);
    }
    if (m.order === "enable_video") return this.#enableVideo(s, uid, room, m);
    const r = o.manager.phoneRequest(uid, room, m.order, m.doorAddress, m.callId);
    // `over success` answers our `over`; the call may well be over by then: nothing to say.
    if (!r.ok && m.order === "over success") return;
    if (!r.ok) {
      audit("not_in_call");
      return this.error(s, r.code, m.order);
    }
  }

  #enableVideo(
    s: PhoneSession,
    uid: string,
    room: string,
    m: PhoneCallMessage & { order: "enable_video" },
  ): void {
    const o = this.#o;
    const call = o.manager.byRoom(room);
    const inCall = call && (call.ringing.includes(uid) || call.talker === uid);
    if (!call || !inCall || (m.callId !== undefined && m.callId !== call.callId)) {
      return this.error(s, "not_in_call", m.order);
    }
    if (m.transport === "ws") {
      const ok = o.media?.enableWs(
        call.callId,
        uid,
        (bytes) => {
          if (s.closed) return;
          if ((s.socket.bufferedAmount ?? 0) > WS_MEDIA_SKIP_BYTES) {
            o.metrics.inc("phone_media_dropped_total", { reason: "backpressure" });
            return;
          }
          // A copy: the bytes live in a pooled receive buffer reused after this turn.
          s.socket.send(bytes.slice());
        },
        () => !s.closed,
        m.codecs,
      ) ?? false;
      if (!ok) return this.error(s, "not_in_call", m.order);
    } else {
      o.media?.enableUdp?.(call.callId, uid);
    }
    o.hub.sendTo(s, {
      order: "enable_video ok",
      doorAddress: call.doorAddress,
      roomAddress: m.roomAddress,
      uid,
      community: m.community,
      callId: call.callId,
      transport: m.transport,
      mediaPort: o.mediaPort,
    });
  }
}

/** Takes a login token from every bucket of `keys`, or from none (false). */
function takeAll(limiter: Limiter, keys: readonly string[]): boolean {
  for (let i = 0; i < keys.length; i++) {
    if (!limiter.take("login", keys[i]!)) {
      for (let j = 0; j < i; j++) limiter.refund("login", keys[j]!);
      return false;
    }
  }
  return true;
}
