/**
 * The common packet prefix: magic (6), command (1), type (1) — §2.
 *
 * @module
 */

import { DEFAULT_MAGIC, isMagic, OFFSET } from "./constants.ts";

const magicCache = new Map<string, Uint8Array>();

/** The magic's bytes (cached; exactly 6 ASCII characters). */
export function magicBytes(magic: string = DEFAULT_MAGIC): Uint8Array {
  let bytes = magicCache.get(magic);
  if (!bytes) {
    if (!isMagic(magic)) {
      throw new RangeError(`Cannot use magic "${magic}": need 6 printable ASCII characters`);
    }
    bytes = new TextEncoder().encode(magic);
    magicCache.set(magic, bytes);
  }
  return bytes;
}

/** True when `bytes` starts with the magic. */
export function hasMagic(bytes: Uint8Array, magic: Uint8Array): boolean {
  if (bytes.length < 6) return false;
  for (let i = 0; i < 6; i++) if (bytes[i] !== magic[i]) return false;
  return true;
}

/** Writes magic, command and type at the start of `out`. */
export function writePrefix(out: Uint8Array, magic: string, command: number, type: number): void {
  out.set(magicBytes(magic), OFFSET.MAGIC);
  out[OFFSET.COMMAND] = command;
  out[OFFSET.TYPE] = type;
}
