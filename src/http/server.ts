/**
 * The gateway's HTTP/1.1 server: our own accept loop over a `Deno.listen` / `Deno.listenTls`
 * listener, request heads parsed by `head.ts`, WebSockets framed by `websocket.ts`. It exists
 * because `Deno.serve` has no header timeout and no accept hook, and `Deno.upgradeWebSocket` no
 * message size limit (measured: idle, slow-header and kept-alive connections stay open for good;
 * a fragmented message is buffered without bound; unmasked client frames are accepted).
 *
 * What it enforces:
 * - connections per source IP and in total ({@linkcode ConnectionCaps}, from the descriptor
 *   limit): the excess is closed on accept and counted; an accept error (`EMFILE`) is counted and
 *   retried after a pause, never thrown;
 * - a complete request head within {@linkcode ServerLimits.headTimeoutMs} of the connection (or
 *   of the previous response), at most 16 KiB; a body only with `Content-Length`, at most
 *   {@linkcode ServerLimits.maxBodyBytes};
 * - a response write that makes no progress for {@linkcode ServerLimits.writeStallMs} ends the
 *   connection.
 *
 * Handlers keep the `Deno.serve` shape: a `Request` in, a `Response` out (a `ReadableStream` body
 * is streamed, chunked when it has no `Content-Length`, so server-sent events work), and
 * `info.upgradeWebSocket(req)` in place of `Deno.upgradeWebSocket`.
 *
 * @module
 */

import { concatBytes } from "../bytes.ts";
import { type Clock, systemClock, type TimerId } from "../clock.ts";
import type { Logger } from "../log.ts";
import { LogThrottle } from "../log_throttle.ts";
import type { Metrics } from "../metrics.ts";
import { type ConnectionCaps, ConnectionCounter } from "./caps.ts";
import { headEnd, type HeadError, MAX_HEAD_BYTES, parseHead, type RequestHead } from "./head.ts";
import { type ByteConn, ServerWebSocket, WS_DEFAULTS, type WsDropReason } from "./websocket.ts";

/** What a handler gets besides the request. */
export interface RequestInfo {
  /** The peer of the connection. */
  readonly remoteAddr: Deno.NetAddr;
  /**
   * Accepts a WebSocket upgrade of `req`: return `response` from the handler; the socket opens
   * once the 101 response is written.
   *
   * @throws {TypeError} when `req` is not a valid WebSocket upgrade request.
   */
  upgradeWebSocket(
    req: Request,
    options?: { maxMessageBytes?: number },
  ): { socket: ServerWebSocket; response: Response };
}

/** A request handler. */
export type HttpHandler = (req: Request, info: RequestInfo) => Response | Promise<Response>;

/** The server's limits. */
export interface ServerLimits {
  /** A complete request head within this long of the connection or of the last response. */
  readonly headTimeoutMs: number;
  /** The body of a request within this long of its head. */
  readonly bodyTimeoutMs: number;
  readonly maxBodyBytes: number;
  /** A response write that has made no progress for this long ends the connection. */
  readonly writeStallMs: number;
  /** Requests served on one kept-alive connection. */
  readonly maxRequestsPerConnection: number;
  readonly caps: ConnectionCaps;
  /** WebSocket defaults (a handler may lower `maxMessageBytes` per upgrade). */
  readonly ws: {
    readonly maxMessageBytes: number;
    readonly maxBufferedBytes: number;
    readonly maxInFlight: number;
    readonly closeTimeoutMs: number;
  };
}

/** Defaults of {@linkcode ServerLimits}. */
export const SERVER_DEFAULTS: ServerLimits = {
  headTimeoutMs: 5000,
  bodyTimeoutMs: 10_000,
  maxBodyBytes: 64 * 1024,
  writeStallMs: 10_000,
  maxRequestsPerConnection: 100,
  caps: { total: 1024, perIp: 256 },
  ws: WS_DEFAULTS,
};

