/**
 * Time as a dependency: the gateway's timer logic runs on a {@linkcode Clock} so that tests can
 * drive it with a fake one.
 *
 * @module
 */

/** An opaque timer handle. */
export type TimerId = number | ReturnType<typeof setTimeout>;

/** Monotonic time and one-shot timers. */
export interface Clock {
  /** Milliseconds on a monotonic scale. */
  now(): number;
  /** Wall-clock time, epoch milliseconds (records, logs, events). */
  wallNow(): number;
  /** Calls `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerId;
  /** Cancels a timer; unknown ids are ignored. */
  clearTimeout(id: TimerId): void;
}

/** The real clock: `performance.now()` and the runtime's timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
};
