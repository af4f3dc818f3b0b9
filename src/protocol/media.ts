/**
 * Media packets CALLUP 7 / CALLDOWN 8 (door-protocol.md §5), all fields little-endian.
 *
 * ```
 * 0–56 call header (op 7 from the door, 8 from the gateway)
 * 57 timestamp ms (4) | 61 data type (2) | 63 frame number (2) | 65 frame length (4)
 * 69 total packets (2) | 71 packet index, 1-based (2) | 73 Datalen (2) | 75 chunk size 1200 (2)
 * 77 payload — or 9 more header bytes and the payload at 86 (firmware family)
 * ```
 * The payload offset is `length − Datalen`, 77 or 86.
 *
 * The hot-path helpers here ({@linkcode mediaPayloadOffset}, {@linkcode patchMediaHeader}) read and
 * write in place and allocate nothing.
 *
 * @module
 */

import { CHUNK_SIZE, DEFAULT_MAGIC, LENGTH, OFFSET, TYPE_MASK } from "./constants.ts";
import { PacketDecodeError } from "./errors.ts";
import { decodeParties, writeCallHeader } from "./call.ts";
import { need, viewOf } from "./reader.ts";
import type { CallParties, MediaPacket, PayloadOffset } from "./types.ts";
import type { Command, MsgType } from "./constants.ts";

/**
 * The payload offset of a media datagram (77 or 86), or 0 when `length − Datalen` is neither.
 * Allocation-free: reads two bytes.
 */
export function mediaPayloadOffset(
  bytes: Uint8Array,
  length: number = bytes.length,
): 0 | PayloadOffset {
  if (length < LENGTH.MEDIA_SHORT) return 0;
  const dataLen = bytes[OFFSET.DATA_LEN]! | (bytes[OFFSET.DATA_LEN + 1]! << 8);
  const at = length - dataLen;
  return at === LENGTH.MEDIA_SHORT || at === LENGTH.MEDIA_LONG ? at : 0;
}

/** Decodes a media packet whose prefix was checked. */
export function decodeMedia(
  bytes: Uint8Array,
  command: Command,
  type: MsgType,
  op: 7 | 8,
): MediaPacket | PacketDecodeError {
  const short = need(bytes, LENGTH.MEDIA_SHORT, "media");
  if (short) return short;
  const payloadOffset = mediaPayloadOffset(bytes);
  if (payloadOffset === 0) {
    return new PacketDecodeError(
      "bad_length",
      OFFSET.DATA_LEN,
      `Cannot decode media: length ${bytes.length} minus Datalen is neither 77 nor 86`,
      "media",
    );
  }
  const parties = decodeParties(bytes, "media");
  if (parties instanceof PacketDecodeError) return parties;
  const v = viewOf(bytes);
  return {
    kind: "media",
    command,
    type,
    flags: bytes[OFFSET.TYPE]! & ~TYPE_MASK,
    op,
    ...parties,
    timestamp: v.getUint32(OFFSET.TIMESTAMP, true),
    dataType: v.getUint16(OFFSET.DATA_TYPE, true),
    frameNo: v.getUint16(OFFSET.FRAME_NO, true),
    frameLen: v.getUint32(OFFSET.FRAME_LEN, true),
    totalPackets: v.getUint16(OFFSET.TOTAL_PACKETS, true),
    packet: v.getUint16(OFFSET.PACKET_INDEX, true),
    dataLen: v.getUint16(OFFSET.DATA_LEN, true),
    packLen: v.getUint16(OFFSET.PACK_LEN, true),
    payloadOffset,
    payload: bytes.subarray(payloadOffset),
  };
}

/** What {@linkcode encodeMedia} needs. */
export interface MediaInit extends CallParties {
  op: 7 | 8;
  command?: number;
  timestamp: number;
  dataType: number;
  frameNo: number;
  /** @default payload length */
  frameLen?: number;
  /** @default 1 */
  totalPackets?: number;
  /** @default 1 */
  packet?: number;
  /** @default 1200 */
  packLen?: number;
  /** @default 77 */
  payloadOffset?: PayloadOffset;
  payload: Uint8Array;
}

/**
 * Encodes a media packet into `out` (allocated when omitted) and returns the bytes written
 * as a view of `out`. The 9 extra header bytes of the long form are zero.
 */
export function encodeMedia(p: MediaInit, magic = DEFAULT_MAGIC, out?: Uint8Array): Uint8Array {
  const at = p.payloadOffset ?? LENGTH.MEDIA_SHORT;
  const length = at + p.payload.length;
  const buf = out ?? new Uint8Array(length);
  if (buf.length < length) {
    throw new RangeError(`Cannot encode media: buffer of ${buf.length} < ${length}`);
  }
  writeCallHeader(buf, magic, p.command ?? 150, 1, p.op, p);
  const v = viewOf(buf);
  v.setUint32(OFFSET.TIMESTAMP, p.timestamp >>> 0, true);
  v.setUint16(OFFSET.DATA_TYPE, p.dataType, true);
  v.setUint16(OFFSET.FRAME_NO, p.frameNo & 0xffff, true);
  v.setUint32(OFFSET.FRAME_LEN, p.frameLen ?? p.payload.length, true);
  v.setUint16(OFFSET.TOTAL_PACKETS, p.totalPackets ?? 1, true);
  v.setUint16(OFFSET.PACKET_INDEX, p.packet ?? 1, true);
  v.setUint16(OFFSET.DATA_LEN, p.payload.length, true);
  v.setUint16(OFFSET.PACK_LEN, p.packLen ?? CHUNK_SIZE, true);
  buf.fill(0, LENGTH.MEDIA_SHORT, at);
  buf.set(p.payload, at);
  return buf.subarray(0, length);
}

/**
 * Rewrites, in place, the header of a phone's CALLDOWN datagram for the door (§5, phone
 * protocol "Media"): the 48 address bytes from `parties48` (the call's caller/callee block,
 * bytes 9–56), timestamp and frame number. Allocation-free.
 */
export function patchMediaHeader(
  bytes: Uint8Array,
  parties48: Uint8Array,
  timestamp: number,
  frameNo: number,
): void {
  bytes.set(parties48, OFFSET.CALLER);
  const ts = timestamp >>> 0;
  bytes[OFFSET.TIMESTAMP] = ts & 0xff;
  bytes[OFFSET.TIMESTAMP + 1] = (ts >>> 8) & 0xff;
  bytes[OFFSET.TIMESTAMP + 2] = (ts >>> 16) & 0xff;
  bytes[OFFSET.TIMESTAMP + 3] = ts >>> 24;
  bytes[OFFSET.FRAME_NO] = frameNo & 0xff;
  bytes[OFFSET.FRAME_NO + 1] = (frameNo >>> 8) & 0xff;
}
