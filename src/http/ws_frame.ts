/**
 * RFC 6455 framing, pure: an incremental decoder for client frames that enforces the limits
 * (masking, one message's size across its fragments, control frame rules, UTF-8 of text) without
 * buffering more than one frame's payload, and an encoder for frames.
 *
 * @module
 */

/** Frame opcodes (RFC 6455 §5.2). */
export const OPCODE = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** Close codes the server sends (RFC 6455 §7.4.1). */
export const WS_CLOSE = {
  normal: 1000,
  going_away: 1001,
  protocol_error: 1002,
  invalid_data: 1007,
  policy: 1008,
  too_big: 1009,
  internal: 1011,
  /** Never on the wire: the connection ended without a close frame. */
  abnormal: 1006,
} as const;

/** What the decoder found in the bytes so far. */
export type WsEvent =
  | { readonly type: "message"; readonly data: string | Uint8Array }
  | { readonly type: "ping"; readonly payload: Uint8Array }
  | { readonly type: "pong" }
  | { readonly type: "close"; readonly code: number | undefined; readonly reason: string }
  | {
    /** The peer broke a rule: close with `code`; the decoder reads nothing more. */
    readonly type: "violation";
    readonly code: 1002 | 1007 | 1009;
    readonly reason: string;
  };

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Close codes a peer may send (RFC 6455 §7.4.1–7.4.2). */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

/**
 * Decodes client frames. {@linkcode push} the bytes read, then call {@linkcode next} until it
 * returns `undefined`. Memory held: at most one frame's payload (≤ the message limit) plus what
 * was pushed and not yet decoded, and the fragments of the message in progress (≤ the limit).
 */
export class FrameDecoder {
  #max: number;
  /** Starts small (a phone's messages are short; 1,000 phones hold 1,000 of these), grows. */
  #buf = new Uint8Array(1024);
  #start = 0;
  #end = 0;
  #parts: Uint8Array[] = [];
  #partsBytes = 0;
  /** Opcode of the fragmented message in progress. */
  #fragmented: number | undefined;
  /** A rule was broken: from here only a close frame is looked for. */
  #dead = false;
  /** Payload bytes still to skip (after a violation). */
  #skip = 0;
  /** The peer's close frame found while skipping. */
  #closeSeen: WsEvent | undefined;

  /** `maxMessageBytes`: largest message, all fragments together. */
  constructor(maxMessageBytes: number) {
    this.#max = maxMessageBytes;
  }

  /** Bytes pushed and not decoded yet. */
  get pending(): number {
    return this.#end - this.#start;
  }

