/**
 * Server-sent events over a plain `Response` with a `ReadableStream` body: one stream per
 * console page. Bounded: an event the client is too slow for (its queue holds `bound`) is
 * dropped and counted, never buffered without end. A comment every `pingMs` keeps proxies and
 * the browser's idle timers quiet and checks that the session is still valid.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import { baseHeaders } from "./http.ts";

/** What an open stream can do. */
export interface SseSink {
  /** Sends one event (JSON data); false when dropped (the client is behind). */
  send(event: string, data: unknown): boolean;
  /** Ends the stream. */
  close(): void;
}

/** Options of {@linkcode sseResponse}. */
export interface SseOptions {
  clock: Pick<Clock, "setTimeout" | "clearTimeout">;
  /** Starts the feed; returns its stop function (called once when the stream ends). */
  start(sink: SseSink): () => void;
  /** Checked at every ping: false ends the stream (the session expired). */
  stillValid(): boolean;
  /** @default 15_000 */
  pingMs?: number;
  /** Events queued at most. @default 256 */
  bound?: number;
  /** Called for each dropped event. */
  onDrop?: () => void;
  /** Registers the stream for shutdown; returns the unregister function. */
  track?: (sink: SseSink) => () => void;
}

const encoder = new TextEncoder();

/** A `text/event-stream` response fed by `start`. */
export function sseResponse(options: SseOptions): Response {
  const pingMs = options.pingMs ?? 15_000;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let stop: (() => void) | undefined;
  let untrack: (() => void) | undefined;
  let timer: TimerId | undefined;
  let closed = false;
  const finish = () => {
    if (closed) return;
    closed = true;
    if (timer !== undefined) options.clock.clearTimeout(timer);
    stop?.();
    untrack?.();
  };
  const sink: SseSink = {
    send(event, data) {
      if (closed) return false;
      if ((controller.desiredSize ?? 0) <= 0) {
        options.onDrop?.();
        return false;
      }
      controller.enqueue(encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
      return true;
    },
    close() {
      if (closed) return;
      finish();
      try {
        controller.close();
      } catch {
        // already closed or cancelled
      }
    },
  };
  const ping = () => {
    timer = undefined;
    if (closed) return;
    if (!options.stillValid()) return sink.close();
    if ((controller.desiredSize ?? 0) > 0) controller.enqueue(encoder.encode(": ping\n\n"));
    timer = options.clock.setTimeout(ping, pingMs);
  };
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      c.enqueue(encoder.encode(": open\nretry: 3000\n\n"));
      untrack = options.track?.(sink);
      stop = options.start(sink);
      timer = options.clock.setTimeout(ping, pingMs);
    },
    cancel() {
      finish();
    },
  }, { highWaterMark: options.bound ?? 256, size: () => 1 });
  return new Response(body, {
    headers: baseHeaders({
      "content-type": "text/event-stream; charset=utf-8",
      "x-accel-buffering": "no",
    }),
  });
}
