/**
 * Call records and the unlock audit of the whole community (`--cluster`). Each gateway keeps
 * writing its own records to its Deno KV as on a single box, and also publishes them to its
 * leaf node's own stream `REC_<id>` (subjects `rec.<id>.call.<callId>` and
 * `rec.<id>.unlock.<entryId>`), which works with the office unreachable (the leaf's JetStream
 * is on this box). The hub's stream `REC` has no subjects of its own: it *sources* every
 * gateway's stream (each gateway adds itself once) and so catches up by itself after an outage.
 *
 * Nothing is doubled: a call's record is published once it ended (one subject per call, at most
 * one message per subject in both streams) and every message carries a `Nats-Msg-Id`, so that a
 * retried publish inside the duplicate window is dropped by the leaf.
 *
 * @module
 */

import type { JetStreamManager, StreamConfig } from "@nats-io/jetstream";
import type { Clock, TimerId } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { EventOf } from "../events/types.ts";
import type { CallRecord } from "../store/records.ts";
import type { ClusterLink } from "./link.ts";
import { localRecordStream, NAMES, recordSubject, recordSubjects, token } from "./subjects.ts";

/** The events the publisher takes. */
export const CLUSTER_RECORD_EVENTS = ["call_ended", "unlock_attempted"] as const;

/** Publishes waiting at most while the leaf node is down (more are dropped and counted). */
export const MAX_PENDING = 10_000;

/** Duplicate window of the streams (a retried publish inside it is dropped). */
const DUPLICATE_WINDOW_NS = 10 * 60 * 1e9;
/** Records are kept as long as on one box (90 days), in both streams. */
const MAX_AGE_NS = 90 * 24 * 3600 * 1e9;
/** The leaf stream's bound on disk. */
const LOCAL_MAX_BYTES = 1024 ** 3;
/** Refused unlock attempts (not in a call, not bound) published per minute at most. */
export const MAX_REFUSED_PER_MINUTE = 120;
/** After a failed publish, the next attempt. */
const RETRY_MS = 2000;

/** A record as the community sees it: which gateway wrote it, and what. */
export type CommunityRecord =
  | { readonly kind: "call"; readonly gateway: string; readonly record: CallRecord }
  | {
    readonly kind: "unlock";
    readonly gateway: string;
    readonly record: Omit<EventOf<"unlock_attempted">, "type" | "at"> & {
      readonly id: string;
      readonly at: string;
    };
  };

/** Options of {@linkcode ClusterRecords}. */
export interface ClusterRecordsOptions {
  readonly link: ClusterLink;
  /** The call's record once it is written locally (after the writer flushed). */
  readonly recordOf: (callId: string) => Promise<CallRecord | undefined>;
  /**
   * The latest local call records, published again whenever the leaf comes back (a restart
   * while the leaf was down loses the queue in memory; one message per call subject makes a
   * second copy replace the first, never double it). @default none
   */
  readonly recent?: () => Promise<CallRecord[]>;
  readonly logger: Logger;
  /** Retries after a failed publish. */
  readonly clock: Pick<Clock, "now" | "setTimeout" | "clearTimeout">;
  /** Counts a publish dropped because too many were waiting. */
  readonly onDropped?: () => void;
  /** The IP of a phone's session here, for an unlock attempt that names none (as the local audit). */
  readonly ipOf?: (uid: string) => string | undefined;
}

interface Pending {
  readonly subject: string;
  readonly id: string;
  readonly body: string;
}

async function ensureStream(
  jsm: JetStreamManager,
  config: Partial<StreamConfig> & { name: string },
): Promise<void> {
  try {
    await jsm.streams.info(config.name);
  } catch {
    await jsm.streams.add(config);
  }
}

/** Publishes this gateway's records to its leaf stream and keeps the hub sourcing it. */
export class ClusterRecords {
  readonly #o: ClusterRecordsOptions;
  readonly #pending: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #localReady = false;
  #off: (() => void) | undefined;
  #unlocks = 0;
  #retry: TimerId | undefined;
  #refusedMinute = -1;
  #refusedCount = 0;
  #stopped = false;
  /** Records published (acknowledged by the leaf). */
  published = 0;
  /** Records dropped (too many waiting). */
  dropped = 0;

