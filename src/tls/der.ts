/**
 * A small ASN.1 DER writer: just what an X.509 certificate needs (ITU-T X.690). Pure: each
 * function returns the encoded bytes of one value; constructed values take their encoded
 * children.
 *
 * @example
 * ```ts
 * const name = seq(set(seq(oid("2.5.4.3"), utf8("gateway"))));
 * ```
 *
 * @module
 */

import { concatBytes } from "../bytes.ts";

/** Encoded bytes (over a plain ArrayBuffer, as WebCrypto takes them). */
export type Bytes = Uint8Array<ArrayBuffer>;

/** Universal and context tags used here. */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

function lengthBytes(n: number): Bytes {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** One tag-length-value with `tag` (one byte) and `content`. */
export function tlv(tag: number, content: Uint8Array): Bytes {
  return concatBytes(Uint8Array.of(tag), lengthBytes(content.length), content);
}

/** SEQUENCE of already encoded values. */
export function seq(...items: Uint8Array[]): Bytes {
  return tlv(TAG.SEQUENCE, concatBytes(...items));
}

/** SET of already encoded values (callers give them in DER order). */
export function set(...items: Uint8Array[]): Bytes {
  return tlv(TAG.SET, concatBytes(...items));
}

/** BOOLEAN. */
export function bool(value: boolean): Bytes {
  return tlv(TAG.BOOLEAN, Uint8Array.of(value ? 0xff : 0));
}

/** A non-negative INTEGER from its big-endian magnitude bytes (leading zeros trimmed). */
export function uint(magnitude: Uint8Array): Bytes {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const bytes = magnitude.subarray(start);
  const body = bytes.length === 0
    ? Uint8Array.of(0)
    : bytes[0]! & 0x80
    ? concatBytes(Uint8Array.of(0), bytes)
    : bytes;
  return tlv(TAG.INTEGER, body);
}

/** A small non-negative INTEGER. */
export function int(value: number): Bytes {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new RangeError(`Cannot encode INTEGER ${value}: only 0 to 2^32-1`);
  }
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, value);
  return uint(b);
}

/** OBJECT IDENTIFIER from its dotted form, e.g. `2.5.4.3`. */
export function oid(dotted: string): Bytes {
  const arcs = dotted.split(".").map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isInteger(a) || a < 0)) {
    throw new RangeError(`Cannot encode OID ${JSON.stringify(dotted)}: not a dotted OID`);
  }
  const out: number[] = [arcs[0]! * 40 + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const group: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) {
      group.unshift(0x80 | (v & 0x7f));
    }
    out.push(...group);
  }
  return tlv(TAG.OID, Uint8Array.from(out));
}

/** UTF8String. */
export function utf8(text: string): Bytes {
  return tlv(TAG.UTF8_STRING, new TextEncoder().encode(text));
}

/** OCTET STRING. */
export function octets(bytes: Uint8Array): Bytes {
  return tlv(TAG.OCTET_STRING, bytes);
}

/** BIT STRING of whole bytes, or with `unused` trailing bits of the last byte unused. */
export function bits(bytes: Uint8Array, unused = 0): Bytes {
  return tlv(TAG.BIT_STRING, concatBytes(Uint8Array.of(unused), bytes));
}

/**
 * A certificate time (RFC 5280 §4.1.2.5): UTCTime for the years 1950–2049, GeneralizedTime
 * otherwise; whole seconds, UTC.
 */
export function time(at: Date): Bytes {
  const iso = at.toISOString(); // 2026-12-02T05:39:39.000Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, ""); // 20261202053939
  const year = at.getUTCFullYear();
  return year >= 1950 && year < 2050
    ? tlv(TAG.UTC_TIME, new TextEncoder().encode(digits.slice(2) + "Z"))
    : tlv(TAG.GENERALIZED_TIME, new TextEncoder().encode(digits + "Z"));
}

/** A context-specific constructed (explicit) tag `[n]` around one encoded value. */
export function explicit(n: number, inner: Uint8Array): Bytes {
  return tlv(0xa0 | n, inner);
}

/** A context-specific primitive (implicit) tag `[n]` with raw content bytes. */
export function implicit(n: number, content: Uint8Array): Bytes {
  return tlv(0x80 | n, content);
}
