/**
 * "Logged once at debug": remembers which keys were already reported, so that a flood of the same
 * bad input is counted every time but logged only the first time. Bounded: after `limit` distinct
 * keys it forgets them all and starts over (a hostile peer cannot grow it without end).
 *
 * @module
 */

/** Says whether a key is seen for the first time. */
export class OnceFilter {
  #seen = new Set<string>();
  #limit: number;

  /** @param limit most keys remembered before the filter starts over */
  constructor(limit = 1024) {
    this.#limit = limit;
  }

  /** True the first time `key` is seen (since the last start-over), false afterwards. */
  first(key: string): boolean {
    if (this.#seen.has(key)) return false;
    if (this.#seen.size >= this.#limit) this.#seen.clear();
    this.#seen.add(key);
    return true;
  }
}
