/**
 * The push webhook for native phone apps (`--push-webhook`, `--push-webhook-secret`): for every
 * call offered to a room a signed JSON POST `ring` (the room's bound phones that are not
 * connected, so a push service can wake them), and `ring ended` with the outcome when the call
 * ends. The app's push service does the waking; the gateway only tells it.
 *
 * Signature: `X-Intercom-Timestamp` is the epoch seconds of the request, and
 * `X-Intercom-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. A receiver
 * recomputes it over the raw body and refuses stale timestamps (replays).
 *
 * Never delays a call: the bus hands events over through a bounded queue
 * (`EventBus.subscribeQueued`), each delivery runs in the background (at most
 * {@linkcode MAX_IN_FLIGHT} at once, more are dropped and counted), with a timeout per attempt
 * and a few retries with backoff. Failed deliveries are counted
 * (`push_webhook_failures_total{event}`) and logged at most once a minute.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import type { Logger } from "../log.ts";
import { LogThrottle } from "../log_throttle.ts";
import type { Counter, Metrics } from "../metrics.ts";
import type { EventOf } from "../events/types.ts";

/** The `ring` payload: a call is offered to a room. */
export interface RingPayload {
  readonly event: "ring";
  readonly callId: string;
  /** The calling door's address (`M00010100`). */
  readonly doorAddress: string;
  /** The room's address as bound (`Y00010108090`), as the phones know it. */
  readonly roomAddress: string;
  /** The room's community (from its bindings; may be empty). */
  readonly community: string;
  /** Phones bound to the room that are not connected to the gateway: the ones to wake. */
  readonly uids: readonly string[];
  /** Epoch ms after which the call no longer waits for a phone (wake window or ring timeout). */
  readonly expiresAt: number;
}

/** The `ring ended` payload: the call of a `ring` is over. */
export interface RingEndedPayload {
  readonly event: "ring ended";
  readonly callId: string;
  readonly doorAddress: string;
  readonly roomAddress: string;
  /** Why the call ended (the call record's end reason, e.g. `no_phone_woke`, `phone_hung_up`). */
  readonly outcome: string;
}

/** What the webhook receives. */
export type WebhookPayload = RingPayload | RingEndedPayload;

/** What the webhook needs to know of a room: its bound phones not connected, its community. */
export interface SleepingPhones {
  /** The room's bound uids that are not connected now, and its community. */
  sleepersOf(roomKey: string): {
    readonly uids: readonly string[];
    readonly community: string;
    /** The room's address as bound (`Y…`), when known; else the one the door called. */
    readonly roomAddress?: string;
  };
}

/** Options of {@linkcode PushWebhook}. */
export interface PushWebhookOptions {
  readonly url: string;
  readonly secret: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** How long a call waits when nobody is online but push may wake a phone. */
  readonly ringTimeoutMs: number;
  /** The room directory. */
  readonly phones: SleepingPhones;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** One attempt's timeout. @default 3000 */
  readonly timeoutMs?: number;
  /** Attempts after the first. @default 3 */
  readonly retries?: number;
  /** Wait before the first retry, doubled after each. @default 500 */
  readonly backoffMs?: number;
}

/** Deliveries running at once; beyond, new ones are dropped and counted. */
export const MAX_IN_FLIGHT = 64;

/** Calls whose `ring` was sent and whose end is awaited (bounded: the oldest are forgotten). */
const MAX_RINGING = 4096;

/** The hex HMAC-SHA256 of `${timestamp}.${body}` with `secret` (the signature's value). */
export async function signWebhook(
  secret: string,
  timestamp: number | string,
  body: string,
): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    enc.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, enc.encode(`${timestamp}.${body}`));
  return new Uint8Array(mac).toHex();
}

/** The call events the webhook subscribes to. */
export const WEBHOOK_EVENTS = ["call_started", "call_ended"] as const;

/** Posts signed `ring` / `ring ended` payloads to the app's push service. */
export class PushWebhook {
  #o: PushWebhookOptions;
  #fetch: typeof fetch;
  #throttle: LogThrottle;
  #inFlight = new Set<Promise<void>>();
  #abort = new AbortController();
  #timers = new Set<TimerId>();
  /** Rung calls: where they ring, and their `ring` delivery (`ring ended` goes after it). */
  #ringing = new Map<
    string,
    { doorAddress: string; roomAddress: string; ring: Promise<void> }
  >();
  #closed = false;
  #sent: Counter;
  #dropped: Counter;

