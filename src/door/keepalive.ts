/**
 * In-call keep-alive (door-protocol.md §4 CALLCONFIRM): from CALLANSWER on, the gateway sends a
 * 61-byte CALLCONFIRM ASK every 500 ms with an incrementing counter; the door echoes a REPLY.
 * When no REPLY came for `lostAfterMs` (6 s), the door is gone.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";

/** Options of {@linkcode KeepAlive}. */
export interface KeepAliveOptions {
  clock: Clock;
  /** Sends one CALLCONFIRM ASK carrying `counter`. */
  send: (counter: number) => void;
  /** Called once when the door stopped answering. */
  onLost: () => void;
  /** @default {500} */
  intervalMs?: number;
  /** @default {6000} */
  lostAfterMs?: number;
}

/** One call's keep-alive. */
export class KeepAlive {
  #o: Required<KeepAliveOptions>;
  #timer: TimerId | undefined;
  #counter = 0;
  #lastReply: number;
  #stopped = false;

  /** Starts at once; the first CALLCONFIRM goes out after one interval. */
  constructor(options: KeepAliveOptions) {
    this.#o = { intervalMs: 500, lostAfterMs: 6000, ...options };
    this.#lastReply = options.clock.now();
    this.#schedule();
  }

  /** When the door last answered (ms on the clock). */
  get lastReply(): number {
    return this.#lastReply;
  }

  /** Number of CALLCONFIRMs sent. */
  get sent(): number {
    return this.#counter;
  }

  /** True once stopped or lost. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Records a REPLY from the door. */
  onReply(): void {
    this.#lastReply = this.#o.clock.now();
  }

  /** Stops sending. Idempotent. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#timer = this.#o.clock.setTimeout(() => this.#tick(), this.#o.intervalMs);
  }

  #tick(): void {
    if (this.#stopped) return;
    if (this.#o.clock.now() - this.#lastReply >= this.#o.lostAfterMs) {
      this.stop();
      this.#o.onLost();
      return;
    }
    this.#counter++;
    this.#o.send(this.#counter);
    this.#schedule();
  }
}
