/**
 * Rate limits for logins and unlocks (token buckets keyed by strings). The caller chooses the
 * keys: `ip:<address>` buckets take the per-IP rate, every other key the per-uid rate. Logins are
 * limited per (uid, source IP) and per source IP and only their failures count (the phone service
 * takes before checking the token and gives back on success), so someone else's wrong tokens never
 * lock a resident out; unlocks (of a logged-in uid) per uid and per source IP.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Limiter } from "./ports.ts";

/** Burst size and refill rate of one kind of attempt. */
export interface Rate {
  /** Attempts allowed at once. */
  readonly burst: number;
  /** Attempts regained per minute. */
  readonly perMinute: number;
}

/**
 * Limits per uid (for logins: per uid and source IP) and per source IP; one {@linkcode Rate}
 * applies to both.
 */
export type Rates = Readonly<
  Record<"login" | "unlock", Rate | { readonly uid: Rate; readonly ip: Rate }>
>;

/**
 * Default limits: tight per uid (a person retries a few times; for logins, the wrong tokens of
 * one uid from one source), generous per IP (a building's phones may share one address behind NAT
 * or a reverse proxy, and all log in again after a gateway restart).
 */
export const DEFAULT_RATES: Rates = {
  login: { uid: { burst: 10, perMinute: 10 }, ip: { burst: 300, perMinute: 300 } },
  unlock: { uid: { burst: 5, perMinute: 10 }, ip: { burst: 60, perMinute: 60 } },
};

/** Most keys remembered; the oldest are forgotten beyond it (bounded memory). */
const MAX_KEYS = 20_000;

/** Token buckets keyed by `kind:key`. */
export class TokenBucketLimiter implements Limiter {
  #clock: Clock;
  #rates: Rates;
  #buckets = new Map<string, { tokens: number; at: number }>();

  /** Creates the limiter. */
  constructor(clock: Clock, rates: Rates = DEFAULT_RATES) {
    this.#clock = clock;
    this.#rates = rates;
  }

  /** Takes one token; false when the bucket is empty. */
  take(kind: "login" | "unlock", key: string): boolean {
    const b = this.#bucket(kind, key);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Gives back a token taken by {@linkcode TokenBucketLimiter.take} (never beyond the burst). */
  refund(kind: "login" | "unlock", key: string): void {
    const b = this.#bucket(kind, key);
    b.tokens = Math.min(this.#rateOf(kind, key).burst, b.tokens + 1);
  }

  #rateOf(kind: "login" | "unlock", key: string): Rate {
    const r = this.#rates[kind];
    return "burst" in r ? r : key.startsWith("ip:") ? r.ip : r.uid;
  }

  /** The key's bucket, refilled to now (created full). */
  #bucket(kind: "login" | "unlock", key: string): { tokens: number; at: number } {
    const rate = this.#rateOf(kind, key);
    const now = this.#clock.now();
    const id = `${kind}:${key}`;
    let b = this.#buckets.get(id);
    if (!b) {
      b = { tokens: rate.burst, at: now };
      if (this.#buckets.size >= MAX_KEYS) this.#buckets.delete(this.#buckets.keys().next().value!);
    } else {
      b.tokens = Math.min(rate.burst, b.tokens + ((now - b.at) / 60_000) * rate.perMinute);
      b.at = now;
      this.#buckets.delete(id); // re-insert: the map's order is the eviction order
    }
    this.#buckets.set(id, b);
    return b;
  }
}