  /** Creates the webhook client; it sends nothing until {@linkcode PushWebhook.onEvent}. */
  constructor(options: PushWebhookOptions) {
    this.#o = options;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#throttle = new LogThrottle(options.clock);
    this.#sent = options.metrics.counter(
      "push_webhook_sent_total",
      {},
      "Webhook payloads the push service accepted (2xx)",
    );
    this.#dropped = options.metrics.counter(
      "push_webhook_dropped_total",
      {},
      "Webhook payloads dropped because too many deliveries were running",
    );
  }

  /**
   * Handles a call event (subscribe with `subscribeQueued`, types {@linkcode WEBHOOK_EVENTS}):
   * starts the delivery in the background and returns at once.
   */
  onEvent(e: EventOf<"call_started"> | EventOf<"call_ended">): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (e.type === "call_started") {
      const { uids, community, roomAddress = e.roomAddress } = this.#o.phones.sleepersOf(
        e.roomKey,
      );
      if (this.#ringing.size >= MAX_RINGING) {
        this.#ringing.delete(this.#ringing.keys().next().value!);
      }
      const ring = this.#start({
        event: "ring",
        callId: e.callId,
        doorAddress: e.doorAddress,
        roomAddress,
        community,
        uids,
        expiresAt: e.wakeBy ?? e.at + this.#o.ringTimeoutMs,
      });
      this.#ringing.set(e.callId, { doorAddress: e.doorAddress, roomAddress, ring });
    } else {
      const ring = this.#ringing.get(e.callId);
      if (!ring) return Promise.resolve();
      this.#ringing.delete(e.callId);
      const { doorAddress, roomAddress } = ring;
      this.#start(
        { event: "ring ended", callId: e.callId, doorAddress, roomAddress, outcome: e.reason },
        ring.ring,
      );
    }
    return Promise.resolve();
  }

  /** Delivers `payload` in the background, after `after` (a call's `ring`) has finished. */
  #start(payload: WebhookPayload, after?: Promise<void>): Promise<void> {
    if (this.#inFlight.size >= MAX_IN_FLIGHT) {
      this.#dropped.value++;
      this.#fail(payload, "too many deliveries running: dropped");
      return Promise.resolve();
    }
    const p: Promise<void> = (after ?? Promise.resolve())
      .then(() => this.deliver(payload))
      .then(() => {})
      .finally(() => this.#inFlight.delete(p));
    this.#inFlight.add(p);
    return p;
  }

  /**
   * Sends one payload, retrying with backoff; true once the push service answered 2xx. Never
   * throws. A 4xx answer other than 408 and 429 is not retried (the receiver refuses it).
   */
  async deliver(payload: WebhookPayload): Promise<boolean> {
    const body = JSON.stringify(payload);
    const retries = this.#o.retries ?? 3;
    let wait = this.#o.backoffMs ?? 500;
    let why = "";
    for (let attempt = 0; attempt <= retries && !this.#closed; attempt++) {
      if (attempt > 0) {
        await this.#sleep(wait);
        wait *= 2;
        if (this.#closed) break;
      }
      const result = await this.#attempt(body);
      if (result === "ok") {
        this.#sent.value++;
        return true;
      }
      why = result.why;
      if (!result.retry) break;
    }
    this.#fail(payload, why || "gateway stopping");
    return false;
  }

  async #attempt(body: string): Promise<"ok" | { why: string; retry: boolean }> {
    const timestamp = Math.floor(this.#o.clock.wallNow() / 1000);
    const signature = await signWebhook(this.#o.secret, timestamp, body);
    const timeout = new AbortController();
    const onClose = () => timeout.abort();
    this.#abort.signal.addEventListener("abort", onClose);
    const timer = this.#o.clock.setTimeout(() => timeout.abort(), this.#o.timeoutMs ?? 3000);
    try {
      const res = await this.#fetch(this.#o.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-intercom-timestamp": String(timestamp),
          "x-intercom-signature": `sha256=${signature}`,
        },
        body,
        signal: timeout.signal,
      });
      await res.body?.cancel();
      if (res.ok) return "ok";
      const retry = res.status >= 500 || res.status === 408 || res.status === 429;
      return { why: `HTTP ${res.status}`, retry };
    } catch (e) {
      const why = timeout.signal.aborted
        ? `no answer within ${this.#o.timeoutMs ?? 3000} ms`
        : e instanceof Error
        ? e.message
        : String(e);
      return { why, retry: true };
    } finally {
      this.#o.clock.clearTimeout(timer);
      this.#abort.signal.removeEventListener("abort", onClose);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const id = this.#o.clock.setTimeout(() => {
        this.#timers.delete(id);
        resolve();
      }, ms);
      this.#timers.add(id);
      this.#abort.signal.addEventListener("abort", () => {
        this.#o.clock.clearTimeout(id);
        this.#timers.delete(id);
        resolve();
      }, { once: true });
    });
  }

  #fail(payload: WebhookPayload, why: string): void {
    this.#o.metrics.inc("push_webhook_failures_total", { event: payload.event });
    if (this.#throttle.allow("webhook")) {
      this.#o.logger.warn(
        "push webhook failed (logged once a minute; see push_webhook_failures_total)",
        {
          url: redactUrl(this.#o.url),
          event: payload.event,
          callId: payload.callId,
          why,
        },
      );
    }
  }

  /** Resolves when every delivery begun has finished (tests). */
  async idle(): Promise<void> {
    while (this.#inFlight.size) await Promise.allSettled([...this.#inFlight]);
  }

  /** Stops: aborts the requests and waits in flight, then waits for them to end. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    await this.idle();
  }
}

/** The URL without credentials or query (it may carry a token): for logs. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return "(bad url)";
  }
}
