/**
 * Device addresses and IPv4 fields (door-protocol.md §2).
 *
 * An address is ASCII in a 20-byte field padded with '0'; only its significant length counts
 * (S 12, M 8, B 6, H 6, W 5, Z 5). The codec decodes addresses to their significant part.
 *
 * @module
 */

import { ADDRESS_SIZE, SIGNIFICANT_LENGTH } from "./constants.ts";

const PAD = 0x30; // '0'

/** Significant length of an address by its first letter; unknown letters use the whole field. */
export function significantLength(address: string): number {
  return SIGNIFICANT_LENGTH[address.charAt(0)] ?? ADDRESS_SIZE;
}

function isAddressChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/**
 * Reads the address at `offset` and returns its significant part, or `undefined` when it holds
 * a character that is not a letter or digit within the significant length.
 */
export function readAddress(bytes: Uint8Array, offset: number): string | undefined {
  const first = bytes[offset];
  if (first === undefined || first < 0x41 || first > 0x5a) return undefined;
  const sig = SIGNIFICANT_LENGTH[String.fromCharCode(first)];
  let end = offset + (sig ?? ADDRESS_SIZE);
  if (sig === undefined) {
    // Unknown letter: stop at the first byte that cannot be part of an address.
    for (let i = offset + 1; i < offset + ADDRESS_SIZE; i++) {
      if (!isAddressChar(bytes[i]!)) {
        end = i;
        break;
      }
    }
  }
  let out = "";
  for (let i = offset; i < end; i++) {
    const c = bytes[i]!;
    if (!isAddressChar(c)) return undefined;
    out += String.fromCharCode(c);
  }
  return out;
}

/** Writes `address` into the 20-byte field at `offset`, padded with '0' (never NUL). */
export function writeAddress(bytes: Uint8Array, offset: number, address: string): void {
  const n = Math.min(address.length, ADDRESS_SIZE);
  for (let i = 0; i < n; i++) bytes[offset + i] = address.charCodeAt(i) & 0x7f;
  bytes.fill(PAD, offset + n, offset + ADDRESS_SIZE);
}

/** True when two addresses name the same device (compared on the significant length). */
export function sameAddress(a: string, b: string): boolean {
  if (a.charAt(0) !== b.charAt(0)) return false;
  const n = significantLength(a);
  return a.padEnd(n, "0").slice(0, n) === b.padEnd(n, "0").slice(0, n);
}

/** Canonical form of an address: its significant part, '0'-padded when written shorter. */
export function canonicalAddress(address: string): string {
  const n = significantLength(address);
  return address.padEnd(n, "0").slice(0, n);
}

/**
 * Widths in which addresses are shown to phones: the significant length, except `M`, which the
 * seed's phone orders show with its '0' padding digit (`M00010100`).
 */
const DISPLAY_LENGTH: Readonly<Record<string, number>> = { M: 9 };

/** An address as phones see it (`M00010100`, `S00010108090`). */
export function displayAddress(address: string): string {
  return canonicalAddress(address).padEnd(DISPLAY_LENGTH[address.charAt(0)] ?? 0, "0");
}

/**
 * The room key of a room address: the 11 digits after the letter, so that the phone-side
 * `Y00010108090` and the door-side `S00010108090` name the same room. `undefined` when the
 * address is not a letter followed by at least 11 digits.
 */
export function roomKey(address: string): string | undefined {
  const m = /^[A-Za-z](\d{11})/.exec(address);
  return m ? m[1] : undefined;
}

/** Reads a 4-byte IPv4 address in dotted order. */
export function readIp(bytes: Uint8Array, offset: number): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/** Parses a dotted IPv4 string; `undefined` when malformed. */
export function parseIp(ip: string): [number, number, number, number] | undefined {
  const parts = ip.split(".");
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out as [number, number, number, number];
}

/** Writes a dotted IPv4 string as 4 raw bytes; malformed strings write 0.0.0.0. */
export function writeIp(bytes: Uint8Array, offset: number, ip: string): void {
  const parsed = parseIp(ip) ?? [0, 0, 0, 0];
  bytes.set(parsed, offset);
}
