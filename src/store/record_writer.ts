/**
 * Call records and the unlock audit as a subscriber of the gateway's events: `call_started`,
 * `call_answered`, `call_talk`, `unlock_attempted` and `call_ended` become record writes,
 * `call_refused` and calls that ended `no_phone_online` become per-door, per-hour counters
 * (no phone was ever offered them: a record each would let a CALL flood fill the store).
 *
 * Call writes are queued (at most {@linkcode MAX_QUEUED}; beyond that they are dropped and
 * counted, `record_writes_dropped_total`) and committed in batches, {@linkcode BATCH_SIZE}
 * writes per `kv.atomic()` ({@linkcode RecordStore.writeBatch}), one batch at a time, every
 * {@linkcode FLUSH_MS} or as soon as a batch is full: a flood makes about ten commits a second,
 * never one per call, so logins and calls never wait behind the store. Refused unlock attempts
 * are counted per (uid, result, minute) by the {@linkcode AuditAggregator}. When the store
 * refuses writes (a full disk) a batch waits in memory and is retried in order
 * ({@linkcode StoreWrites}: {@linkcode RecordWriter.health} for `/healthz`), and the queue
 * behind it stays bounded; a failure never reaches the call. {@linkcode RecordWriter.close}
 * writes everything accepted before it (the shutdown path).
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../clock.ts";
import type { EventOf, GatewayEvent } from "../events/types.ts";
import type { Logger } from "../log.ts";
import type { Counter, Metrics } from "../metrics.ts";
import { MAX_BATCH, type RecordStore, type RecordWrite } from "./records.ts";
import { AuditAggregator } from "./audit_aggregator.ts";
import { type StoreHealth, StoreWrites } from "./store_writes.ts";

/** Writes queued at most; more are dropped and counted. */
export const MAX_QUEUED = 10_000;
/** Writes per commit. */
export const BATCH_SIZE = MAX_BATCH;
/** Longest wait of a queued write before its batch is committed. */
export const FLUSH_MS = 100;
/** Doors counted by name per hour of unoffered calls; the others count under `*`. */
export const MAX_UNOFFERED_DOORS_PER_HOUR = 256;

/** The event types the writer takes. */
export const RECORD_EVENTS = [
  "call_started",
  "call_answered",
  "call_talk",
  "unlock_attempted",
  "call_ended",
  "call_refused",
] as const;

/** The events the writer takes. */
export type RecordEvent = EventOf<typeof RECORD_EVENTS[number]>;

/** Options of {@linkcode RecordWriter}. */
export interface RecordWriterOptions {
  records: Pick<RecordStore, "writeBatch" | "auditUnlock">;
  logger: Logger;
  metrics: Metrics;
  /** Timers of the batches, the audit counts and the retries. @default {systemClock} */
  clock?: Pick<Clock, "now" | "wallNow" | "setTimeout" | "clearTimeout">;
  /** Retry period while the store refuses writes. @default 5000 */
  retryMs?: number;
  /** The IP of a connected phone, for audit entries that lack one. */
  ipOf?: (uid: string) => string | undefined;
}

/** A queued write; a start cancelled by its call's `no_phone_online` end is skipped. */
interface Queued {
  readonly write: RecordWrite;
  cancelled: boolean;
}

const HOUR_MS = 3_600_000;

/** Turns events into batched record writes. */
export class RecordWriter {
  #o: RecordWriterOptions;
  #clock: Pick<Clock, "now" | "wallNow" | "setTimeout" | "clearTimeout">;
  #writes: StoreWrites;
  #audit: AuditAggregator;
  /** Called when a batch fails on the store (a flush waiting for it stops waiting). */
  #onStoreFailure: (() => void)[] = [];
  #queue: Queued[] = [];
  /** Queued, not yet taken: the starts of calls, by call id. */
  #unstarted = new Map<string, Queued>();
  #inBatch = 0;
  #running: Promise<void> | undefined;
  #timer: TimerId | undefined;
  /** Write everything queued, not only full batches (a flush or close is waiting). */
  #flushing = 0;
  #closed = false;
  #failedLogged = false;
  #droppedLogged = false;
  #dropped: Counter;
  #failed: Counter;
  #hour = -1;
  #hourDoors = new Set<string>();

