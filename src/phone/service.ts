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
import type { BindingCheck, Limiter, PhoneMedia } from "./ports.ts";
import { roomKey as roomKeyOf } from "../protocol/address.ts";
import {
  ERROR_TEXT,
  type ErrorCode,
  parsePhoneMessage,
  type PhoneCallMessage,
  type PhoneMessage,
} from "./messages.ts";
import { CLOSE_CODE, type PhoneHub, type PhoneSession } from "./hub.ts";

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
}

/** Handles phone messages. */
export class PhoneService {
  #o: PhoneServiceOptions;
  /** Bad messages are logged once per session and order, counted always. */
  #logged = new OnceFilter();
  /** Refused logins: one line per uid, source and reason a minute. */
  #throttle: LogThrottle;
  /** Error replies left per connection (a token bucket). */
  #errorBudget = new WeakMap<PhoneSession, { tokens: number; at: number }>();
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

  /** Handles one text frame; replies keep the order of requests. */
  onText(s: PhoneSession, text: string): Promise<void> {
    s.chain = s.chain.then(() => this.#handle(s, text)).catch((e) => {
      this.#o.logger.error("phone message handler failed", { session: s.id, error: e });
    });
    return s.chain;
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

  async #handle(s: PhoneSession, text: string): Promise<void> {
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
    if (m.order === "login") return await this.#login(s, m);
    if (s.uid === undefined) return this.error(s, "login_required", m.order);
    this.#o.hub.heard(s);
    if (m.order === "heartbeat") {
      this.#o.hub.sendTo(s, { order: "heartbeat ok", uid: s.uid });
      return;
    }
    if (m.uid !== s.uid) {
      return this.error(s, "unauthorized", m.order, "Cannot act for another uid");
    }
    return await this.#callOrder(s, m);
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
      const ok = o.media?.enableWs(call.callId, uid, (bytes) => {
        if (s.closed) return;
        if ((s.socket.bufferedAmount ?? 0) > WS_MEDIA_SKIP_BYTES) {
          o.metrics.inc("phone_media_dropped_total", { reason: "backpressure" });
          return;
        }
        // A copy: the bytes live in a pooled receive buffer reused after this turn.
        s.socket.send(bytes.slice());
      }, () => !s.closed) ?? false;
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
