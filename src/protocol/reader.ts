/**
 * Bounds checks shared by the packet decoders.
 *
 * @module
 */

import { PacketDecodeError } from "./errors.ts";
import { readAddress } from "./address.ts";

/** Fails with `truncated` unless `bytes` holds at least `need` bytes. */
export function need(bytes: Uint8Array, need: number, what: string): PacketDecodeError | undefined {
  if (bytes.length >= need) return undefined;
  return new PacketDecodeError(
    "truncated",
    bytes.length,
    `Cannot decode ${what}: need ${need} bytes, got ${bytes.length}`,
    what,
  );
}

/** Reads an address or returns a `bad_address` error at its offset. */
export function address(
  bytes: Uint8Array,
  offset: number,
  what: string,
): string | PacketDecodeError {
  return readAddress(bytes, offset) ??
    new PacketDecodeError(
      "bad_address",
      offset,
      `Cannot decode ${what}: bad address at ${offset}`,
      what,
    );
}

/** A little-endian DataView over exactly `bytes`, honouring its byteOffset. */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
