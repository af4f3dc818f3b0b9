/**
 * Failed console logins, limited per (name, source IP) and per source IP within a sliding
 * window: a password cannot be guessed at the speed of the network, and one address cannot try
 * many names. Bounded: the oldest entries are dropped beyond {@linkcode MAX_ENTRIES}.
 *
 * @module
 */

import type { Clock } from "../clock.ts";

/** Failures of one name from one IP allowed in the window. */
export const PER_NAME_IP = 5;
/** Failures from one IP (any names) allowed in the window. */
export const PER_IP = 20;
/** The window. */
export const WINDOW_MS = 15 * 60_000;
/** Keys tracked at most. */
export const MAX_ENTRIES = 10_000;

/** Sliding-window failure counts. */
export class LoginLimiter {
  readonly #clock: Pick<Clock, "now">;
  readonly #failures = new Map<string, number[]>();

  /** Creates an empty limiter. */
  constructor(clock: Pick<Clock, "now">) {
    this.#clock = clock;
  }

  #recent(key: string): number[] {
    const now = this.#clock.now();
    const list = (this.#failures.get(key) ?? []).filter((t) => now - t < WINDOW_MS);
    if (list.length) this.#failures.set(key, list);
    else this.#failures.delete(key);
    return list;
  }

  /** Seconds to wait before `name` may be tried from `ip` again; 0: now. */
  retryAfterS(name: string, ip: string): number {
    const now = this.#clock.now();
    let wait = 0;
    for (const [key, limit] of [[`${name}\n${ip}`, PER_NAME_IP], [ip, PER_IP]] as const) {
      const list = this.#recent(key);
      if (list.length >= limit) wait = Math.max(wait, list[list.length - limit]! + WINDOW_MS - now);
    }
    return Math.ceil(wait / 1000);
  }

  /** Counts a failure. */
  failed(name: string, ip: string): void {
    const now = this.#clock.now();
    for (const key of [`${name}\n${ip}`, ip]) {
      const list = this.#recent(key);
      list.push(now);
      this.#failures.delete(key);
      this.#failures.set(key, list.slice(-PER_IP));
      while (this.#failures.size > MAX_ENTRIES) {
        this.#failures.delete(this.#failures.keys().next().value!);
      }
    }
  }

  /** A success clears the (name, ip) failures. */
  succeeded(name: string, ip: string): void {
    this.#failures.delete(`${name}\n${ip}`);
  }
}
