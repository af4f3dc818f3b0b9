/**
 * A manually advanced {@linkcode Clock} for tests of timer logic.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";

/** The wall time of a {@linkcode FakeClock} at 0: 2026-01-01T00:00:00Z. */
export const FAKE_EPOCH = Date.UTC(2026, 0, 1);

/** A manually advanced clock for tests. Timers fire in due order during {@linkcode FakeClock.advance}. */
export class FakeClock implements Clock {
  #now: number;
  #next = 1;
  #timers = new Map<TimerId, { at: number; fn: () => void }>();

  /** Starts at `start` milliseconds. */
  constructor(start = 0) {
    this.#now = start;
  }

  /** Current fake time. */
  now(): number {
    return this.#now;
  }

  /** Fake wall time: {@linkcode FAKE_EPOCH} + the fake monotonic time. */
  wallNow(): number {
    return FAKE_EPOCH + this.#now;
  }

  /** Schedules `fn` at now + ms. */
  setTimeout(fn: () => void, ms: number): TimerId {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  /** Cancels a timer. */
  clearTimeout(id: TimerId): void {
    this.#timers.delete(id);
  }

  /** Number of pending timers (leak checks in tests). */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let dueId: TimerId | undefined;
      let dueAt = Infinity;
      for (const [id, t] of this.#timers) {
        if (t.at <= end && t.at < dueAt) {
          dueAt = t.at;
          dueId = id;
        }
      }
      if (dueId === undefined) break;
      const timer = this.#timers.get(dueId)!;
      this.#timers.delete(dueId);
      this.#now = dueAt;
      timer.fn();
    }
    this.#now = end;
  }
}
