/**
 * "Logged at most once a minute per key": the diagnostic lines an installer reads to find why a
 * door says "unavailable" (an NS ask left unanswered, a door refused, a phone dropped, a login
 * refused) are written at `info`, but a flood of the same cause writes one line per window.
 * Bounded: the oldest keys are forgotten beyond `limit`.
 *
 * @module
 */

import type { Clock } from "./clock.ts";

/** Default window of {@linkcode LogThrottle}. */
export const LOG_WINDOW_MS = 60_000;

/** Says whether a line for a key may be written now. */
export class LogThrottle {
  #last = new Map<string, number>();
  #clock: Pick<Clock, "now">;
  #windowMs: number;
  #limit: number;

  /** One line per key per `windowMs`, at most `limit` keys remembered. */
  constructor(clock: Pick<Clock, "now">, windowMs = LOG_WINDOW_MS, limit = 4096) {
    this.#clock = clock;
    this.#windowMs = windowMs;
    this.#limit = limit;
  }

  /** True when no line for `key` was allowed within the window (and counts this one). */
  allow(key: string): boolean {
    const now = this.#clock.now();
    const last = this.#last.get(key);
    if (last !== undefined && now - last < this.#windowMs) return false;
    this.#last.delete(key);
    if (this.#last.size >= this.#limit) this.#last.delete(this.#last.keys().next().value!);
    this.#last.set(key, now);
    return true;
  }
}