/** Options of {@linkcode HttpServer}. */
export interface HttpServerOptions {
  readonly listener: Deno.Listener;
  readonly handler: HttpHandler;
  /** Serving TLS (request URLs are `https:`). */
  readonly tls: boolean;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly limits?: Partial<ServerLimits>;
}

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const enc = new TextEncoder();
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade"]);
const REASON: Record<number, string> = {
  200: "OK",
  204: "No Content",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  411: "Length Required",
  413: "Content Too Large",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/** The `code` of the server's own error answers, by status. */
const ERROR_CODE: Record<number, string> = {
  400: "bad_request",
  411: "length_required",
  413: "too_large",
  431: "headers_too_large",
  501: "not_implemented",
  505: "http_version",
};

/** One accepted connection. */
interface Tracked {
  readonly conn: Deno.Conn;
  readonly ip: string;
  ws: ServerWebSocket | undefined;
  /** Cancels a response body being streamed. */
  cancel: (() => void) | undefined;
}

/** The HTTP server; {@linkcode start} it, {@linkcode close} it. */
export class HttpServer {
  #o: HttpServerOptions;
  #limits: ServerLimits;
  #clock: Clock;
  #counter: ConnectionCounter;
  #conns = new Set<Tracked>();
  #tasks = new Set<Promise<void>>();
  #loop: Promise<void> | undefined;
  #closing = false;
  #throttle: LogThrottle;
  #upgrades = new WeakMap<Response, { socket: ServerWebSocket; key: string }>();
  #c: {
    accepted: { value: number };
    refusedTotal: { value: number };
    refusedIp: { value: number };
    acceptFd: { value: number };
    acceptOther: { value: number };
    headTimeouts: { value: number };
  };

  /** Wires the server (nothing is accepted before {@linkcode start}). */
  constructor(options: HttpServerOptions) {
    this.#o = options;
    this.#limits = { ...SERVER_DEFAULTS, ...options.limits };
    this.#clock = options.clock ?? systemClock;
    this.#counter = new ConnectionCounter(this.#limits.caps);
    this.#throttle = new LogThrottle(this.#clock);
    const m = options.metrics;
    this.#c = {
      accepted: m.counter("http_connections_total", {}, "TCP connections accepted"),
      refusedTotal: m.counter(
        "http_connections_refused_total",
        { reason: "total" },
        "Connections closed on accept: a cap was reached",
      ),
      refusedIp: m.counter("http_connections_refused_total", { reason: "per_ip" }),
      acceptFd: m.counter(
        "http_accept_errors_total",
        { reason: "fd_exhausted" },
        "Accept failures (retried after a pause)",
      ),
      acceptOther: m.counter("http_accept_errors_total", { reason: "other" }),
      headTimeouts: m.counter(
        "http_head_timeouts_total",
        {},
        "Connections closed: no complete request head in time",
      ),
    };
    m.gauge("http_connections_open", () => this.#counter.total, "Open HTTP/WebSocket connections");
  }

  /** Where it listens. */
  get addr(): Deno.NetAddr {
    return this.#o.listener.addr as Deno.NetAddr;
  }

  /** Open connections now. */
  get connections(): number {
    return this.#counter.total;
  }

  /** Starts accepting. */
  start(): void {
    this.#loop ??= this.#acceptLoop();
  }

  async #acceptLoop(): Promise<void> {
    let pause = 10;
    while (!this.#closing) {
      let conn: Deno.Conn;
      try {
        conn = await this.#o.listener.accept();
      } catch (e) {
        if (this.#closing || e instanceof Deno.errors.BadResource) break;
        const fd = /too many open files|os error 24|os error 23/i.test(String(e));
        (fd ? this.#c.acceptFd : this.#c.acceptOther).value++;
        // The caps were above what the process really has: keep 1/8 of what is open free.
        if (fd) this.#counter.lowerTotal(Math.max(16, Math.floor(this.#counter.total * 7 / 8)));
        if (this.#throttle.allow(fd ? "fd" : "other")) {
          this.#o.logger.warn("HTTP accept failed; retrying", {
            error: String(e),
            openConnections: this.#counter.total,
            cap: this.#counter.cap,
          });
        }
        await new Promise((r) => setTimeout(r, pause));
        pause = Math.min(pause * 2, 1000);
        continue;
      }
      pause = 10;
      this.#c.accepted.value++;
      // No Nagle: a phone's `call` must not wait for the ACK of its previous message (the
      // peer's delayed ACK: 40 ms on Linux, measured by `deno task bench` with one phone).
      try {
        (conn as Partial<Deno.TcpConn>).setNoDelay?.(true);
      } catch {
        // A connection already reset: the first read fails and closes it.
      }
      const ip = (conn.remoteAddr as Deno.NetAddr).hostname ?? "unknown";
      const verdict = this.#counter.open(ip);
      if (verdict !== "ok") {
        (verdict === "total" ? this.#c.refusedTotal : this.#c.refusedIp).value++;
        if (this.#throttle.allow(`refused|${verdict}|${ip}`)) {
          this.#o.logger.info("HTTP connection refused: connection cap reached", {
            ip,
            cap: verdict,
            limit: verdict === "total" ? this.#limits.caps.total : this.#limits.caps.perIp,
          });
        }
        closeQuietly(conn);
        continue;
      }
      const t: Tracked = { conn, ip, ws: undefined, cancel: undefined };
      this.#conns.add(t);
      const task = this.#serve(t).then((up) => up?.socket.run(t.conn, up.rest)).finally(() => {
        this.#conns.delete(t);
        this.#counter.close(ip);
        closeQuietly(conn);
        this.#tasks.delete(task);
      });
      this.#tasks.add(task);
    }
  }

  /** Stops accepting, closes WebSockets (1001, briefly awaited) and every connection. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    closeQuietly(this.#o.listener);
    await this.#loop;
    const sockets = [...this.#conns].flatMap((t) => (t.ws ? [t.ws] : []));
    for (const ws of sockets) ws.close(1001, "gateway shutting down");
    let timer: TimerId | undefined;
    await Promise.race([
      Promise.all(sockets.map((s) => s.ended)),
      new Promise((r) => (timer = setTimeout(r, 1000))),
    ]);
    clearTimeout(timer);
    for (const t of this.#conns) {
      t.cancel?.();
      closeQuietly(t.conn);
    }
    await Promise.allSettled([...this.#tasks]);
  }

  readonly #wsDropped = (reason: WsDropReason): void =>
    this.#o.metrics.inc("ws_closed_by_server_total", { reason });

  /** A deadline that closes the connection when it passes. */
  #deadline(t: Tracked, ms: number, onExpire?: () => void): { clear(): void; expired(): boolean } {
    let fired = false;
    const id = this.#clock.setTimeout(() => {
      fired = true;
      onExpire?.();
      closeQuietly(t.conn);
    }, ms);
    return { clear: () => this.#clock.clearTimeout(id), expired: () => fired };
  }

  /** Serves requests until the connection ends or is upgraded (then: the socket to run). */
  async #serve(t: Tracked): Promise<{ socket: ServerWebSocket; rest: Uint8Array } | undefined> {
    let buffered: Uint8Array = new Uint8Array(0);
    for (let n = 0; n < this.#limits.maxRequestsPerConnection && !this.#closing; n++) {
      // ---- the head ----
      const dl = this.#deadline(t, this.#limits.headTimeoutMs, () => this.#c.headTimeouts.value++);
      let head: RequestHead | HeadError;
      try {
        const got = await readHead(t.conn, buffered);
        if (got === undefined) return undefined; // closed by the peer between requests
        if ("status" in got) head = got;
        else {
          head = parseHead(got.head);
          buffered = got.rest;
        }
      } catch {
        return undefined; // deadline or reset
      } finally {
        dl.clear();
      }
      if ("status" in head) {
        this.#o.metrics.inc("http_bad_requests_total", { status: String(head.status) });
        await this.#writeError(t, head.status, head.reason);
        return undefined;
      }
      // ---- the body ----
      if (head.contentLength > this.#limits.maxBodyBytes) {
        this.#o.metrics.inc("http_bad_requests_total", { status: "413" });
        await this.#writeError(t, 413, `body over ${this.#limits.maxBodyBytes} bytes`);
        return undefined;
      }
      let body: Uint8Array;
      {
        const bdl = this.#deadline(t, this.#limits.bodyTimeoutMs);
        try {
          const got = await readExactly(t.conn, buffered, head.contentLength);
          body = got.body;
          buffered = got.rest;
        } catch {
          return undefined;
        } finally {
          bdl.clear();
        }
      }
      // ---- the handler ----
      const req = this.#request(head, body);
      if (req === undefined) {
        this.#o.metrics.inc("http_bad_requests_total", { status: "400" });
        await this.#writeError(t, 400, "bad Host or header value");
        return undefined;
      }
      let res: Response;
      const made: { socket?: ServerWebSocket } = {};
      try {
        res = await this.#o.handler(req, this.#info(t, req, made));
      } catch (e) {
        this.#o.logger.error("HTTP handler failed", { path: head.target, error: e });
        res = new Response("internal error\n", { status: 500 });
      }
      const upgrade = this.#upgrades.get(res);
      if (made.socket && made.socket !== upgrade?.socket) made.socket.close();
      if (upgrade) {
        this.#upgrades.delete(res);
        const accept = await acceptKey(upgrade.key);
        try {
          await this.#write(
            t,
            enc.encode(
              "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
            ),
          );
        } catch {
          upgrade.socket.close();
          return undefined;
        }
        t.ws = upgrade.socket;
        // Run by the caller: this frame (the request, its head and headers, the deadlines) is
        // not kept alive for as long as the socket is open (~6 KiB per connected phone).
        return { socket: upgrade.socket, rest: buffered };
      }
      const keepAlive = head.keepAlive && !this.#closing &&
        n + 1 < this.#limits.maxRequestsPerConnection;
      const kept = await this.#respond(t, head, res, keepAlive);
      if (!kept) return undefined;
    }
    return undefined;
  }

  #request(head: RequestHead, body: Uint8Array): Request | undefined {
    try {
      const host = head.fields.find(([k]) => k === "host")?.[1] ?? this.addr.hostname;
      if (!/^[A-Za-z0-9.\-:[\]]+$/.test(host)) return undefined;
      const url = /^https?:\/\//i.test(head.target)
        ? head.target
        : `${this.#o.tls ? "https" : "http"}://${host}${head.target === "*" ? "/" : head.target}`;
      const withBody = head.method !== "GET" && head.method !== "HEAD";
      return new Request(url, {
        method: head.method,
        headers: new Headers(head.fields as [string, string][]),
        ...(withBody && body.length ? { body: body as Uint8Array<ArrayBuffer> } : {}),
      });
    } catch {
      return undefined;
    }
  }

  #info(t: Tracked, req: Request, made: { socket?: ServerWebSocket }): RequestInfo {
    return {
      remoteAddr: t.conn.remoteAddr as Deno.NetAddr,
      upgradeWebSocket: (r, options = {}) => {
        if (r !== req) throw new TypeError("Cannot upgrade: not this connection's request");
        const key = r.headers.get("sec-websocket-key") ?? "";
        const tokens = (name: string) =>
          (r.headers.get(name) ?? "").toLowerCase().split(",").map((s) => s.trim());
        if (
          r.method !== "GET" || !tokens("upgrade").includes("websocket") ||
          !tokens("connection").includes("upgrade") ||
          r.headers.get("sec-websocket-version") !== "13" || !validKey(key)
        ) {
          throw new TypeError("Cannot upgrade: not a WebSocket version 13 handshake");
        }
        const ws = this.#limits.ws;
        const socket = new ServerWebSocket({
          maxMessageBytes: Math.min(
            options.maxMessageBytes ?? ws.maxMessageBytes,
            ws.maxMessageBytes,
          ),
          maxBufferedBytes: ws.maxBufferedBytes,
          maxInFlight: ws.maxInFlight,
          closeTimeoutMs: ws.closeTimeoutMs,
          clock: this.#clock,
          // Not a closure made here: it would keep this request alive with the socket.
          onDrop: this.#wsDropped,
        });
        const response = new Response(null, { status: 200 });
        this.#upgrades.set(response, { socket, key });
        made.socket?.close();
        made.socket = socket;
        return { socket, response };
      },
    };
  }

  /** Writes all of `bytes`, or closes the connection when the peer stops reading. */
  async #write(t: Tracked, bytes: Uint8Array): Promise<void> {
    const dl = this.#deadline(t, this.#limits.writeStallMs);
    try {
      let off = 0;
      while (off < bytes.length) off += await t.conn.write(bytes.subarray(off));
    } catch (e) {
      throw dl.expired() ? new Error("Cannot write the response: the peer stopped reading") : e;
    } finally {
      dl.clear();
    }
  }

  /** An error the server answers itself, as JSON like the API's: `{error: {code, message}}`. */
  async #writeError(t: Tracked, status: number, reason: string): Promise<void> {
    const body = enc.encode(
      JSON.stringify({ error: { code: ERROR_CODE[status] ?? "error", message: reason } }) + "\n",
    );
    try {
      await this.#write(
        t,
        concatBytes(
          enc.encode(
            `HTTP/1.1 ${status} ${REASON[status] ?? "Error"}\r\n` +
              `content-type: application/json\r\n` +
              `content-length: ${body.length}\r\nconnection: close\r\n\r\n`,
          ),
          body,
        ),
      );
    } catch {
      // the peer is gone
    }
  }

  /** Writes `res`; true when the connection may serve another request. */
  async #respond(
    t: Tracked,
    head: RequestHead,
    res: Response,
    keepAlive: boolean,
  ): Promise<boolean> {
    const noBody = head.method === "HEAD" || res.status === 204 || res.status === 304;
    const declared = res.headers.get("content-length");
    let framing: "none" | "length" | "chunked" | "close";
    if (noBody || res.body === null) framing = "none";
    else if (declared !== null && /^\d+$/.test(declared)) framing = "length";
    else if (head.version === "1.1") framing = "chunked";
    else framing = "close";
    if (framing === "close") keepAlive = false;
    let text = `HTTP/1.1 ${res.status} ${res.statusText || REASON[res.status] || "Status"}\r\n`;
    for (const [k, v] of res.headers) {
      if (!HOP_BY_HOP.has(k) && k !== "content-length") text += `${k}: ${v}\r\n`;
    }
    if (framing === "length") text += `content-length: ${declared}\r\n`;
    else if (framing === "none" && head.method === "HEAD" && declared !== null) {
      text += `content-length: ${declared}\r\n`;
    } else if (framing === "none" && res.status !== 204 && res.status !== 304) {
      text += "content-length: 0\r\n";
    }
    if (framing === "chunked") text += "transfer-encoding: chunked\r\n";
    text += `connection: ${keepAlive ? "keep-alive" : "close"}\r\n\r\n`;
    try {
      await this.#write(t, enc.encode(text));
      if (framing === "none") {
        await res.body?.cancel().catch(() => {});
        return keepAlive;
      }
      const reader = res.body!.getReader();
      t.cancel = () => void reader.cancel().catch(() => {});
      let sent = 0;
      try {
        while (true) {
          const { value, done } = await reader.read();
          if (done) break;
          if (!(value instanceof Uint8Array) || value.length === 0) continue;
          sent += value.length;
          if (framing === "chunked") {
            await this.#write(
              t,
              concatBytes(
                enc.encode(`${value.length.toString(16)}\r\n`),
                value,
                enc.encode("\r\n"),
              ),
            );
          } else await this.#write(t, value);
        }
      } catch (e) {
        await reader.cancel().catch(() => {});
        throw e;
      } finally {
        t.cancel = undefined;
      }
      if (framing === "chunked") await this.#write(t, enc.encode("0\r\n\r\n"));
      if (framing === "length" && sent !== Number(declared)) return false;
      return keepAlive;
    } catch {
      return false;
    }
  }
}

