/**
 * Store writes that survive a full disk: each write runs at once while the store accepts writes;
 * once one fails because of the store (full disk, I/O error, busy), it and every later write wait
 * in a bounded FIFO queue, retried every `retryMs` in order until the store accepts writes again.
 * What is in memory is kept rather than lost, and order is kept (a call's record is created before
 * it is updated). A write refused for its content (a bad field: a bug) is dropped at once.
 *
 * Visible: {@linkcode StoreWrites.health} (for `/healthz`), `store_write_failures_total{reason}`
 * (`full`, `error`, `invalid`), the `record_writes_queued` gauge, and one error line per reason a
 * minute saying how many failed since.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { LogThrottle } from "../log_throttle.ts";

/** Why a write failed (counter label). */
export type StoreFailure = "full" | "error" | "invalid";

/** The store as its writers saw it last. */
export type StoreHealth =
  | { readonly state: "ok" }
  | {
    /** `full`: the disk is full; `failing`: another store error. */
    readonly state: "full" | "failing";
    /** The store's error message, e.g. `database or disk is full`. */
    readonly reason: string;
    /** Since when (ISO 8601). */
    readonly since: string;
    /** Writes kept in memory, waiting. */
    readonly queued: number;
  };

/** Options of {@linkcode StoreWrites}. */
export interface StoreWritesOptions {
  clock: Pick<Clock, "now" | "wallNow" | "setTimeout" | "clearTimeout">;
  logger: Logger;
  metrics: Metrics;
  /** Retry period while the store refuses writes. @default 5000 */
  retryMs?: number;
  /** Writes kept while the store refuses writes; more are dropped and counted. @default 10_000 */
  maxQueued?: number;
  /** Writes running at once; more are dropped and counted. @default 10_000 */
  maxInFlight?: number;
}

/** Tells a store failure from a write refused for its content. */
export function classifyFailure(error: unknown): StoreFailure {
  const text = error instanceof Error ? error.message : String(error);
  if (/disk is full|no space left|SQLITE_FULL|ENOSPC|os error 28/i.test(text)) return "full";
  // RecordStore's own checks ("Cannot record …: field …") and bad limits: retrying cannot help.
  if ((error instanceof TypeError || error instanceof RangeError) && /^Cannot /.test(text)) {
    return "invalid";
  }
  return "error";
}

interface Queued {
  /** Order of `run` calls: the queue is kept in it (a write running when the store failed goes
   * back before the writes queued meanwhile, e.g. a call's creation before its updates). */
  readonly seq: number;
  readonly write: () => Promise<unknown>;
  readonly done: () => void;
}

/** Runs store writes; never rejects, never throws. */
export class StoreWrites {
  #o: StoreWritesOptions;
  #inFlight = new Set<Promise<void>>();
  #queue: Queued[] = [];
  #health: StoreHealth = { state: "ok" };
  #timer: TimerId | undefined;
  #draining: Promise<void> | undefined;
  #throttle: LogThrottle;
  #failedSinceLog = 0;
  #closed = false;
  #seq = 0;

  /** Creates the writer of one store. */
  constructor(options: StoreWritesOptions) {
    this.#o = options;
    this.#throttle = new LogThrottle(options.clock);
    options.metrics.gauge(
      "record_writes_queued",
      () => this.#queue.length,
      "Record writes kept in memory until the store accepts writes again",
    );
  }

  /** Writes running or waiting. */
  get pending(): number {
    return this.#inFlight.size + this.#queue.length;
  }

