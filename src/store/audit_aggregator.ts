/**
 * The unlock audit without a write per flood packet: refused attempts (`not_bound`,
 * `not_in_call`, `rate_limited`) are counted per (uid, result, minute) in one audit row with a
 * `count`; every real attempt (`success`/`fail`: a REMOTEOPENLOCK that went to a door) keeps a row
 * of its own.
 *
 * A group's first attempt is written at once (count 1, so a single refused attempt shows up as it
 * did before); later ones raise the count in memory and the row is rewritten (same key) at most
 * once per `flushMs`, never while its previous write is still pending. A phone sending 37,000
 * `unlock`/s thus costs about one write a second. Bounded: at most `maxGroups` groups are
 * remembered; beyond that an attempt gets a row of its own.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import type { EventOf } from "../events/types.ts";
import type { UnlockAuditInput } from "./records.ts";

/** One audit row to write (an `id` and `at` that stay the same when the row is rewritten). */
export type AuditRow = UnlockAuditInput & { readonly id: string; readonly at: string };

/** An unlock attempt as the aggregator takes it (the event, with the phone's IP when known). */
export type UnlockAttempt = EventOf<"unlock_attempted">;

/** Options of {@linkcode AuditAggregator}. */
export interface AuditAggregatorOptions {
  /** Writes (or rewrites) a row; resolves once written or given up (never rejects). */
  write: (row: AuditRow) => Promise<void>;
  clock: Pick<Clock, "wallNow" | "setTimeout" | "clearTimeout">;
  /** Longest delay of a group's count. @default 1000 */
  flushMs?: number;
  /** Groups remembered at most. @default 10_000 */
  maxGroups?: number;
  /** Row ids. @default 16 random hex digits */
  newId?: () => string;
}

/** Results that are counted per (uid, result, minute) rather than written one by one. */
export const AGGREGATED_RESULTS: ReadonlySet<string> = new Set([
  "not_bound",
  "not_in_call",
  "rate_limited",
]);

const MINUTE_MS = 60_000;

interface Group {
  row: AuditRow;
  minute: number;
  count: number;
  lastAt: string;
  dirty: boolean;
  writing: boolean;
  /** The row's write in flight, while `writing`. */
  pending?: Promise<void>;
}

function randomId(): string {
  return crypto.getRandomValues(new Uint8Array(8)).toHex();
}

/** Aggregates refused unlock attempts into counted rows. */
export class AuditAggregator {
  #o: AuditAggregatorOptions;
  #groups = new Map<string, Group>();
  #timer: TimerId | undefined;

  /** Creates the aggregator; it writes through `options.write`. */
  constructor(options: AuditAggregatorOptions) {
    this.#o = options;
  }

  /** Groups remembered now. */
  get size(): number {
    return this.#groups.size;
  }

  /** True while some group's count is not written yet. */
  get dirty(): boolean {
    for (const g of this.#groups.values()) if (g.dirty) return true;
    return false;
  }

  /** Takes one attempt: a real one is written at once, a refused one counted. */
  add(e: UnlockAttempt, ip?: string): void {
    const at = new Date(e.at).toISOString();
    const row: AuditRow = {
      id: this.#o.newId?.() ?? randomId(),
      uid: e.uid,
      roomAddress: e.roomAddress,
      doorAddress: e.doorAddress,
      result: e.result,
      at,
      ...(e.callId !== undefined ? { callId: e.callId } : {}),
      ...(e.reason !== undefined ? { reason: e.reason } : {}),
      ...(ip !== undefined ? { ip } : {}),
    };
    if (!AGGREGATED_RESULTS.has(e.result)) return void this.#o.write(row);
    const minute = Math.floor(e.at / MINUTE_MS);
    const key = `${e.result}|${minute}|${e.uid}`;
    const group = this.#groups.get(key);
    if (group) {
      group.count++;
      group.lastAt = at;
      group.dirty = true;
      return this.#arm();
    }
    if (this.#groups.size >= (this.#o.maxGroups ?? 10_000)) this.#forgetOld();
    if (this.#groups.size >= (this.#o.maxGroups ?? 10_000)) return void this.#o.write(row);
    const g: Group = { row, minute, count: 1, lastAt: at, dirty: false, writing: false };
    this.#groups.set(key, g);
    this.#writeGroup(g);
  }

  /** Writes every counted group now (those whose last write is still pending at the next flush). */
  flush(): void {
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const g of this.#groups.values()) {
      if (g.dirty && !g.writing) this.#writeGroup(g);
    }
    this.#forgetOld();
    if (this.dirty) this.#arm();
  }

  /** Writes what is counted and stops the timer; resolves when those writes have settled. */
  async close(): Promise<void> {
    do {
      this.flush();
      const pending: Promise<void>[] = [];
      for (const g of this.#groups.values()) if (g.writing && g.pending) pending.push(g.pending);
      await Promise.all(pending);
    } while (this.dirty);
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    if (this.#timer !== undefined) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, this.#o.flushMs ?? 1000);
  }

  #writeGroup(g: Group): void {
    g.dirty = false;
    g.writing = true;
    const row: AuditRow = g.count === 1 ? g.row : { ...g.row, count: g.count, lastAt: g.lastAt };
    g.pending = this.#o.write(row).finally(() => (g.writing = false));
  }

  /** Forgets groups of past minutes whose last count is written or being written (final). */
  #forgetOld(): void {
    const minute = Math.floor(this.#o.clock.wallNow() / MINUTE_MS);
    for (const [key, g] of this.#groups) {
      if (g.minute < minute && !g.dirty) this.#groups.delete(key);
    }
  }
}
