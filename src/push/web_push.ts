/**
 * Web Push for the web phone: when a door's call is offered to a room (`call_started`, the
 * moment the webhook fires), an encrypted push goes to every subscription of the room's bound
 * phones that are not connected and not in do-not-disturb, so their service worker shows the
 * call and opening it brings the app up ringing within the wake window. When that call ends
 * (`call_ended`, the webhook's `ring ended`), a second push goes to the subscriptions that
 * accepted the ring and are still stored, so the worker withdraws the ringing notification (and
 * says "Missed call" when nobody talked): on every device of the phone, the one that answered
 * included.
 *
 * One push: `POST <endpoint>` (RFC 8030) with `TTL` (seconds until the call stops waiting; for
 * `ring ended` {@linkcode RING_ENDED_TTL_S}), `Urgency: high`, `Content-Encoding: aes128gcm` and
 * the body of {@linkcode encryptWebPush} (RFC 8291), `Authorization: vapid t=<JWT>, k=<key>`
 * (RFC 8292). The payloads are {@linkcode RingPush} and {@linkcode RingEndedPush}. `ring ended`
 * is high urgency too: a ringing notification with an Answer button for a call that is over is
 * what the resident sees when they pick the phone up, so withdrawing it is as urgent as showing
 * it (on Android, normal urgency waits for Doze's maintenance window, minutes or more), and the
 * worker always shows a notification for it, which is what push services ask of high urgency.
 *
 * Never delays a call: the bus hands events over through a bounded queue, deliveries run in the
 * background, at most {@linkcode MAX_PUSH_IN_FLIGHT} at once and {@linkcode MAX_PUSH_QUEUED}
 * waiting (beyond: dropped, counted). Each attempt has a timeout; only 5xx and 429 answers are
 * retried, with backoff (429's `Retry-After` honoured up to the backoff's cap), and never after
 * the call stopped waiting. 404 and 410 mean the subscription is gone: it is deleted. Failures
 * are counted (`web_push_failures_total{reason}`) and logged at most once a minute.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import type { Logger } from "../log.ts";
import { LogThrottle } from "../log_throttle.ts";
import type { Metrics } from "../metrics.ts";
import type { EventOf } from "../events/types.ts";
import { encryptWebPush } from "./web_push_crypto.ts";
import { vapidAuthorization, type VapidKeys } from "./vapid.ts";

/** The push message's JSON (what the service worker reads). */
export interface RingPush {
  readonly event: "ring";
  /** The calling door's address (`M00010100`). */
  readonly door: string;
  /** The room's address as bound (`Y00010108090`). */
  readonly room: string;
  readonly community: string;
  readonly callId: string;
  /** The phone woken (the app picks the binding it logs in with). */
  readonly uid: string;
  /** Epoch ms after which the call no longer waits for a phone. */
  readonly expiresAt: number;
}

/** The second push: the call of a {@linkcode RingPush} is over. */
export interface RingEndedPush {
  readonly event: "ring ended";
  readonly callId: string;
  /** Why the call ended: its end reason, as the webhook's `outcome` (`no_phone_woke`, …). */
  readonly outcome: string;
  /** Nobody talked (the worker says "Missed call"; else it withdraws the ring quietly). */
  readonly missed: boolean;
  readonly door: string;
  readonly room: string;
  readonly community: string;
  readonly uid: string;
  /** Epoch ms of the end. */
  readonly endedAt: number;
}

/** What the sender pushes. */
export type WebPushPayload = RingPush | RingEndedPush;

/** The TTL of a `ring ended` push: a phone out of reach for longer keeps its notification. */
export const RING_ENDED_TTL_S = 60;

/** A subscription to push to. */
export interface PushTarget {
  readonly uid: string;
  readonly roomKey: string;
  readonly endpoint: string;
  readonly p256dh: string;
  readonly auth: string;
}

/** Which phones of a room to wake (the push directory). */
export interface WakeablePhones {
  /** The room's bound phones not connected and not in do-not-disturb, and the room's names. */
  toWake(roomKey: string): {
    readonly uids: readonly string[];
    readonly community: string;
    readonly roomAddress?: string;
  };
}

