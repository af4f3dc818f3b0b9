/**
 * Call records and the unlock audit as a subscriber of the gateway's events: `call_started`,
 * `call_answered`, `call_talk`, `unlock_attempted` and `call_ended` become record writes,
 * `call_refused` and calls that ended `no_phone_online` become per-door, per-hour counters
 * (no phone was ever offered them: a record each would let a CALL flood fill the store).
 *
 * Writes are queued (at most {@linkcode MAX_QUEUED}; beyond that they are dropped and counted,
 * `record_writes_dropped_total`) and committed in batches, {@linkcode BATCH_SIZE} writes per
 * `kv.atomic()` ({@linkcode RecordStore.writeBatch}), one batch at a time, every
 * {@linkcode FLUSH_MS} or as soon as a batch is full: a flood makes about ten commits a second,
 * never one per call, so logins and calls never wait behind the store. A failed batch is
 * counted (`record_writes_failed_total`, per write) and logged once; it never reaches the call.
 * {@linkcode RecordWriter.close} writes everything accepted before it (the shutdown path).
 *
 * @module
 */

import { type Clock, systemClock, type TimerId } from "../clock.ts";
import type { EventOf, GatewayEvent } from "../events/types.ts";
import type { Logger } from "../log.ts";
import type { Counter, Metrics } from "../metrics.ts";
import { MAX_BATCH, type RecordStore, type RecordWrite } from "./records.ts";

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
  records: Pick<RecordStore, "writeBatch">;
  logger: Logger;
  metrics: Metrics;
  /** Timers of the flush. @default {systemClock} */
  clock?: Pick<Clock, "setTimeout" | "clearTimeout">;
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
  #clock: Pick<Clock, "setTimeout" | "clearTimeout">;
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
    this.#clock = options.clock ?? systemClock;
    const m = options.metrics;
    this.#dropped = m.counter(
      "record_writes_dropped_total",
      {},
      "Record writes dropped: the queue was full, or the writer closed",
    );
    this.#failed = m.counter("record_writes_failed_total", {}, "Record writes that failed");
    m.gauge("record_writes_queued", () => this.pending, "Record writes queued or in flight");
  }

  /** Writes queued or in flight now. */
  get pending(): number {
    return this.#queue.length + this.#inBatch;
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
   * Resolves when every write queued so far has been tried (committed, or counted as failed):
   * it commits now what is queued rather than waiting for the timer.
   */
  async flushed(): Promise<void> {
    this.#flushing++;
    try {
      while (this.#queue.length || this.#running) {
        this.#kick();
        await this.#running;
      }
    } finally {
      this.#flushing--;
    }
  }

  /** Writes what was accepted, then drops (and counts) whatever comes after. */
  async close(): Promise<void> {
    await this.flushed();
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
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
    const ip = e.ip ?? this.#o.ipOf?.(e.uid);
    this.#enqueue({
      kind: "audit",
      input: {
        uid: e.uid,
        roomAddress: e.roomAddress,
        doorAddress: e.doorAddress,
        result: e.result,
        at,
        ...(e.callId !== undefined ? { callId: e.callId } : {}),
        ...(e.reason !== undefined ? { reason: e.reason } : {}),
        ...(ip !== undefined ? { ip } : {}),
      },
    });
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
    // One batch when the timer fired; more while full batches wait or a flush is waiting.
    let first = due;
    while (this.#queue.length && (first || this.#queue.length >= BATCH_SIZE || this.#flushing)) {
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
        const result = await this.#o.records.writeBatch(batch);
        for (const e of result.rejected) this.#fail(e, 1);
      } catch (e) {
        this.#fail(e, batch.length);
      } finally {
        this.#inBatch = 0;
      }
    }
  }

  #fail(error: unknown, writes: number): void {
    this.#failed.value += writes;
    if (!this.#failedLogged) {
      this.#failedLogged = true;
      this.#o.logger.error("call record write failed (further failures are only counted)", {
        error,
        writes,
      });
    }
  }
}
