/**
 * A raw WebSocket client over TCP for hostile-client tests: it sends whatever frames it is told
 * (unmasked, fragmented, never-ending) and reads the server's frames, or does not read at all.
 *
 * @module
 */

import { encodeFrame, type EncodeOptions, OPCODE } from "../../src/http/ws_frame.ts";

/** Frame opcodes, for the tests. */
export { OPCODE };

const MASK = new Uint8Array([1, 2, 3, 4]);

/** A frame as a client sends it (masked unless `mask: undefined` is asked). */
export function clientFrame(
  opcode: number,
  payload: Uint8Array | string,
  options: EncodeOptions & { unmasked?: boolean } = {},
): Uint8Array {
  const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const { unmasked, ...rest } = options;
  return encodeFrame(opcode, bytes, unmasked ? rest : { mask: MASK, ...rest });
}

/** A server frame read back. */
export interface ServerFrame {
  readonly opcode: number;
  readonly payload: Uint8Array;
}

/** A connected raw client. */
export class RawWs {
  readonly conn: Deno.Conn;
  #buf: Uint8Array = new Uint8Array(0);

  private constructor(conn: Deno.Conn, rest: Uint8Array) {
    this.conn = conn;
    this.#buf = rest;
  }

  /**
   * Connects (plain TCP, or `connect` for TLS) and completes the handshake (throws unless the
   * server answers 101).
   */
  static async open(
    port: number,
    hostname = "127.0.0.1",
    connect: () => Promise<Deno.Conn> = () => Deno.connect({ hostname, port }),
  ): Promise<RawWs> {
    const conn = await connect();
    await writeAll(
      conn,
      new TextEncoder().encode(
        "GET /phone HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      ),
    );
    let data: Uint8Array = new Uint8Array(0);
    const chunk = new Uint8Array(4096);
    while (true) {
      const text = new TextDecoder().decode(data);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        if (!text.startsWith("HTTP/1.1 101")) {
          conn.close();
          throw new Error(`Cannot open the WebSocket: ${text.split("\r\n")[0]}`);
        }
        return new RawWs(conn, data.slice(end + 4));
      }
      const n = await conn.read(chunk);
      if (n === null) throw new Error("Cannot open the WebSocket: closed");
      data = concat(data, chunk.subarray(0, n));
    }
  }

  /** Writes bytes (all of them). */
  write(bytes: Uint8Array): Promise<void> {
    return writeAll(this.conn, bytes);
  }

  /** Sends a masked text message. */
  sendText(text: string): Promise<void> {
    return this.write(clientFrame(OPCODE.text, text));
  }

  /** The next server frame; `undefined` when the connection ended. */
  async next(): Promise<ServerFrame | undefined> {
    const chunk = new Uint8Array(64 * 1024);
    while (true) {
      const f = parse(this.#buf);
      if (f) {
        this.#buf = this.#buf.slice(f.size);
        return f.frame;
      }
      let n: number | null;
      try {
        n = await this.conn.read(chunk);
      } catch {
        return undefined;
      }
      if (n === null) return undefined;
      this.#buf = concat(this.#buf, chunk.subarray(0, n));
    }
  }

  /** Reads frames until a close frame (its code) or the end of the connection (`undefined`). */
  async closeCode(): Promise<number | undefined> {
    while (true) {
      const f = await this.next();
      if (!f) return undefined;
      if (f.opcode === OPCODE.close) return (f.payload[0]! << 8) | f.payload[1]!;
    }
  }

  /** Closes the TCP connection. */
  close(): void {
    try {
      this.conn.close();
    } catch {
      // closed
    }
  }
}

function parse(b: Uint8Array): { frame: ServerFrame; size: number } | undefined {
  if (b.length < 2) return undefined;
  let len = b[1]! & 0x7f;
  let at = 2;
  if (len === 126) {
    if (b.length < 4) return undefined;
    len = (b[2]! << 8) | b[3]!;
    at = 4;
  } else if (len === 127) {
    if (b.length < 10) return undefined;
    len = Number(new DataView(b.buffer, b.byteOffset + 2, 8).getBigUint64(0));
    at = 10;
  }
  if (b.length < at + len) return undefined;
  return { frame: { opcode: b[0]! & 0x0f, payload: b.slice(at, at + len) }, size: at + len };
}

/** Writes all of `bytes`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
