/**
 * Call records and the unlock audit as a subscriber of the gateway's events: `call_started`,
 * `call_answered`, `call_talk`, `unlock_attempted` and `call_ended` become writes to the
 * {@linkcode RecordStore}. Writes run concurrently (the store serialises each call's writes);
 * at most {@linkcode MAX_IN_FLIGHT} are pending, beyond that they are dropped and counted. Refused
 * unlock attempts are counted per (uid, result, minute) by the {@linkcode AuditAggregator}. A
 * failed write is counted and logged once per reason; it never reaches the call.
 *
 * @module
 */

import { type Clock, systemClock } from "../clock.ts";
import type { EventOf, GatewayEvent } from "../events/types.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { RecordStore } from "./records.ts";
import { AuditAggregator } from "./audit_aggregator.ts";

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
  /** Timers of the audit counts. @default systemClock */
  clock?: Pick<Clock, "now" | "wallNow" | "setTimeout" | "clearTimeout">;
}

/** Turns events into record writes. */
export class RecordWriter {
  #o: RecordWriterOptions;
  #inFlight = new Set<Promise<unknown>>();
  #failedLogged = false;
  #audit: AuditAggregator;

  /** Creates the writer; subscribe {@linkcode RecordWriter.onEvent} to the bus. */
  constructor(options: RecordWriterOptions) {
    this.#o = options;
    this.#audit = new AuditAggregator({
      clock: options.clock ?? systemClock,
      write: (row) => this.#run(() => options.records.auditUnlock(row)),
    });
  }

  /** Writes pending now. */
  get pending(): number {
    return this.#inFlight.size;
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
    void this.#run(write);
  }

  /** Starts a write; resolves once it has settled (never rejects). */
  #run(write: () => Promise<unknown>): Promise<void> {
    if (this.#inFlight.size >= MAX_IN_FLIGHT) {
      this.#o.metrics.inc("record_writes_dropped_total");
      return Promise.resolve();
    }
    let p: Promise<unknown>;
    try {
      p = write();
    } catch (e) {
      this.#failed(e);
      return Promise.resolve();
    }
    const tracked: Promise<void> = p.then(() => {}, (e) => this.#failed(e)).finally(() =>
      this.#inFlight.delete(tracked)
    );
    this.#inFlight.add(tracked);
    return tracked;
  }

  #failed(error: unknown): void {
    this.#o.metrics.inc("record_writes_failed_total");
    if (!this.#failedLogged) {
      this.#failedLogged = true;
      this.#o.logger.error("call record write failed (further failures are only counted)", {
        error,
      });
    }
  }

  /** Resolves when every write started so far has settled, the audit counts included. */
  async flushed(): Promise<void> {
    do {
      this.#audit.flush();
      while (this.#inFlight.size) await Promise.allSettled([...this.#inFlight]);
    } while (this.#audit.dirty);
  }

  /** Writes what is counted and waits for every write; stops the timers. */
  async close(): Promise<void> {
    await this.#audit.close();
    await this.flushed();
  }
}