  /** Creates the publisher; {@linkcode ClusterRecords.start} begins. */
  constructor(options: ClusterRecordsOptions) {
    this.#o = options;
  }

  /** Sets up the streams now and whenever the leaf or the hub comes back. */
  start(): void {
    this.#off = this.#o.link.onChange((c) => {
      if (!c.up) return;
      if (c.part === "leaf") this.#localReady = false;
      void this.#setup(c.part);
    });
    if (this.#o.link.leafUp) void this.#setup("leaf");
    if (this.#o.link.hubUp) void this.#setup("hub");
  }

  async #setup(part: "leaf" | "hub"): Promise<void> {
    const link = this.#o.link;
    const id = link.gatewayId;
    try {
      if (part === "leaf") {
        await ensureStream(await link.manager(), {
          name: localRecordStream(id),
          subjects: [recordSubjects(id)],
          max_msgs_per_subject: 1,
          duplicate_window: DUPLICATE_WINDOW_NS,
          max_age: MAX_AGE_NS,
          max_bytes: LOCAL_MAX_BYTES,
        });
        this.#localReady = true;
        await this.#replay();
        this.#flush();
      } else {
        await addHubSource(await link.manager(NAMES_HUB), id);
      }
    } catch (e) {
      this.#o.logger.warn(`cluster: cannot set up the ${part}'s record stream`, { error: e });
      // The leaf answers but its JetStream does not yet (starting, recovering its streams):
      // without a retry, records would wait for the next reconnection, which may never come.
      if (part === "leaf") this.#retryLater();
    }
  }

  /** Sets the leaf's stream up again in {@linkcode RETRY_MS} (once; not after `stop`). */
  #retryLater(): void {
    if (this.#stopped) return;
    this.#retry ??= this.#o.clock.setTimeout(() => {
      this.#retry = undefined;
      if (this.#o.link.leafUp) void this.#setup("leaf");
    }, RETRY_MS);
  }

  /** The event subscriber (queued: it waits for the local record). Never throws. */
  async onEvent(e: EventOf<typeof CLUSTER_RECORD_EVENTS[number]>): Promise<void> {
    const gw = this.#o.link.gatewayId;
    try {
      if (e.type === "call_ended") {
        const record = await this.#o.recordOf(e.callId);
        if (!record) return; // never offered to a phone: no record (as on one box)
        const msg: CommunityRecord = { kind: "call", gateway: gw, record };
        this.#queue(recordSubject(gw, "call", e.callId), `${gw}:call:${e.callId}`, msg);
      } else {
        // Refused attempts are bounded (a phone hammering unlock must not fill the streams; the
        // local audit counts them all); rate-limited ones are the local audit's only.
        if (e.result === "rate_limited") return;
        if (e.result !== "success" && e.result !== "fail" && !this.#takeRefused()) {
          this.dropped++;
          this.#o.onDropped?.();
          return;
        }
        const { type: _t, at, ...rest } = e;
        const ip = e.ip ?? this.#o.ipOf?.(e.uid);
        const id = `${at.toString(36)}-${(this.#unlocks++).toString(36)}-${
          crypto.randomUUID().slice(0, 8)
        }`;
        const msg: CommunityRecord = {
          kind: "unlock",
          gateway: gw,
          record: {
            ...rest,
            ...(ip !== undefined ? { ip } : {}),
            id,
            at: new Date(at).toISOString(),
          },
        };
        this.#queue(recordSubject(gw, "unlock", token(id)), `${gw}:unlock:${id}`, msg);
      }
    } catch (err) {
      this.#o.logger.error("cluster: cannot publish a record", { error: err });
    }
  }

  #replayed = false;

  async #replay(): Promise<void> {
    if (this.#replayed || !this.#o.recent) return;
    this.#replayed = true;
    const gw = this.#o.link.gatewayId;
    const queued = new Set(this.#pending.map((p) => p.id));
    for (const record of (await this.#o.recent()).reverse()) {
      const id = `${gw}:call:${record.callId}`;
      if (!record.endedAt || queued.has(id)) continue;
      this.#queue(recordSubject(gw, "call", record.callId), id, {
        kind: "call",
        gateway: gw,
        record,
      });
    }
  }

  #takeRefused(): boolean {
    const minute = Math.floor(this.#o.clock.now() / 60_000);
    if (minute !== this.#refusedMinute) {
      this.#refusedMinute = minute;
      this.#refusedCount = 0;
    }
    return ++this.#refusedCount <= MAX_REFUSED_PER_MINUTE;
  }

  #queue(subject: string, id: string, msg: CommunityRecord): void {
    if (this.#pending.length >= MAX_PENDING) {
      this.dropped++;
      this.#o.onDropped?.();
      return;
    }
    this.#pending.push({ subject, id, body: JSON.stringify(msg) });
    this.#flush();
  }

  #flush(): void {
    if (this.#flushing || !this.#localReady) return;
    this.#flushing = (async () => {
      while (this.#pending.length && this.#localReady) {
        const p = this.#pending[0]!;
        try {
          await this.#o.link.localJs().publish(p.subject, p.body, { msgID: p.id });
          this.#pending.shift();
          this.published++;
        } catch (e) {
          // The leaf is down or restarting: keep it, retry (the same Nats-Msg-Id: never twice).
          this.#o.logger.warn("cluster: record not yet published, will retry", { error: e });
          this.#localReady = false;
          this.#retryLater();
          break;
        }
      }
    })().finally(() => {
      this.#flushing = undefined;
    });
  }

  /** Waits for what is queued to be published (bounded by the caller). */
  async flushed(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  /** Stops (what is still waiting stays unpublished: the local KV has it). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#off?.();
    if (this.#retry !== undefined) this.#o.clock.clearTimeout(this.#retry);
    await this.flushed();
  }
}

const NAMES_HUB = "hub";

/** Creates the hub's stream when missing and adds this gateway's stream to its sources. */
export async function addHubSource(jsm: JetStreamManager, gatewayId: string): Promise<void> {
  const source = { name: localRecordStream(gatewayId), domain: gatewayId };
  let info;
  try {
    info = await jsm.streams.info(NAMES.HUB_RECORDS);
  } catch {
    info = undefined;
  }
  if (!info) {
    const base: Partial<StreamConfig> & { name: string } = {
      name: NAMES.HUB_RECORDS,
      subjects: [],
      sources: [source],
      max_msgs_per_subject: 1,
      duplicate_window: DUPLICATE_WINDOW_NS,
      max_age: MAX_AGE_NS,
    };
    try {
      await jsm.streams.add({ ...base, num_replicas: 3 });
    } catch {
      try {
        await jsm.streams.add({ ...base, num_replicas: 1 });
      } catch {
        // another gateway created it meanwhile: add the source below
        info = await jsm.streams.info(NAMES.HUB_RECORDS);
      }
    }
    if (!info) return;
  }
  const sources = info.config.sources ?? [];
  if (sources.some((s) => s.name === source.name)) return;
  await jsm.streams.update(NAMES.HUB_RECORDS, { ...info.config, sources: [...sources, source] });
}

/**
 * The community's latest records from the hub (newest first, at most `limit` of `kind`), read
 * through the leaf node: the stream's messages from the last one backwards (direct gets; a
 * sequence whose message was replaced by a newer one of its subject is skipped), looking at no
 * more than `limit * 50` sequences.
 *
 * @throws when the hub is unreachable.
 */
export async function communityRecords(
  link: ClusterLink,
  kind: "call" | "unlock",
  limit: number,
): Promise<CommunityRecord[]> {
  const jsm = await link.manager(NAMES_HUB);
  const info = await jsm.streams.info(NAMES.HUB_RECORDS);
  const { first_seq: first, last_seq: last, messages } = info.state;
  const out: CommunityRecord[] = [];
  if (messages === 0) return out;
  const floor = Math.max(first, last - limit * 50);
  for (let seq = last; seq >= floor && out.length < limit; seq--) {
    const m = await jsm.streams.getMessage(NAMES.HUB_RECORDS, { seq }).catch(() => null);
    if (!m || m.subject.split(".")[2] !== kind) continue;
    try {
      out.push(m.json<CommunityRecord>());
    } catch {
      // not one of ours
    }
  }
  const at = (r: CommunityRecord) => r.kind === "call" ? r.record.ringAt : r.record.at;
  return out.sort((a, b) => at(b).localeCompare(at(a)));
}
