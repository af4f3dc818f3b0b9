/**
 * A server-side WebSocket over a TCP (or TLS) connection, with our own RFC 6455 framing
 * (`ws_frame.ts`) and the limits that `Deno.upgradeWebSocket` does not have:
 *
 * - a message larger than the limit, all fragments together, closes with 1009 before its payload
 *   is buffered; an unmasked client frame closes with 1002; text that is not UTF-8 with 1007;
 * - unsent bytes are bounded: a peer that does not read is dropped once its queue passes the
 *   limit ({@linkcode WebSocketOptions.maxBufferedBytes});
 * - at most {@linkcode WebSocketOptions.maxInFlight} messages are being handled at once; beyond
 *   that the socket stops reading (TCP pushes back on the peer), and after every
 *   {@linkcode MESSAGES_PER_TURN} messages it yields to the event loop, so that a flood on one
 *   socket never delays a timer (the doors' keep-alive) by more than one such batch.
 *
 * Pings are answered with pongs; our close waits for the peer's close frame at most
 * {@linkcode WebSocketOptions.closeTimeoutMs}.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import { closePayload, encodeFrame, FrameDecoder, OPCODE, WS_CLOSE } from "./ws_frame.ts";

/** The byte stream under the socket (a `Deno.Conn` or `Deno.TlsConn`). */
export interface ByteConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** Why a socket was closed by the server on its own, for counting. */
export type WsDropReason =
  | "message_too_big"
  | "protocol_error"
  | "invalid_data"
  | "backpressure"
  | "close_timeout";

/** Options of {@linkcode ServerWebSocket}. */
export interface WebSocketOptions {
  /** Largest message (text or binary), all fragments together. */
  readonly maxMessageBytes: number;
  /** Unsent bytes after which the connection is dropped. */
  readonly maxBufferedBytes: number;
  /** Messages handed to `onmessage` whose promise has not settled, at most. */
  readonly maxInFlight: number;
  /** How long our close waits for the peer's close frame. */
  readonly closeTimeoutMs: number;
  readonly clock: Pick<Clock, "setTimeout" | "clearTimeout">;
  /** The server dropped or closed the socket for a broken rule or a full queue. */
  readonly onDrop?: (reason: WsDropReason) => void;
}

/** Defaults for {@linkcode WebSocketOptions}. */
export const WS_DEFAULTS = {
  maxMessageBytes: 64 * 1024,
  maxBufferedBytes: 1024 * 1024,
  maxInFlight: 16,
  closeTimeoutMs: 2000,
} as const;

/** Messages handled before the read loop yields to the event loop. */
export const MESSAGES_PER_TURN = 64;

/** How a socket ended. */
export interface WsCloseInfo {
  readonly code: number;
  readonly reason: string;
  /** Both sides sent a close frame. */
  readonly wasClean: boolean;
}

/**
 * One per open socket, for as long as it is open: 4 KiB, not 64 (64 KiB of 1,000 phones' sockets
 * were 60 % of the gateway's memory per phone; a larger message takes a few reads).
 */
const READ_CHUNK = 4 * 1024;
const WRITE_COALESCE = 64 * 1024;
const enc = new TextEncoder();

