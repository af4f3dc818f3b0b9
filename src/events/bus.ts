/**
 * The event bus: producers emit {@linkcode GatewayEvent}s, subscribers receive them in order.
 *
 * A subscriber never disturbs a producer: a throw is caught, counted and logged once per
 * subscriber; a slow (async) subscriber gets a bounded queue of its own
 * ({@linkcode EventBus.subscribeQueued}) and loses (and counts) what overflows it. `wants(type)`
 * lets producers skip building costly events (the live trace) while nobody listens.
 *
 * @module
 */

import type { Logger } from "../log.ts";
import type { Counter, Metrics } from "../metrics.ts";
import type { EventOf, GatewayEvent, GatewayEventType } from "./types.ts";

/** Where producers send events (the port producers depend on). */
export interface EventSink {
  /** Delivers `event` to every subscriber now. Never throws. */
  emit(event: GatewayEvent): void;
  /** True when someone subscribed to `type` (skip building the event otherwise). */
  wants(type: GatewayEventType): boolean;
}

/** Options of a subscription. */
export interface SubscribeOptions<T extends GatewayEventType> {
  /** A name for logs and metrics. */
  readonly name: string;
  /** Only these types (all when absent). */
  readonly types?: readonly T[];
}

interface Sub {
  name: string;
  types: ReadonlySet<string> | undefined;
  fn: (e: GatewayEvent) => void;
  errors: Counter;
  logged: boolean;
}

/** Default bound of a queued subscriber. */
export const DEFAULT_QUEUE_BOUND = 10_000;

/** The in-process event bus. */
export class EventBus implements EventSink {
  #subs: Sub[] = [];
  #wanted = new Map<string, number>();
  #all = 0;
  #logger: Logger;
  #metrics: Metrics;
  #queues = new Set<Promise<void>>();

  /** Creates an empty bus. */
  constructor(options: { logger: Logger; metrics: Metrics }) {
    this.#logger = options.logger;
    this.#metrics = options.metrics;
  }

  /** Delivers `event` to every subscriber, synchronously, in subscription order. */
  emit(event: GatewayEvent): void {
    for (const s of this.#subs) {
      if (s.types && !s.types.has(event.type)) continue;
      try {
        s.fn(event);
      } catch (e) {
        s.errors.value++;
        if (!s.logged) {
          s.logged = true;
          this.#logger.error("event subscriber failed (further failures are only counted)", {
            subscriber: s.name,
            event: event.type,
            error: e,
          });
        }
      }
    }
  }

  /** True when a subscriber takes events of `type`. */
  wants(type: GatewayEventType): boolean {
    return this.#all > 0 || (this.#wanted.get(type) ?? 0) > 0;
  }

  /** Calls `fn` for each event (of `types`); returns the unsubscribe function. */
  subscribe<T extends GatewayEventType = GatewayEventType>(
    fn: (event: EventOf<T>) => void,
    options: SubscribeOptions<T>,
  ): () => void {
    const sub: Sub = {
      name: options.name,
      types: options.types ? new Set(options.types) : undefined,
      fn: fn as (e: GatewayEvent) => void,
      errors: this.#metrics.counter(
        "event_subscriber_errors_total",
        { subscriber: options.name },
        "Events a subscriber failed on",
      ),
      logged: false,
    };
    this.#subs = [...this.#subs, sub];
    if (sub.types) {
      for (const t of sub.types) {
        this.#wanted.set(t, (this.#wanted.get(t) ?? 0) + 1);
      }
    } else this.#all++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#subs = this.#subs.filter((s) => s !== sub);
      if (sub.types) { for (const t of sub.types) this.#wanted.set(t, this.#wanted.get(t)! - 1); }
      else this.#all--;
    };
  }

  /**
   * Calls the async `fn` for each event, one at a time, from a queue of at most `bound` events;
   * events beyond it are dropped and counted (`event_queue_dropped_total{subscriber}`).
   */
  subscribeQueued<T extends GatewayEventType = GatewayEventType>(
    fn: (event: EventOf<T>) => Promise<void>,
    options: SubscribeOptions<T> & { readonly bound?: number },
  ): () => void {
    const bound = options.bound ?? DEFAULT_QUEUE_BOUND;
    const queue: EventOf<T>[] = [];
    const dropped = this.#metrics.counter(
      "event_queue_dropped_total",
      { subscriber: options.name },
      "Events dropped because a subscriber's queue was full",
    );
    let running = false;
    let loggedDrop = false;
    const drain = async () => {
      running = true;
      try {
        while (queue.length) {
          const e = queue.shift()!;
          try {
            await fn(e);
          } catch (err) {
            this.emitError(options.name, e.type, err);
          }
        }
      } finally {
        running = false;
      }
    };
    return this.subscribe<T>((e) => {
      if (queue.length >= bound) {
        dropped.value++;
        if (!loggedDrop) {
          loggedDrop = true;
          this.#logger.error("event queue full: dropping events (further drops only counted)", {
            subscriber: options.name,
            bound,
          });
        }
        return;
      }
      queue.push(e);
      if (!running) {
        const p = drain().finally(() => this.#queues.delete(p));
        this.#queues.add(p);
      }
    }, options);
  }

  /** Counts and logs (once) a queued subscriber's failure. */
  emitError(name: string, type: string, error: unknown): void {
    const c = this.#metrics.counter("event_subscriber_errors_total", { subscriber: name });
    c.value++;
    if (c.value === 1) {
      this.#logger.error("event subscriber failed (further failures are only counted)", {
        subscriber: name,
        event: type,
        error,
      });
    }
  }

  /** Resolves when every queued subscriber has drained what it holds. */
  async drained(): Promise<void> {
    while (this.#queues.size) await Promise.allSettled([...this.#queues]);
  }
}

/** A sink that drops everything (tests and tools that need no events). */
export const nullSink: EventSink = { emit: () => {}, wants: () => false };
