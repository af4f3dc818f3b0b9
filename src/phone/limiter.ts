/**
 * Rate limits for logins and unlocks, per uid and per source IP (token buckets).
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Limiter } from "./service.ts";

/** Burst size and refill rate of one kind of attempt. */
export interface Rate {
  /** Attempts allowed at once. */
  readonly burst: number;
  /** Attempts regained per minute. */
  readonly perMinute: number;
}

/** Default limits: generous for people, tight for scripts. */
export const DEFAULT_RATES: Readonly<Record<"login" | "unlock", Rate>> = {
  login: { burst: 10, perMinute: 10 },
  unlock: { burst: 5, perMinute: 10 },
};

/** Most keys remembered; the oldest are forgotten beyond it (bounded memory). */
const MAX_KEYS = 20_000;

/** Token buckets keyed by `kind:key`. */
export class TokenBucketLimiter implements Limiter {
  #clock: Clock;
  #rates: Readonly<Record<"login" | "unlock", Rate>>;
  #buckets = new Map<string, { tokens: number; at: number }>();

  /** Creates the limiter. */
  constructor(clock: Clock, rates: Readonly<Record<"login" | "unlock", Rate>> = DEFAULT_RATES) {
    this.#clock = clock;
    this.#rates = rates;
  }

  /** Takes one token; false when the bucket is empty. */
  take(kind: "login" | "unlock", key: string): boolean {
    const rate = this.#rates[kind];
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
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