/** A macrotask turn: timers and I/O callbacks run before this resolves. */
function yieldTurn(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

/** One WebSocket connection; implements the hub's `PhoneSocket`. */
export class ServerWebSocket {
  /** A message arrived; a returned promise counts as in flight until it settles. */
  onmessage: ((data: string | Uint8Array) => void | Promise<unknown>) | undefined;
  /** The socket ended (once). */
  onclose: ((info: WsCloseInfo) => void) | undefined;

  #o: WebSocketOptions;
  #conn: ByteConn | undefined;
  #state: "pending" | "open" | "closing" | "closed" = "pending";
  #queue: Uint8Array[] = [];
  #queued = 0;
  /** The chunk being written (none: no write in progress) and how much of it is written. */
  #chunk: Uint8Array | undefined;
  #off = 0;
  /** The last short text sent and its frame, reused when the same string is sent again. */
  #lastText: string | undefined;
  #lastFrame: Uint8Array | undefined;
  /** Close the connection once the queue is written (our close frame is in it). */
  #endAfterFlush = false;
  #sentClose = false;
  #closeTimer: TimerId | undefined;
  #inFlight = 0;
  #wake: (() => void) | undefined;
  #closeInfo: WsCloseInfo = { code: WS_CLOSE.abnormal, reason: "", wasClean: false };
  #ended!: Promise<void>;
  #resolveEnded!: () => void;

  /** Use the server's `upgradeWebSocket`. */
  constructor(options: WebSocketOptions) {
    this.#o = options;
    this.#ended = new Promise((r) => (this.#resolveEnded = r));
  }

  /** `pending` until the handshake is written, then `open`, `closing`, `closed`. */
  get readyState(): "pending" | "open" | "closing" | "closed" {
    return this.#state;
  }

  /** Bytes queued and not yet written to the connection. */
  get bufferedAmount(): number {
    return this.#queued;
  }

  /** Resolves when the connection is closed. */
  get ended(): Promise<void> {
    return this.#ended;
  }

  /** Sends a text (string) or binary message; ignored unless open. */
  send(data: string | Uint8Array): void {
    if (this.#state !== "open") return;
    if (typeof data !== "string") {
      this.#enqueue(encodeFrame(OPCODE.binary, data));
      return;
    }
    // A short text sent again (a heartbeat's answer, the same string) reuses its frame: queued
    // frames are only read, never changed.
    if (data === this.#lastText) {
      this.#enqueue(this.#lastFrame!);
      return;
    }
    const frame = encodeFrame(OPCODE.text, enc.encode(data));
    if (data.length <= 256) {
      this.#lastText = data;
      this.#lastFrame = frame;
    }
    this.#enqueue(frame);
  }

  /** Sends a ping. */
  ping(payload: Uint8Array = new Uint8Array(0)): void {
    if (this.#state === "open") this.#enqueue(encodeFrame(OPCODE.ping, payload.subarray(0, 125)));
  }

  /** Starts the close handshake (`code` 1000 by default). */
  close(code: number = WS_CLOSE.normal, reason = ""): void {
    if (this.#state === "pending") {
      this.#state = "closed";
      this.#finish();
      return;
    }
    if (this.#state !== "open") return;
    this.#sendClose(code, reason);
  }

  #sendClose(code: number, reason: string): void {
    this.#state = "closing";
    this.#sentClose = true;
    this.#closeInfo = { code, reason, wasClean: false };
    this.#enqueue(encodeFrame(OPCODE.close, closePayload(code, reason)), true);
    this.#closeTimer = this.#o.clock.setTimeout(() => {
      this.#closeTimer = undefined;
      this.#o.onDrop?.("close_timeout");
      this.#terminate();
    }, this.#o.closeTimeoutMs);
  }

  #enqueue(frame: Uint8Array, control = false): void {
    if (this.#state === "closed") return;
    if (!control && this.#queued + frame.length > this.#o.maxBufferedBytes) {
      this.#o.onDrop?.("backpressure");
      this.#closeInfo = { code: WS_CLOSE.abnormal, reason: "send queue full", wasClean: false };
      this.#terminate();
      return;
    }
    this.#queue.push(frame);
    this.#queued += frame.length;
    if (this.#chunk === undefined) this.#writeNext();
  }

  /**
   * Writes the queue out, one write at a time, with callbacks: no async function per flush. Ends
   * with `#chunk` unset when nothing is left to write.
   */
  #writeNext(): void {
    if (!this.#queue.length || !this.#conn || this.#state === "closed") {
      if (this.#endAfterFlush && this.#queue.length === 0) this.#terminate();
      return;
    }
    let chunk = this.#queue.shift()!;
    if (chunk.length < WRITE_COALESCE && this.#queue.length) {
      // Small frames waiting behind it go out in the same write.
      const q = this.#queue;
      let size = chunk.length;
      let k = 0;
      while (k < q.length && size + q[k]!.length <= WRITE_COALESCE) size += q[k++]!.length;
      if (k > 0) {
        const joined = new Uint8Array(size);
        joined.set(chunk, 0);
        let o = chunk.length;
        for (let i = 0; i < k; i++) {
          const next = q.shift()!;
          joined.set(next, o);
          o += next.length;
        }
        chunk = joined;
      }
    }
    this.#chunk = chunk;
    this.#off = 0;
    this.#writeSome();
  }

  #writeSome(): void {
    const c = this.#chunk!;
    try {
      this.#conn!.write(this.#off === 0 ? c : c.subarray(this.#off)).then(
        this.#wrote,
        this.#writeFailed,
      );
    } catch {
      this.#writeFailed();
    }
  }

  readonly #wrote = (n: number): void => {
    const c = this.#chunk!;
    if (this.#state === "closed") {
      this.#chunk = undefined;
      return;
    }
    this.#off += n;
    if (this.#off < c.length) return this.#writeSome();
    this.#queued -= c.length;
    this.#chunk = undefined;
    this.#writeNext();
  };

  readonly #writeFailed = (): void => {
    this.#chunk = undefined;
    this.#terminate();
  };

  /** Closes the connection at once. */
  #terminate(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#queue = [];
    this.#queued = 0;
    try {
      this.#conn?.close();
    } catch {
      // already closed
    }
    this.#finish();
  }

  #finish(): void {
    if (this.#closeTimer !== undefined) this.#o.clock.clearTimeout(this.#closeTimer);
    this.#closeTimer = undefined;
    this.#wake?.();
    this.#resolveEnded();
    const cb = this.onclose;
    this.onclose = undefined;
    cb?.(this.#closeInfo);
  }

  #violation(code: number, reason: string, why: WsDropReason): void {
    this.#o.onDrop?.(why);
    if (this.#state === "open") this.#sendClose(code, reason);
  }

  /**
   * Serves the connection (after the server wrote the 101 response) until it closes; `leftover`:
   * bytes read past the request head. Never throws.
   */
  async run(conn: ByteConn, leftover: Uint8Array): Promise<void> {
    if (this.#state !== "pending") {
      try {
        conn.close();
      } catch {
        // closed
      }
      return;
    }
    this.#conn = conn;
    this.#state = "open";
    const decoder = new FrameDecoder(this.#o.maxMessageBytes);
    decoder.push(leftover);
    const buf = new Uint8Array(READ_CHUNK);
    let handled = 0;
    try {
      while (!this.#isClosed()) {
        for (let ev = decoder.next(); ev && !this.#isClosed(); ev = decoder.next()) {
          switch (ev.type) {
            case "message":
              if (this.#state === "open") this.#dispatch(ev.data);
              break;
            case "ping":
              if (this.#state === "open") this.#enqueue(encodeFrame(OPCODE.pong, ev.payload), true);
              break;
            case "pong":
              break;
            case "close":
              if (this.#sentClose) {
                this.#closeInfo = { ...this.#closeInfo, wasClean: true };
                this.#terminate();
              } else {
                // Echo the code, then end once it is written (or after the close timeout).
                this.#endAfterFlush = true;
                this.#sendClose(ev.code ?? WS_CLOSE.normal, "");
                this.#closeInfo = { code: ev.code ?? 1005, reason: ev.reason, wasClean: true };
              }
              break;
            case "violation":
              this.#violation(
                ev.code,
                ev.reason,
                ev.code === 1009
                  ? "message_too_big"
                  : ev.code === 1007
                  ? "invalid_data"
                  : "protocol_error",
              );
              break;
          }
          if (this.#inFlight >= this.#o.maxInFlight) {
            await new Promise<void>((r) => (this.#wake = r));
            this.#wake = undefined;
          }
          if (++handled % MESSAGES_PER_TURN === 0) await yieldTurn();
        }
        if (this.#isClosed()) break;
        const n = await conn.read(buf);
        if (n === null) break;
        // After a violation the decoder discards what follows: nothing is buffered.
        decoder.push(buf, n);
      }
    } catch {
      // reset by the peer, or closed by us
    }
    this.#terminate();
  }

  #isClosed(): boolean {
    return this.#state === "closed";
  }

  #dispatch(data: string | Uint8Array): void {
    let r: void | Promise<unknown>;
    try {
      r = this.onmessage?.(data);
    } catch {
      return;
    }
    if (r instanceof Promise) {
      this.#inFlight++;
      r.then(this.#settled, this.#settled);
    }
  }

  readonly #settled = (): void => {
    this.#inFlight--;
    if (this.#inFlight < this.#o.maxInFlight) this.#wake?.();
  };
}
