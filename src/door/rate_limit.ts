/**
 * Per-source-IP rate limits of the door port (token buckets): a door sends a handful of NS asks
 * and CALL copies per visitor; a flood from one IP is dropped before it reaches the registry,
 * the call layer or the store. The key map is bounded: beyond `maxKeys` the least recently used
 * IP is forgotten (it starts again with a full bucket, which only ever favours the sender).
 *
 * @module
 */

import type { Clock } from "../clock.ts";

/** Burst size and refill rate of one kind of datagram. */
export interface DoorRate {
  /** Datagrams allowed at once. */
  readonly burst: number;
  /** Datagrams regained per second. */
  readonly perSecond: number;
}

/** The kinds of door datagram that are limited. */
export type DoorRateKind = "ns" | "call";

/** Limits of each kind, per source IP. */
export type DoorRates = Readonly<Record<DoorRateKind, DoorRate>>;

/**
 * Defaults, per source IP. A door resolves a room with up to 6 NS asks 100 ms apart and sends
 * up to 6 copies of a CALL and of a CALLEND 600 ms apart; a visitor keying several rooms in a
 * row stays far below these.
 */
export const DEFAULT_DOOR_RATES: DoorRates = {
  ns: { burst: 30, perSecond: 10 },
  call: { burst: 20, perSecond: 5 },
};

/** Source IPs remembered at most. */
export const MAX_DOOR_RATE_KEYS = 4096;

/** Token buckets by kind and source IP. */
export class DoorRateLimiter {
  #clock: Pick<Clock, "now">;
  #rates: DoorRates;
  #maxKeys: number;
  #buckets = new Map<string, { tokens: number; at: number }>();

  /** Creates the limiter (`rates` per source IP). */
  constructor(
    clock: Pick<Clock, "now">,
    rates: DoorRates = DEFAULT_DOOR_RATES,
    maxKeys = MAX_DOOR_RATE_KEYS,
  ) {
    this.#clock = clock;
    this.#rates = rates;
    this.#maxKeys = maxKeys;
  }

  /** Source IPs remembered now. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one token of `kind` for `ip`; false when its bucket is empty. */
  take(kind: DoorRateKind, ip: string): boolean {
    const rate = this.#rates[kind];
    const now = this.#clock.now();
    const id = `${kind}|${ip}`;
    let b = this.#buckets.get(id);
    if (!b) {
      b = { tokens: rate.burst, at: now };
      if (this.#buckets.size >= this.#maxKeys) {
        this.#buckets.delete(this.#buckets.keys().next().value!);
      }
    } else {
      b.tokens = Math.min(rate.burst, b.tokens + ((now - b.at) / 1000) * rate.perSecond);
      b.at = now;
      this.#buckets.delete(id); // re-insert: the map's order is the eviction order
    }
    this.#buckets.set(id, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
