/**
 * Call records and the unlock audit as a subscriber of the gateway's events: `call_started`,
 * `call_answered`, `call_talk`, `unlock_attempted` and `call_ended` become writes to the
 * {@linkcode RecordStore}. Writes run concurrently (the store serialises each call's writes);
 * at most {@linkcode MAX_IN_FLIGHT} are pending, beyond that they are dropped and counted. Refused
 * unlock attempts are counted per (uid, result, minute) by the {@linkcode AuditAggregator}. When
 * the store refuses writes (a full disk) they wait in memory, bounded, and are retried in order
 * ({@linkcode StoreWrites}: {@linkcode RecordWriter.health} for `/healthz`); a failure never
 * reaches the call.
 *
 * @module
 */

import { type Clock, systemClock } from "../clock.ts";
import type { EventOf, GatewayEvent } from "../events/types.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { RecordStore } from "./records.ts";
import { AuditAggregator } from "./audit_aggregator.ts";
import { type StoreHealth, StoreWrites } from "./store_writes.ts";

/** Writes pending at most; more are dropped and counted. */
export const MAX_IN_FLIGHT = 10_000;

/** The event types the writer takes. */
export const RECORD_EVENTS = [
  "call_started",
  "call_answered",
  "call_talk",
  "unlock_attempted",
  "call_ended",
] as const;

/** The events the writer takes. */
export type RecordEvent = EventOf<typeof RECORD_EVENTS[number]>;

/** Options of {@linkcode RecordWriter}. */
export interface RecordWriterOptions {
  records: Pick<RecordStore, "start" | "update" | "addUnlock" | "auditUnlock">;
  logger: Logger;
  metrics: Metrics;
  /** The IP of a connected phone, for audit entries that lack one. */
  ipOf?: (uid: string) => string | undefined;
  /** Timers of the audit counts and the retries. @default systemClock */
  clock?: Pick<Clock, "now" | "wallNow" | "setTimeout" | "clearTimeout">;
  /** Retry period while the store refuses writes. @default 5000 */
  retryMs?: number;
}

/** Turns events into record writes. */
export class RecordWriter {
  #o: RecordWriterOptions;
  #writes: StoreWrites;
  #audit: AuditAggregator;

  /** Creates the writer; subscribe {@linkcode RecordWriter.onEvent} to the bus. */
  constructor(options: RecordWriterOptions) {
    this.#o = options;
    const clock = options.clock ?? systemClock;
    this.#writes = new StoreWrites({
      clock,
      logger: options.logger,
      metrics: options.metrics,
      maxInFlight: MAX_IN_FLIGHT,
      ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}),
    });
    this.#audit = new AuditAggregator({
      clock,
      write: (row) => this.#writes.run(() => options.records.auditUnlock(row)),
    });
  }

  /** Writes pending now (running or waiting for the store). */
  get pending(): number {
    return this.#writes.pending;
  }

  /** The store as the last write saw it (`/healthz`). */
  health(): StoreHealth {
    return this.#writes.health();
  }

  /** Handles one event (synchronously starts its writes). */
  onEvent(e: GatewayEvent): void {
    const r = this.#o.records;
    const iso = (ms: number) => new Date(ms).toISOString();
    switch (e.type) {
      case "call_started":
        return this.#write(() =>
          r.start({
            callId: e.callId,
            door: e.doorAddress,
            doorIp: e.doorIp,
            roomAddress: e.roomAddress,
            ringAt: iso(e.at),
          })
        );
      case "call_answered":
        return this.#write(() => r.update(e.callId, { answeredAt: iso(e.at) }));
      case "call_talk":
        return this.#write(() => r.update(e.callId, { talkAt: iso(e.at), answeredBy: e.uid }));
      case "call_ended":
        return this.#write(() => r.update(e.callId, { endedAt: iso(e.at), endReason: e.reason }));
      case "unlock_attempted":
        return this.#unlock(e);
    }
  }

  #unlock(e: EventOf<"unlock_attempted">): void {
    const r = this.#o.records;
    const at = new Date(e.at).toISOString();
    if (e.callId !== undefined && (e.result === "success" || e.result === "fail")) {
      const callId = e.callId;
      this.#write(() =>
        r.addUnlock(callId, {
          uid: e.uid,
          at,
          result: e.result,
          ...(e.reason !== undefined ? { reason: e.reason } : {}),
        })
      );
    }
    // One row per real attempt; refused ones counted per (uid, result, minute).
    this.#audit.add(e, e.ip ?? this.#o.ipOf?.(e.uid));
  }

  #write(write: () => Promise<unknown>): void {
    void this.#writes.run(write);
  }

  /**
   * Resolves when every write started so far has settled, the audit counts included (or the
   * store still refuses writes after one more try: they keep waiting).
   */
  async flushed(): Promise<void> {
    do {
      this.#audit.flush();
      await this.#writes.flushed();
    } while (this.#audit.dirty && this.#writes.health().state === "ok");
  }

  /** Writes what it can (one more try if the store refused); what still waits is lost, counted. */
  async close(): Promise<void> {
    this.#audit.flush();
    await this.#writes.close();
    await this.#audit.close();
  }
}
