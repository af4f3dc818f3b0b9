/**
 * Duplicate detection for a peer's ASKs (door-protocol.md §4 "Retransmission"): a door resends
 * every ASK until it hears the answer (a CALL up to 6 times, 600 ms apart). Each copy gets the
 * same answer again and never produces a second event.
 *
 * A copy is a duplicate while it arrives within `gapMs` of the previous copy and within
 * `windowMs` of the first; later, the same ASK starts anew (a rebooted door calling again).
 *
 * @module
 */

import type { Endpoint } from "../net/port.ts";

interface Entry {
  first: number;
  last: number;
  answeredAt: number;
  to: Endpoint;
  answer: Uint8Array | undefined;
}

/** What {@linkcode AskCache.seen} found. */
export type Seen =
  | { readonly fresh: true }
  | { readonly fresh: false; readonly answer: Uint8Array | undefined; readonly to: Endpoint };

/** Remembers recent ASKs by key and the answer each got. */
export class AskCache {
  #entries = new Map<string, Entry>();
  #gap: number;
  #window: number;
  #lastSweep = 0;
  #answeredGrace: number;

  /**
   * @param gapMs longest gap between copies (a door resends every 600 ms; a rebooting door takes
   * far longer than this to call again)
   * @param windowMs longest span of one ASK's copies (6 sends: 3 s, with margin for a busy box)
   * @param answeredGraceMs how long after our answer a copy may still trail it
   */
  constructor(gapMs = 3000, windowMs = 8000, answeredGraceMs = 3000) {
    this.#gap = gapMs;
    this.#window = windowMs;
    this.#answeredGrace = answeredGraceMs;
  }

  /** Number of remembered ASKs. */
  get size(): number {
    return this.#entries.size;
  }

  /** Records an arriving ASK; `fresh` the first time, else the answer to resend (if any). */
  seen(key: string, from: Endpoint, now: number): Seen {
    this.#sweep(now);
    const e = this.#entries.get(key);
    // Once answered, the door stops resending; a copy can only trail our answer by a resend
    // interval or so (600 ms; 3 s allows for a busy box). Later, the same bytes are a new press.
    const trailing = e?.answer === undefined || now - e.answeredAt < this.#answeredGrace;
    if (e && trailing && now - e.last < this.#gap && now - e.first < this.#window) {
      e.last = now;
      e.to = from;
      return { fresh: false, answer: e.answer, to: from };
    }
    this.#entries.set(key, { first: now, last: now, answeredAt: 0, to: from, answer: undefined });
    return { fresh: true };
  }

  /** Stores the answer of an ASK (for its duplicates) and returns where to send it. */
  answer(key: string, bytes: Uint8Array, now: number): Endpoint | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    e.answer = bytes;
    e.answeredAt = now;
    e.last = Math.max(e.last, now);
    return e.to;
  }

  /** Forgets an ASK. */
  forget(key: string): void {
    this.#entries.delete(key);
  }

  #sweep(now: number): void {
    if (now - this.#lastSweep < 1000) return;
    this.#lastSweep = now;
    for (const [k, e] of this.#entries) {
      if (now - e.last >= this.#gap || now - e.first >= this.#window) this.#entries.delete(k);
    }
  }
}