/** The subscriptions (the store). */
export interface PushTargets {
  of(uid: string, roomKey: string): Promise<readonly PushTarget[]>;
  /** Deletes a subscription the push service says is gone. */
  removeStored(target: PushTarget): Promise<boolean>;
}

/** Options of {@linkcode WebPushSender}. */
export interface WebPushOptions {
  readonly keys: VapidKeys;
  /** The VAPID `sub` claim (`--push-subject`). */
  readonly subject: string;
  readonly phones: WakeablePhones;
  readonly subscriptions: PushTargets;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** How long a call waits when it has no `wakeBy`. */
  readonly ringTimeoutMs: number;
  /** Called after a subscription was deleted (the directory reloads). */
  readonly onRemoved?: () => void;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** One attempt's timeout. @default 5000 */
  readonly timeoutMs?: number;
  /** Attempts after the first, on 5xx and 429 only. @default 2 */
  readonly retries?: number;
  /** Wait before the first retry, doubled after each (and the cap of `Retry-After`). @default 500 */
  readonly backoffMs?: number;
}

/** Deliveries running at once. */
export const MAX_PUSH_IN_FLIGHT = 16;
/** Calls rung whose end is awaited (bounded: beyond, the oldest get no `ring ended`). */
export const MAX_PUSH_RINGING = 4096;

/** The call events the sender subscribes to. */
export const WEB_PUSH_EVENTS = ["call_started", "call_talk", "call_ended"] as const;

/** A call whose ring was pushed: where, to whom, and what became of each ring push. */
interface RungCall {
  readonly roomKey: string;
  readonly door: string;
  readonly room: string;
  readonly community: string;
  readonly rings: { readonly target: PushTarget; readonly outcome: Promise<PushOutcome> }[];
  talked: boolean;
  ended: boolean;
}
/** Deliveries waiting for a slot; beyond, new ones are dropped and counted. */
export const MAX_PUSH_QUEUED = 256;

/** Why a delivery failed (the `reason` label). */
export type PushFailure =
  | "bad_subscription"
  | "http_4xx"
  | "http_5xx"
  | "timeout"
  | "network"
  | "dropped"
  | "expired";

/** What became of one push. */
export type PushOutcome = "sent" | "gone" | PushFailure;

/** Sends the ring and ring-ended pushes. */
export class WebPushSender {
  #o: WebPushOptions;
  #fetch: typeof fetch;
  #throttle: LogThrottle;
  #active = 0;
  #queue: (() => void)[] = [];
  #inFlight = new Set<Promise<unknown>>();
  #abort = new AbortController();
  #closed = false;
  #ringing = new Map<string, RungCall>();

