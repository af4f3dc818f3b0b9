/**
 * The default {@linkcode DoorQuirks}: what the gateway learned about doors, in memory, for as
 * long as the process runs. Bounded: past `limit` doors the one learned longest ago is forgotten
 * (it is learned again on its next unlock, at the cost of one unanswered REMOTEOPENLOCK).
 *
 * @module
 */

import type { DoorQuirks } from "./ports.ts";

/** Door quirks kept in memory. */
export class MemoryDoorQuirks implements DoorQuirks {
  #talkForUnlock = new Set<string>();
  #limit: number;

  /** Keeps at most `limit` doors (default 4096). */
  constructor(limit = 4096) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`Cannot keep door quirks for ${limit} doors: expected an integer ≥ 1`);
    }
    this.#limit = limit;
  }

  /** Whether the door was seen to open its lock only while talking. */
  needsTalkForUnlock(doorAddress: string): boolean {
    return this.#talkForUnlock.has(doorAddress);
  }

  /** Remembers the door (the oldest one goes when the store is full). */
  setNeedsTalkForUnlock(doorAddress: string): void {
    if (this.#talkForUnlock.has(doorAddress)) return;
    if (this.#talkForUnlock.size >= this.#limit) {
      const oldest = this.#talkForUnlock.values().next().value;
      if (oldest !== undefined) this.#talkForUnlock.delete(oldest);
    }
    this.#talkForUnlock.add(doorAddress);
  }

  /** Number of doors remembered. */
  get size(): number {
    return this.#talkForUnlock.size;
  }
}
