/**
 * Rate limits for logins and unlocks, per uid and per source IP (token buckets).
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

/** Limits per uid and per source IP; one {@linkcode Rate} applies to both. */
export type Rates = Readonly<
  Record<"login" | "unlock", Rate | { readonly uid: Rate; readonly ip: Rate }>
>;

/**
 * Default limits: tight per uid (a person retries a few times), generous per IP (a building's
 * phones may share one address behind NAT or a reverse proxy, and all log in again after a
 * gateway restart).
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
    const r = this.#rates[kind];
    const rate = "burst" in r ? r : key.startsWith("ip:") ? r.ip : r.uid;
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