function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}

function validKey(key: string): boolean {
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) return false;
  try {
    return Uint8Array.fromBase64(key).length === 16;
  } catch {
    return false;
  }
}

/** `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2). */
export async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", enc.encode(key + GUID));
  return new Uint8Array(digest).toBase64();
}

/**
 * Reads up to the end of a request head. `undefined`: the peer closed before sending a byte;
 * a {@linkcode HeadError} for a head over the size limit.
 */
async function readHead(
  conn: ByteConn,
  buffered: Uint8Array,
): Promise<{ head: Uint8Array; rest: Uint8Array } | HeadError | undefined> {
  let data = buffered;
  let searched = 0;
  // 4 KiB: a head is usually under 1 KiB (a longer one takes more reads); 16 KiB per request
  // was garbage of 16 MiB when 1,000 phones connect.
  const chunk = new Uint8Array(4 * 1024);
  while (true) {
    const end = headEnd(data, searched);
    if (end >= 0) {
      if (end > MAX_HEAD_BYTES) return { status: 431, reason: "request head over 16 KiB" };
      return { head: data.subarray(0, end), rest: data.slice(end) };
    }
    if (data.length > MAX_HEAD_BYTES) return { status: 431, reason: "request head over 16 KiB" };
    searched = data.length;
    const n = await conn.read(chunk);
    if (n === null) {
      if (data.length === 0) return undefined;
      throw new Error("Cannot read the request: closed mid-head");
    }
    data = concatBytes(data, chunk.subarray(0, n));
  }
}

/** Reads `length` body bytes after what is buffered. */
async function readExactly(
  conn: ByteConn,
  buffered: Uint8Array,
  length: number,
): Promise<{ body: Uint8Array; rest: Uint8Array }> {
  if (buffered.length >= length) {
    return { body: buffered.slice(0, length), rest: buffered.slice(length) };
  }
  const body = new Uint8Array(length);
  body.set(buffered);
  let got = buffered.length;
  while (got < length) {
    const n = await conn.read(body.subarray(got));
    if (n === null) throw new Error("Cannot read the request: closed mid-body");
    got += n;
  }
  return { body, rest: new Uint8Array(0) };
}