  /** Creates the sender; it sends nothing until {@linkcode WebPushSender.onEvent}. */
  constructor(options: WebPushOptions) {
    this.#o = options;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#throttle = new LogThrottle(options.clock);
    options.metrics.gauge("web_push_in_flight", () => this.#active, "Web pushes being sent now");
  }

  /**
   * Handles the call events {@linkcode WEB_PUSH_EVENTS} (subscribe with `subscribeQueued`):
   * `call_started` reads the sleeping phones' subscriptions and starts one ring delivery per
   * subscription in the background; `call_talk` notes that someone talked; `call_ended` starts
   * the `ring ended` pushes in the background (after the ring deliveries finished).
   */
  async onEvent(
    e: EventOf<"call_started"> | EventOf<"call_talk"> | EventOf<"call_ended">,
  ): Promise<void> {
    if (this.#closed) return;
    if (e.type === "call_talk") {
      const call = this.#ringing.get(e.callId);
      if (call) call.talked = true;
      return;
    }
    if (e.type === "call_ended") {
      const call = this.#ringing.get(e.callId);
      if (!call) return;
      this.#ringing.delete(e.callId);
      call.ended = true;
      this.#track(this.#ended(call, e));
      return;
    }
    const { uids, community, roomAddress = e.roomAddress } = this.#o.phones.toWake(e.roomKey);
    const expiresAt = e.wakeBy ?? e.at + this.#o.ringTimeoutMs;
    const call: RungCall = {
      roomKey: e.roomKey,
      door: e.doorAddress,
      room: roomAddress,
      community,
      rings: [],
      talked: false,
      ended: false,
    };
    for (const uid of uids) {
      let targets: readonly PushTarget[];
      try {
        targets = await this.#o.subscriptions.of(uid, e.roomKey);
      } catch (err) {
        this.#o.logger.warn("Cannot read the push subscriptions", { uid, error: err });
        continue;
      }
      for (const t of targets) {
        const payload: RingPush = {
          event: "ring",
          door: e.doorAddress,
          room: roomAddress,
          community,
          callId: e.callId,
          uid,
          expiresAt,
        };
        const outcome = this.send(t, payload, () => !call.ended);
        this.#track(outcome);
        call.rings.push({ target: t, outcome });
      }
    }
    if (!call.rings.length) return;
    if (this.#ringing.size >= MAX_PUSH_RINGING) {
      this.#ringing.delete(this.#ringing.keys().next().value!);
    }
    this.#ringing.set(e.callId, call);
  }

  /**
   * The `ring ended` pushes of `call`: once its ring deliveries finished, to each subscription
   * that accepted the ring and is still stored (one deleted meanwhile, by a 410 or by its phone,
   * gets none).
   */
  async #ended(call: RungCall, e: EventOf<"call_ended">): Promise<void> {
    const outcomes = await Promise.all(call.rings.map((r) => r.outcome));
    const got = call.rings.filter((_, i) => outcomes[i] === "sent").map((r) => r.target);
    const stored = new Map<string, Set<string>>();
    for (const uid of new Set(got.map((t) => t.uid))) {
      if (this.#closed) return;
      try {
        const now = await this.#o.subscriptions.of(uid, call.roomKey);
        stored.set(uid, new Set(now.map((t) => t.endpoint)));
      } catch (err) {
        this.#o.logger.warn("Cannot read the push subscriptions", { uid, error: err });
      }
    }
    for (const t of got) {
      if (!stored.get(t.uid)?.has(t.endpoint)) continue;
      this.#track(this.send(t, {
        event: "ring ended",
        callId: e.callId,
        outcome: e.reason,
        missed: !call.talked,
        door: call.door,
        room: call.room,
        community: call.community,
        uid: t.uid,
        endedAt: e.at,
      }));
    }
  }

  #track(p: Promise<unknown>): void {
    this.#inFlight.add(p);
    p.finally(() => this.#inFlight.delete(p));
  }

  /**
   * Sends one push when a slot is free (or drops it when too many wait). Never throws.
   * `wanted`: false once the push is pointless (a ring whose call ended): no further retry.
   */
  async send(
    target: PushTarget,
    payload: WebPushPayload,
    wanted: () => boolean = () => true,
  ): Promise<PushOutcome> {
    if (this.#active >= MAX_PUSH_IN_FLIGHT) {
      if (this.#queue.length >= MAX_PUSH_QUEUED) {
        return this.#fail(target, payload, "dropped", "queue full");
      }
      await new Promise<void>((resolve) => this.#queue.push(resolve));
      if (this.#closed) return "dropped";
    }
    this.#active++;
    try {
      return await this.#deliver(target, payload, wanted);
    } finally {
      this.#active--;
      this.#queue.shift()?.();
    }
  }

  async #deliver(
    target: PushTarget,
    payload: WebPushPayload,
    wanted: () => boolean,
  ): Promise<PushOutcome> {
    const o = this.#o;
    const event = { event: payload.event };
    let body: Uint8Array<ArrayBuffer>;
    try {
      body = await encryptWebPush(new TextEncoder().encode(JSON.stringify(payload)), target);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      return this.#fail(target, payload, "bad_subscription", why);
    }
    const deadline = payload.event === "ring"
      ? payload.expiresAt
      : payload.endedAt + RING_ENDED_TTL_S * 1000;
    const retries = o.retries ?? 2;
    const cap = o.backoffMs ?? 500;
    let wait = cap;
    let last: { reason: PushFailure; why: string } = { reason: "expired", why: "call over" };
    for (let attempt = 0; attempt <= retries && !this.#closed; attempt++) {
      const left = deadline - o.clock.wallNow();
      if (left <= 0 || !wanted()) break;
      const r = await this.#attempt(target, body, Math.ceil(left / 1000));
      if (r === "sent") {
        o.metrics.inc("web_push_sent_total", event);
        return "sent";
      }
      if (r === "gone") {
        o.metrics.inc("web_push_gone_total", event);
        o.logger.info("push subscription gone: deleted", { uid: target.uid, room: target.roomKey });
        try {
          if (await o.subscriptions.removeStored(target)) o.onRemoved?.();
        } catch (e) {
          o.logger.warn("Cannot delete the gone push subscription", { error: e });
        }
        return "gone";
      }
      last = r;
      if (!r.retry) break;
      await this.#sleep(Math.min(r.retryAfterMs ?? wait, cap * 2 ** retries));
      wait *= 2;
    }
    return this.#fail(target, payload, last.reason, last.why);
  }

  async #attempt(
    target: PushTarget,
    body: Uint8Array<ArrayBuffer>,
    ttl: number,
  ): Promise<
    "sent" | "gone" | { reason: PushFailure; why: string; retry: boolean; retryAfterMs?: number }
  > {
    const o = this.#o;
    const timeoutMs = o.timeoutMs ?? 5000;
    const timeout = new AbortController();
    const onClose = () => timeout.abort();
    this.#abort.signal.addEventListener("abort", onClose);
    const timer = o.clock.setTimeout(() => timeout.abort(), timeoutMs);
    try {
      const auth = await vapidAuthorization(
        target.endpoint,
        o.subject,
        o.keys,
        o.clock.wallNow() / 1000,
      );
      const res = await this.#fetch(target.endpoint, {
        method: "POST",
        headers: {
          "authorization": auth,
          "content-encoding": "aes128gcm",
          "content-type": "application/octet-stream",
          "ttl": String(ttl),
          "urgency": "high",
        },
        body,
        signal: timeout.signal,
        redirect: "manual",
      });
      await res.body?.cancel();
      if (res.status >= 200 && res.status < 300) return "sent";
      if (res.status === 404 || res.status === 410) return "gone";
      const retry = res.status >= 500 || res.status === 429;
      const after = Number(res.headers.get("retry-after"));
      return {
        reason: res.status >= 500 ? "http_5xx" : "http_4xx",
        why: `HTTP ${res.status}`,
        retry,
        ...(res.status === 429 && after > 0 ? { retryAfterMs: after * 1000 } : {}),
      };
    } catch (e) {
      return timeout.signal.aborted
        ? { reason: "timeout", why: `no answer within ${timeoutMs} ms`, retry: false }
        : { reason: "network", why: e instanceof Error ? e.message : String(e), retry: false };
    } finally {
      o.clock.clearTimeout(timer);
      this.#abort.signal.removeEventListener("abort", onClose);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let id: TimerId | undefined = undefined;
      const done = () => {
        if (id !== undefined) this.#o.clock.clearTimeout(id);
        this.#abort.signal.removeEventListener("abort", done);
        resolve();
      };
      id = this.#o.clock.setTimeout(done, ms);
      this.#abort.signal.addEventListener("abort", done, { once: true });
    });
  }

  #fail(
    target: PushTarget,
    payload: WebPushPayload,
    reason: PushFailure,
    why: string,
  ): PushFailure {
    this.#o.metrics.inc("web_push_failures_total", { event: payload.event, reason });
    if (this.#throttle.allow(`web_push|${reason}`)) {
      this.#o.logger.warn(
        "web push failed (logged once a minute per reason; see web_push_failures_total)",
        {
          push_service: originOf(target.endpoint),
          uid: target.uid,
          event: payload.event,
          reason,
          why,
        },
      );
    }
    return reason;
  }

  /** Resolves when every delivery begun has finished (tests). */
  async idle(): Promise<void> {
    while (this.#inFlight.size) await Promise.allSettled([...this.#inFlight]);
  }

  /** Stops: aborts the requests in flight and the waiting ones, then waits for them. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    for (const wake of this.#queue.splice(0)) wake();
    await this.idle();
  }
}

/** Only the push service's origin goes in logs (the path is the subscription's secret). */
function originOf(endpoint: string): string {
  try {
    return new URL(endpoint).origin;
  } catch {
    return "(bad url)";
  }
}