  /** Creates the writer; subscribe {@linkcode RecordWriter.onEvent} to the bus. */
  constructor(options: RecordWriterOptions) {
    this.#o = options;
    const clock = options.clock ?? systemClock;
    this.#clock = clock;
    this.#writes = new StoreWrites({
      clock,
      logger: options.logger,
      metrics: options.metrics,
      maxInFlight: MAX_QUEUED,
      ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}),
    });
    this.#audit = new AuditAggregator({
      clock,
      write: (row) => this.#writes.run(() => options.records.auditUnlock(row)),
    });
    const m = options.metrics;
    this.#dropped = m.counter(
      "record_writes_dropped_total",
      {},
      "Record writes dropped: the queue was full, or the writer closed",
    );
    this.#failed = m.counter("record_writes_failed_total", {}, "Record writes that failed");
    m.gauge(
      "record_writes_waiting",
      () => this.#queue.length,
      "Record writes waiting for their batch",
    );
  }

  /** Writes queued, in flight, or waiting for the store. */
  get pending(): number {
    // A batch in flight is one of the store writes; count its writes instead.
    const others = this.#writes.pending - (this.#inBatch > 0 ? 1 : 0);
    return this.#queue.length + this.#inBatch + Math.max(0, others);
  }

  /** The store as the last write saw it (`/healthz`). */
  health(): StoreHealth {
    return this.#writes.health();
  }

  /** Handles one event (queues its writes). */
  onEvent(e: GatewayEvent): void {
    const iso = (ms: number) => new Date(ms).toISOString();
    switch (e.type) {
      case "call_started": {
        const q = this.#enqueue({
          kind: "start",
          start: {
            callId: e.callId,
            door: e.doorAddress,
            doorIp: e.doorIp,
            roomAddress: e.roomAddress,
            ringAt: iso(e.at),
          },
        });
        if (q) this.#unstarted.set(e.callId, q);
        return;
      }
      case "call_answered":
        return void this.#enqueue({
          kind: "update",
          callId: e.callId,
          patch: { answeredAt: iso(e.at) },
        });
      case "call_talk":
        return void this.#enqueue({
          kind: "update",
          callId: e.callId,
          patch: { talkAt: iso(e.at), answeredBy: e.uid },
        });
      case "call_ended": {
        const start = this.#unstarted.get(e.callId);
        if (e.reason === "no_phone_online" && start && start.write.kind === "start") {
          // Never offered to a phone: counted, not recorded.
          start.cancelled = true;
          this.#unstarted.delete(e.callId);
          return this.#unoffered(start.write.start.door, "no_phone_online", e.at);
        }
        return void this.#enqueue({
          kind: "update",
          callId: e.callId,
          patch: { endedAt: iso(e.at), endReason: e.reason },
        });
      }
      case "call_refused":
        return this.#unoffered(e.doorAddress, e.reason, e.at);
      case "unlock_attempted":
        return this.#unlock(e);
    }
  }

  /**
   * Resolves when every write queued so far has been tried (committed, or counted as failed),
   * the audit counts included: it commits now what is queued rather than waiting for the timer.
   * While the store refuses writes it tries once more, then resolves (the writes keep waiting).
   */
  async flushed(): Promise<void> {
    this.#flushing++;
    try {
      for (;;) {
        this.#audit.flush();
        const refusing = this.#writes.health().state !== "ok";
        if (refusing || (!this.#queue.length && !this.#running)) {
          await this.#writes.flushed();
          if (this.#writes.health().state !== "ok") return;
          if (!this.#queue.length && !this.#running && !this.#audit.dirty) return;
          continue;
        }
        this.#kick();
        let failed!: () => void;
        const failure = new Promise<void>((r) => (failed = r));
        this.#onStoreFailure.push(failed);
        await Promise.race([this.#running, failure]);
        this.#onStoreFailure = this.#onStoreFailure.filter((f) => f !== failed);
      }
    } finally {
      this.#flushing--;
    }
  }

  /**
   * Writes what was accepted (one more try if the store refused); what still waits is lost and
   * counted; whatever comes after is dropped and counted.
   */
  async close(): Promise<void> {
    await this.flushed();
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#audit.flush();
    await this.#writes.close();
    await this.#audit.close();
    await this.#running;
    const lost = this.#queue.splice(0).filter((q) => !q.cancelled).length;
    this.#unstarted.clear();
    if (lost) {
      this.#failed.value += lost;
      this.#o.logger.error("Cannot write call records: the store still refuses writes at stop", {
        lost,
      });
    }
  }

  #unoffered(door: string, reason: "no_phone_online" | "busy" | "not_a_room", at: number): void {
    const hour = Math.floor(at / HOUR_MS);
    if (hour !== this.#hour) {
      this.#hour = hour;
      this.#hourDoors.clear();
    }
    if (!this.#hourDoors.has(door)) {
      if (this.#hourDoors.size >= MAX_UNOFFERED_DOORS_PER_HOUR) door = "*";
      else this.#hourDoors.add(door);
    }
    this.#enqueue({ kind: "unoffered", door, reason, at });
  }

  #unlock(e: EventOf<"unlock_attempted">): void {
    const at = new Date(e.at).toISOString();
    if (e.callId !== undefined && (e.result === "success" || e.result === "fail")) {
      this.#enqueue({
        kind: "unlock",
        callId: e.callId,
        entry: {
          uid: e.uid,
          at,
          result: e.result,
          ...(e.reason !== undefined ? { reason: e.reason } : {}),
        },
      });
    }
    // One row per real attempt; refused ones counted per (uid, result, minute).
    this.#audit.add(e, e.ip ?? this.#o.ipOf?.(e.uid));
  }

  #enqueue(write: RecordWrite): Queued | undefined {
    if (this.#closed || this.#queue.length >= MAX_QUEUED) {
      this.#dropped.value++;
      if (!this.#droppedLogged) {
        this.#droppedLogged = true;
        this.#o.logger.error("record queue full: dropping writes (further drops only counted)", {
          bound: MAX_QUEUED,
          closed: this.#closed,
        });
      }
      return undefined;
    }
    const q: Queued = { write, cancelled: false };
    this.#queue.push(q);
    if (this.#queue.length >= BATCH_SIZE) this.#kick();
    else this.#arm();
    return q;
  }

  /** Commits the next batch in FLUSH_MS, unless one is already due. */
  #arm(): void {
    if (this.#timer !== undefined || this.#running) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#kick(true);
    }, FLUSH_MS);
  }

  /** Starts writing batches unless already writing. */
  #kick(due = false): void {
    if (this.#running) return;
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#running = this.#drain(due).finally(() => {
      this.#running = undefined;
      // What came in while writing waits for its own timer (or a full batch).
      if (this.#queue.length) {
        if (this.#queue.length >= BATCH_SIZE || this.#flushing) this.#kick();
        else this.#arm();
      }
    });
  }

  async #drain(due: boolean): Promise<void> {
    // One batch when the timer fired; more while full batches wait or a flush is waiting, and
    // everything once the store refused a batch and took it again (the backlog is overdue).
    let first = due;
    let catchUp = false;
    while (
      this.#queue.length &&
      (first || catchUp || this.#queue.length >= BATCH_SIZE || this.#flushing)
    ) {
      first = false;
      const batch: RecordWrite[] = [];
      while (batch.length < BATCH_SIZE && this.#queue.length) {
        const q = this.#queue.shift()!;
        if (q.cancelled) continue;
        if (q.write.kind === "start") this.#unstarted.delete(q.write.start.callId);
        batch.push(q.write);
      }
      if (!batch.length) continue;
      this.#inBatch = batch.length;
      try {
        // StoreWrites retries a batch the store refused, in order, and never rejects.
        await this.#writes.run(async () => {
          try {
            const result = await this.#o.records.writeBatch(batch);
            for (const e of result.rejected) this.#fail(e, 1);
          } catch (e) {
            catchUp = true;
            for (const f of this.#onStoreFailure.splice(0)) f();
            throw e;
          }
        });
      } finally {
        this.#inBatch = 0;
      }
    }
  }

  /** A write of a batch refused for its content (a bug): dropped, counted, logged once. */
  #fail(error: unknown, writes: number): void {
    this.#failed.value += writes;
    this.#o.metrics.inc("store_write_failures_total", { reason: "invalid" }, writes);
    if (!this.#failedLogged) {
      this.#failedLogged = true;
      this.#o.logger.error(
        "Cannot write a call record: refused for its content (dropped; further ones only counted)",
        { error, writes },
      );
    }
  }
}
