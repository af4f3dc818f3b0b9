/**
 * Retransmission of our own ASKs (door-protocol.md §4 "Retransmission"): an ASK is resent every
 * `intervalMs` until the matching REPLY arrives or `maxSends` sends went unanswered.
 *
 * Used by the gateway (100 ms × 6) and by the door simulator (NS 100 ms × 6, CALL 600 ms × 6).
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import type { Endpoint } from "../net/port.ts";

/** Options of one {@linkcode AskEngine.ask}. */
export interface AskOptions {
  /** Match key: a REPLY reported with this key completes the ask. */
  key: string;
  /** @default {100} */
  intervalMs?: number;
  /** @default {6} */
  maxSends?: number;
  /** Cancels the ask (resolves `false`, no further sends). */
  signal?: AbortSignal;
}

interface Pending {
  bytes: Uint8Array;
  to: Endpoint;
  sends: number;
  max: number;
  interval: number;
  timer: TimerId | undefined;
  done: (ok: boolean) => void;
  promise: Promise<boolean>;
}

/** Sends ASKs with retransmission and matches REPLYs by key. */
export class AskEngine {
  #clock: Clock;
  #send: (bytes: Uint8Array, to: Endpoint) => void;
  #pending = new Map<string, Pending>();

  /** `send` puts one datagram on the wire. */
  constructor(clock: Clock, send: (bytes: Uint8Array, to: Endpoint) => void) {
    this.#clock = clock;
    this.#send = send;
  }

  /** Number of asks in flight. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Sends `bytes` to `to` now and again every interval; resolves `true` on the matching REPLY,
   * `false` after the last send's interval passed unanswered or on abort. An ask with a key
   * already in flight joins it instead of sending twice.
   */
  ask(bytes: Uint8Array, to: Endpoint, options: AskOptions): Promise<boolean> {
    const existing = this.#pending.get(options.key);
    if (existing) return existing.promise;
    if (options.signal?.aborted) return Promise.resolve(false);
    let done!: (ok: boolean) => void;
    const promise = new Promise<boolean>((resolve) => (done = resolve));
    const p: Pending = {
      bytes,
      to,
      sends: 0,
      max: options.maxSends ?? 6,
      interval: options.intervalMs ?? 100,
      timer: undefined,
      done,
      promise,
    };
    this.#pending.set(options.key, p);
    options.signal?.addEventListener("abort", () => this.#finish(options.key, false), {
      once: true,
    });
    this.#tick(options.key, p);
    return promise;
  }

  #tick(key: string, p: Pending): void {
    if (this.#pending.get(key) !== p) return;
    if (p.sends >= p.max) {
      this.#finish(key, false);
      return;
    }
    p.sends++;
    this.#send(p.bytes, p.to);
    p.timer = this.#clock.setTimeout(() => this.#tick(key, p), p.interval);
  }

  #finish(key: string, ok: boolean): void {
    const p = this.#pending.get(key);
    if (!p) return;
    this.#pending.delete(key);
    if (p.timer !== undefined) this.#clock.clearTimeout(p.timer);
    p.done(ok);
  }

  /** Reports a REPLY; returns true when it completed an ask. */
  onReply(key: string): boolean {
    if (!this.#pending.has(key)) return false;
    this.#finish(key, true);
    return true;
  }

  /** Cancels every ask whose key starts with `prefix` (all when omitted). */
  cancel(prefix = ""): void {
    for (const key of [...this.#pending.keys()]) {
      if (key.startsWith(prefix)) this.#finish(key, false);
    }
  }
}
