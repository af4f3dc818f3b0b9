/**
 * A bare phone connection for hostile-client tests: a WebSocket to the gateway, optionally from a
 * chosen local address (a loopback address of the test namespace, e.g. 127.0.0.9, so that the
 * gateway sees another source IP), that sends whatever it is told and keeps what it receives.
 *
 * @module
 */

import { within } from "./wait.ts";

/** A connected bare phone. */
export interface RawPhone {
  /** JSON messages received, in order. */
  readonly received: Record<string, unknown>[];
  /** Sends one JSON text frame. */
  send(message: Record<string, unknown>): void;
  /** The first received message (from index `since`) with this `order`, or undefined after `ms`. */
  next(order: string, ms: number, since?: number): Promise<Record<string, unknown> | undefined>;
  /** Resolves once the gateway or we closed the connection. */
  readonly closed: Promise<void>;
  /** Closes the connection (and its HTTP client). */
  close(): Promise<void>;
}

/** Opens a WebSocket to `url`, from `fromIp` when given; resolves once it is open. */
export async function openRawPhone(url: string, fromIp?: string): Promise<RawPhone> {
  const client = fromIp ? Deno.createHttpClient({ localAddress: fromIp }) : undefined;
  const ws = new WebSocket(url, client ? { client } : undefined);
  const received: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  ws.onmessage = (e) => {
    if (typeof e.data === "string") received.push(JSON.parse(e.data));
    for (const w of waiters) w();
  };
  ws.onclose = () => {
    resolveClosed();
    for (const w of waiters) w();
  };
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error(`Cannot connect to ${url} from ${fromIp ?? "default"}`));
  });
  ws.onerror = () => {};
  const find = (order: string, since: number) =>
    received.slice(since).find((m) => m.order === order);
  return {
    received,
    send: (m) => ws.send(JSON.stringify(m)),
    next: (order, ms, since = 0) => {
      const seen = find(order, since);
      if (seen || ws.readyState === WebSocket.CLOSED) return Promise.resolve(seen);
      let waiter!: () => void;
      const p = new Promise<Record<string, unknown> | undefined>((resolve) => {
        waiter = () => {
          const m = find(order, since);
          if (m || ws.readyState === WebSocket.CLOSED) resolve(m);
        };
        waiters.add(waiter);
      });
      return within(p, ms).finally(() => waiters.delete(waiter));
    },
    closed,
    close: async () => {
      if (ws.readyState !== WebSocket.CLOSED) ws.close();
      await closed;
      client?.close();
    },
  };
}