  /** The store's state as the last write saw it. */
  health(): StoreHealth {
    const h = this.#health;
    return h.state === "ok" ? h : { ...h, queued: this.#queue.length };
  }

  /**
   * Runs `write` now, or queues it behind earlier writes while the store refuses writes. Resolves
   * once it is written, or given up (refused for its content, dropped, or lost at close).
   */
  run(write: () => Promise<unknown>): Promise<void> {
    if (this.#closed) return this.#lost(1);
    const seq = this.#seq++;
    if (this.#queue.length > 0 || this.#health.state !== "ok") return this.#enqueue(seq, write);
    if (this.#inFlight.size >= (this.#o.maxInFlight ?? 10_000)) {
      this.#o.metrics.inc("record_writes_dropped_total");
      return Promise.resolve();
    }
    let resolve!: () => void;
    const settled = new Promise<void>((r) => (resolve = r));
    const tracked: Promise<void> = this.#attempt(write).then((outcome) => {
      this.#inFlight.delete(tracked);
      // A failure of the store: this write waits, in order, for the store to come back.
      if (outcome === "retry") return this.#requeue({ seq, write, done: resolve });
      resolve();
    });
    this.#inFlight.add(tracked);
    return settled;
  }

  /** Resolves when no write runs and none waits, or the store still refuses after one more try. */
  async flushed(): Promise<void> {
    while (this.#inFlight.size) await Promise.allSettled([...this.#inFlight]);
    if (this.#queue.length) await this.#drain();
    while (this.#inFlight.size) await Promise.allSettled([...this.#inFlight]);
  }

  /** Tries what waits once more; what the store still refuses is lost (counted and logged). */
  async close(): Promise<void> {
    await this.flushed();
    this.#closed = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const lost = this.#queue.splice(0);
    if (lost.length) {
      this.#o.logger.error("Cannot write call records: the store still refuses writes at stop", {
        lost: lost.length,
        reason: this.#health.state === "ok" ? undefined : this.#health.reason,
      });
      this.#o.metrics.inc("record_writes_failed_total", {}, lost.length);
    }
    for (const q of lost) q.done();
  }

  #lost(n: number): Promise<void> {
    this.#o.metrics.inc("record_writes_failed_total", {}, n);
    return Promise.resolve();
  }

  #enqueue(seq: number, write: () => Promise<unknown>): Promise<void> {
    if (this.#queue.length >= (this.#o.maxQueued ?? 10_000)) {
      this.#o.metrics.inc("record_writes_dropped_total");
      return Promise.resolve();
    }
    return new Promise<void>((done) => this.#requeue({ seq, write, done }));
  }

  #requeue(q: Queued): void {
    if (this.#closed || this.#queue.length >= (this.#o.maxQueued ?? 10_000)) {
      this.#o.metrics.inc(
        this.#closed ? "record_writes_failed_total" : "record_writes_dropped_total",
      );
      return q.done();
    }
    let at = this.#queue.length;
    while (at > 0 && this.#queue[at - 1]!.seq > q.seq) at--;
    this.#queue.splice(at, 0, q);
    this.#arm();
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      void this.#drain();
    }, this.#o.retryMs ?? 5000);
  }

  /** Writes what waits, in order, until the store refuses again. */
  #drain(): Promise<void> {
    this.#draining ??= (async () => {
      try {
        while (this.#queue.length) {
          const head = this.#queue[0]!;
          const outcome = await this.#attempt(head.write, true);
          if (outcome === "retry") return this.#arm();
          this.#queue.shift();
          head.done();
        }
      } finally {
        this.#draining = undefined;
      }
    })();
    return this.#draining;
  }

  /** One try: `ok`, `retry` (the store failed), or `dropped` (refused for its content). */
  async #attempt(
    write: () => Promise<unknown>,
    fromQueue = false,
  ): Promise<"ok" | "retry" | "dropped"> {
    try {
      await write();
    } catch (error) {
      const reason = classifyFailure(error);
      this.#failed(reason, error);
      return reason === "invalid" ? "dropped" : "retry";
    }
    // Back once a waiting write went through (a write that was already running when another
    // failed may squeeze into the last free page: that is no recovery yet).
    if (this.#health.state !== "ok" && (fromQueue || this.#queue.length === 0)) {
      this.#o.logger.info("the store accepts writes again", {
        since: this.#health.since,
        waiting: this.#queue.length - (fromQueue ? 1 : 0),
      });
      this.#health = { state: "ok" };
    }
    return "ok";
  }

  #failed(reason: StoreFailure, error: unknown): void {
    const o = this.#o;
    o.metrics.inc("store_write_failures_total", { reason });
    this.#failedSinceLog++;
    const message = error instanceof Error ? error.message : String(error);
    if (reason === "invalid") {
      o.metrics.inc("record_writes_failed_total");
    } else if (this.#health.state === "ok") {
      this.#health = {
        state: reason === "full" ? "full" : "failing",
        reason: message,
        since: new Date(o.clock.wallNow()).toISOString(),
        queued: 0,
      };
    }
    if (!this.#throttle.allow(reason)) return;
    o.logger.error(
      reason === "invalid"
        ? "Cannot write a call record: refused for its content (dropped)"
        : "Cannot write call records: the store refuses writes (kept in memory, retried)",
      {
        reason: message,
        failures: this.#failedSinceLog,
        waiting: this.#queue.length + 1,
        retryEveryMs: o.retryMs ?? 5000,
      },
    );
    this.#failedSinceLog = 0;
  }
}