  /**
   * Appends the first `length` bytes of `chunk` (copied). After a violation only frame headers are
   * kept (to find the peer's close frame); payloads are skipped, never buffered.
   */
  push(chunk: Uint8Array, length: number = chunk.length): void {
    let from = 0;
    if (this.#skip > 0) {
      from = Math.min(this.#skip, length);
      this.#skip -= from;
    }
    const n = length - from;
    if (n <= 0) return;
    if (this.#end + n > this.#buf.length) {
      const live = this.#end - this.#start;
      if (live + n <= this.#buf.length && this.#start > 0) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        const grown = new Uint8Array(Math.max(this.#buf.length * 2, live + n));
        grown.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = grown;
      }
      this.#start = 0;
      this.#end = live;
    }
    const b = this.#buf;
    const e = this.#end;
    // A short read (a phone's message) is copied byte by byte: no view object per read.
    if (n <= 256) { for (let i = 0; i < n; i++) b[e + i] = chunk[from + i]!; }
    else b.set(chunk.subarray(from, length), e);
    this.#end += n;
    // After a violation, skip at once: what is held stays a frame header's worth.
    if (this.#dead && this.#closeSeen === undefined) this.#closeSeen = this.#skipFrames();
  }

  #violation(code: 1002 | 1007 | 1009, reason: string, payloadLeft = 0): WsEvent {
    this.#dead = true;
    this.#skip = payloadLeft;
    this.#parts = [];
    this.#partsBytes = 0;
    this.#buf = new Uint8Array(256);
    this.#start = this.#end = 0;
    return { type: "violation", code, reason };
  }

  /** After a violation: skips frames (payloads unbuffered) until a close frame. */
  #skipFrames(): WsEvent | undefined {
    while (this.#skip === 0) {
      const avail = this.#end - this.#start;
      if (avail < 2) return undefined;
      const s = this.#start;
      const op = this.#buf[s]! & 0x0f;
      const masked = (this.#buf[s + 1]! & 0x80) !== 0;
      let len = this.#buf[s + 1]! & 0x7f;
      let at = s + 2;
      if (len === 126) {
        if (avail < 4) return undefined;
        len = (this.#buf[at]! << 8) | this.#buf[at + 1]!;
        at += 2;
      } else if (len === 127) {
        if (avail < 10) return undefined;
        const view = new DataView(this.#buf.buffer, this.#buf.byteOffset + at, 8);
        len = Number(view.getBigUint64(0) & 0x1fffffffffffffn);
        at += 8;
      }
      const maskAt = at;
      if (masked) at += 4;
      if (op === OPCODE.close && len <= 125) {
        if (this.#end - at < len) return undefined;
        const p = this.#buf.slice(at, at + len);
        if (masked) { for (let i = 0; i < len; i++) p[i]! ^= this.#buf[maskAt + (i & 3)]!; }
        this.#start = this.#end = 0;
        const code = len >= 2 ? (p[0]! << 8) | p[1]! : undefined;
        return { type: "close", code, reason: "" };
      }
      if (this.#end < at) return undefined;
      const have = Math.min(len, this.#end - at);
      this.#skip = len - have;
      this.#start = at + have;
      if (this.#start >= this.#end) this.#start = this.#end = 0;
    }
    return undefined;
  }

  /** The next event, or `undefined` until more bytes are pushed. */
  next(): WsEvent | undefined {
    if (this.#dead) {
      const e = this.#closeSeen ?? this.#skipFrames();
      this.#closeSeen = undefined;
      return e;
    }
    while (true) {
      const avail = this.#end - this.#start;
      if (avail < 2) return undefined;
      const b = this.#buf;
      const s = this.#start;
      const b0 = b[s]!;
      const b1 = b[s + 1]!;
      const fin = (b0 & 0x80) !== 0;
      const op = b0 & 0x0f;
      if ((b0 & 0x70) !== 0) return this.#violation(1002, "reserved bits set");
      if ((b1 & 0x80) === 0) return this.#violation(1002, "unmasked client frame");
      const control = op >= 0x8;
      if (control ? op > 0xa : op > 0x2) return this.#violation(1002, `unknown opcode ${op}`);
      let len = b1 & 0x7f;
      let at = s + 2;
      if (control && (len > 125 || !fin)) {
        return this.#violation(1002, "fragmented or long control frame");
      }
      if (len === 126) {
        if (avail < 4) return undefined;
        len = (b[at]! << 8) | b[at + 1]!;
        at += 2;
      } else if (len === 127) {
        if (avail < 10) return undefined;
        const hi = (b[at]! << 24 >>> 0) * 2 ** 32 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) |
          b[at + 3]!);
        if (b[at]! & 0x80) return this.#violation(1002, "length over 2^63");
        const lo = ((b[at + 4]! << 24) >>> 0) + ((b[at + 5]! << 16) | (b[at + 6]! << 8) |
          b[at + 7]!);
        len = hi * 2 ** 32 + lo;
        at += 8;
      }
      if (!control) {
        if (op === OPCODE.continuation && this.#fragmented === undefined) {
          return this.#violation(1002, "continuation without a message");
        }
        if (op !== OPCODE.continuation && this.#fragmented !== undefined) {
          return this.#violation(1002, "new message inside a fragmented one");
        }
        // Refused on the header: the payload is never buffered.
        if (this.#partsBytes + len > this.#max) {
          // Skip this frame's payload: what was read of it, and what is still to come.
          const read = Math.max(0, this.#end - (at + 4));
          const maskMissing = Math.max(0, at + 4 - this.#end);
          const left = read >= len ? 0 : len - read + maskMissing;
          const rest = read > len ? this.#buf.slice(at + 4 + len, this.#end) : new Uint8Array(0);
          const v = this.#violation(1009, `message over ${this.#max} bytes`, left);
          if (rest.length) this.push(rest);
          return v;
        }
      }
      const maskAt = at;
      at += 4;
      if (this.#end - at < len) {
        // Make room for the whole frame once (≤ the limit, or ≤ 125 for control frames).
        const need = at - s + len;
        if (need > this.#buf.length) {
          const grown = new Uint8Array(need);
          grown.set(b.subarray(s, this.#end));
          this.#end -= s;
          this.#start = 0;
          this.#buf = grown;
        }
        return undefined;
      }
      // Unmasked in place; the bytes stay in the buffer until the next push.
      for (let i = 0; i < len; i++) b[at + i]! ^= b[maskAt + (i & 3)]!;
      this.#start = at + len;
      if (this.#start === this.#end) this.#start = this.#end = 0;
      if (op === OPCODE.text && fin) {
        // A whole text message (a phone's usual): decoded from the buffer, no copy.
        try {
          return { type: "message", data: utf8.decode(b.subarray(at, at + len)) };
        } catch {
          return this.#violation(1007, "text not UTF-8");
        }
      }
      const payload = b.slice(at, at + len);
      if (control) {
        if (op === OPCODE.ping) return { type: "ping", payload };
        if (op === OPCODE.pong) return { type: "pong" };
        if (len === 1) return this.#violation(1002, "close payload of one byte");
        const code = len >= 2 ? (payload[0]! << 8) | payload[1]! : undefined;
        if (code !== undefined && !isValidCloseCode(code)) {
          return this.#violation(1002, `close code ${code}`);
        }
        let reason: string;
        try {
          reason = utf8.decode(payload.subarray(2));
        } catch {
          return this.#violation(1007, "close reason not UTF-8");
        }
        return { type: "close", code, reason };
      }
      if (op !== OPCODE.continuation) this.#fragmented = op;
      if (!fin) {
        this.#parts.push(payload);
        this.#partsBytes += len;
        continue;
      }
      const kind = this.#fragmented!;
      let data = payload;
      if (this.#parts.length) {
        this.#parts.push(payload);
        data = new Uint8Array(this.#partsBytes + len);
        let o = 0;
        for (const p of this.#parts) {
          data.set(p, o);
          o += p.length;
        }
        this.#parts = [];
      }
      this.#partsBytes = 0;
      this.#fragmented = undefined;
      if (kind === OPCODE.text) {
        try {
          return { type: "message", data: utf8.decode(data) };
        } catch {
          return this.#violation(1007, "text not UTF-8");
        }
      }
      return { type: "message", data };
    }
  }
}

/** Options of {@linkcode encodeFrame}. */
export interface EncodeOptions {
  /** @default {true} */
  fin?: boolean;
  /** A 4-byte masking key (clients mask; the server never does). */
  mask?: Uint8Array;
  /** Length field to claim instead of the payload's (tests of hostile peers). */
  claimLength?: number;
}

/** One frame: header and (masked, when a key is given) payload. */
export function encodeFrame(
  opcode: number,
  payload: Uint8Array,
  options: EncodeOptions = {},
): Uint8Array {
  const len = options.claimLength ?? payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const maskLen = options.mask ? 4 : 0;
  const out = new Uint8Array(2 + ext + maskLen + payload.length);
  out[0] = ((options.fin ?? true) ? 0x80 : 0) | opcode;
  out[1] = (options.mask ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  const view = new DataView(out.buffer);
  if (ext === 2) view.setUint16(2, len);
  else if (ext === 8) view.setBigUint64(2, BigInt(len));
  const at = 2 + ext + maskLen;
  out.set(payload, at);
  if (options.mask) {
    out.set(options.mask, 2 + ext);
    for (let i = 0; i < payload.length; i++) out[at + i]! ^= options.mask[i & 3]!;
  }
  return out;
}

/** The payload of a close frame. */
export function closePayload(code: number, reason: string): Uint8Array {
  const text = new TextEncoder().encode(reason).subarray(0, 123);
  const out = new Uint8Array(2 + text.length);
  out[0] = code >> 8;
  out[1] = code & 0xff;
  out.set(text, 2);
  return out;
}
