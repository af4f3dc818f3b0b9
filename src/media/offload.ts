/**
 * The port the media relay hands its hot path to when a native media engine runs
 * (`--media-engine native`, `media/native/engine.ts`): per call slot, a door route (door media to
 * the phones' UDP addresses) and a talker route (the talker's audio to the door, rewritten and
 * paced as the relay does it). The relay keeps every decision; the engine only applies them and
 * gives back its counters and the talker's state.
 *
 * @module
 */

import type { Endpoint } from "../net/port.ts";

/** Layout of the array {@linkcode MediaOffload.collect} fills: counters, then state. */
export const COUNTER = {
  doorIn: 0,
  doorInBytes: 1,
  toPhones: 2,
  toPhonesBytes: 3,
  phoneIn: 4,
  phoneInBytes: 5,
  toDoor: 6,
  toDoorBytes: 7,
  dropDoorAudio: 8,
  dropPaced: 9,
  dropNotMedia: 10,
  /** The door's header form (77 or 86). */
  form: 11,
  /** Talker state: last timestamp and frame number sent, age of the timestamp origin (ms, NaN:
   * none), pace tokens, ms since the talker was last heard (-1: not since the route was set). */
  outTs: 12,
  outFrame: 13,
  originAge: 14,
  paceTokens: 15,
  heardAgo: 16,
} as const;

/** Length of the array {@linkcode MediaOffload.collect} fills. */
export const COLLECT_LENGTH = 17;

/** Where the relay's routes go when media is forwarded natively. */
export interface MediaOffload {
  /** A free call slot, or undefined (that call's media then stays in JavaScript). */
  allocate(): number | undefined;
  /** The call ended: its media is not forwarded from now on. */
  release(slot: number): void;
  /**
   * Door media from `door`'s IP goes to `phones` when `native` (else to the relay), door audio
   * only when `talking`; `form` is the door's header form.
   */
  routeDoor(
    slot: number,
    door: Endpoint,
    native: boolean,
    talking: boolean,
    form: number,
    phones: readonly Endpoint[],
  ): void;
  /**
   * Phone audio from `from` goes to the door, continuing `state` (out timestamp, out frame, age
   * of the timestamp origin in ms or NaN, pace tokens); `undefined` clears the route.
   */
  talker(
    slot: number,
    from: Endpoint | undefined,
    parties48: Uint8Array,
    state: Float64Array,
  ): void;
  /** Reads and resets the slot's counters and state ({@linkcode COUNTER}). */
  collect(slot: number, out: Float64Array): void;
}
