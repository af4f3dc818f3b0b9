/**
 * Call records and the unlock audit as a subscriber of the gateway's events: `call_started`,
 * `call_answered`, `call_talk`, `unlock_attempted` and `call_ended` become writes to the
 * {@linkcode RecordStore}. Writes run concurrently (the store serialises each call's writes);
 * at most {@linkcode MAX_IN_FLIGHT} are pending, beyond that they are dropped and counted. A
 * failed write is counted and logged once per reason; it never reaches the call.
 *
 * @module
 */

import type { EventOf, GatewayEvent } from "../events/types.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { RecordStore } from "./records.ts";

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
}

/** Turns events into record writes. */
export class RecordWriter {
  #o: RecordWriterOptions;
  #inFlight = new Set<Promise<unknown>>();
  #failedLogged = false;

  /** Creates the writer; subscribe {@linkcode RecordWriter.onEvent} to the bus. */
  constructor(options: RecordWriterOptions) {
    this.#o = options;
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
    const ip = e.ip ?? this.#o.ipOf?.(e.uid);
    this.#write(() =>
      r.auditUnlock({
        uid: e.uid,
        roomAddress: e.roomAddress,
        doorAddress: e.doorAddress,
        result: e.result,
        at,
        ...(e.callId !== undefined ? { callId: e.callId } : {}),
        ...(e.reason !== undefined ? { reason: e.reason } : {}),
        ...(ip !== undefined ? { ip } : {}),
      })
    );
  }

  #write(write: () => Promise<unknown>): void {
    if (this.#inFlight.size >= MAX_IN_FLIGHT) {
      this.#o.metrics.inc("record_writes_dropped_total");
      return;
    }
    let p: Promise<unknown>;
    try {
      p = write();
    } catch (e) {
      return this.#failed(e);
    }
    const tracked = p.catch((e) => this.#failed(e)).finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
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

  /** Resolves when every write started so far has settled. */
  async flushed(): Promise<void> {
    while (this.#inFlight.size) await Promise.allSettled([...this.#inFlight]);
  }
}
