/**
 * Reassembles the first complete video frame of a call from the door's media chunks
 * (door-protocol.md §5.3): chunks of at most 1200 bytes, the same frame number, frame length and
 * packet count in each, the chunk's place given by its **1-based** packet index. Used by the
 * media relay's snapshot tap only until the frame is taken, so it may allocate (one buffer per
 * frame tried); the relay stops calling it afterwards.
 *
 * A frame is eligible when it is an I-frame (data type 2 or 4) or a JPEG (its first chunk starts
 * with the JPEG SOI marker FF D8: MJPEG doors mark every frame alike); frames larger than
 * `maxBytes` are skipped. After `maxTries` frames without success the assembler gives up.
 *
 * @module
 */

import { CHUNK_SIZE, OFFSET } from "../protocol/constants.ts";

/** Largest snapshot kept (a Deno KV value holds at most 64 KiB). */
export const SNAPSHOT_MAX_BYTES = 60 * 1024;
/** Frames tried before giving up. */
export const FIRST_FRAME_TRIES = 100;

/** A complete frame. */
export interface Frame {
  readonly bytes: Uint8Array;
  /** The media data type (2/3 CIF I/P, 4/5 D1 I/P). */
  readonly dataType: number;
}

/** What {@linkcode FirstFrame.push} found. */
export type PushResult = Frame | "more" | "give_up";

const u16 = (b: Uint8Array, at: number) => b[at]! | (b[at + 1]! << 8);
const u32 = (b: Uint8Array, at: number) => (u16(b, at) + u16(b, at + 2) * 65536) >>> 0;

/** The reassembly state of one call. */
export class FirstFrame {
  readonly #max: number;
  readonly #maxTries: number;
  #tries = 0;
  #frameNo = -1;
  /** The frame number being skipped (not eligible, too large, or broken). */
  #skip = -1;
  #buf = new Uint8Array(0);
  #len = 0;
  #total = 0;
  #seen = new Uint8Array(0);
  #count = 0;
  #bytes = 0;
  #dataType = 0;
  #eligible = false;

  /** Creates the state; frames over `maxBytes` are skipped. */
  constructor(options: { maxBytes?: number; maxTries?: number } = {}) {
    this.#max = options.maxBytes ?? SNAPSHOT_MAX_BYTES;
    this.#maxTries = options.maxTries ?? FIRST_FRAME_TRIES;
  }

  /**
   * Feeds one door media datagram whose payload starts at `payloadAt` (77 or 86). Audio and
   * chunks of skipped frames are ignored.
   */
  push(bytes: Uint8Array, payloadAt: number): PushResult {
    if (this.#tries > this.#maxTries) return "give_up";
    const dataType = u16(bytes, OFFSET.DATA_TYPE);
    if (dataType < 2 || dataType > 5) return "more";
    const frameNo = u16(bytes, OFFSET.FRAME_NO);
    if (frameNo === this.#skip) return "more";
    if (frameNo !== this.#frameNo && !this.#start(bytes, frameNo, dataType)) {
      return this.#tries > this.#maxTries ? "give_up" : "more";
    }
    const index = u16(bytes, OFFSET.PACKET_INDEX);
    const dataLen = u16(bytes, OFFSET.DATA_LEN);
    const chunk = u16(bytes, OFFSET.PACK_LEN) || CHUNK_SIZE;
    const at = (index - 1) * chunk;
    if (
      index < 1 || index > this.#total || at + dataLen > this.#len ||
      payloadAt + dataLen > bytes.length
    ) {
      this.#skip = frameNo;
      this.#frameNo = -1;
      return "more";
    }
    if (index === 1) {
      this.#eligible = this.#dataType === 2 || this.#dataType === 4 ||
        (bytes[payloadAt] === 0xff && bytes[payloadAt + 1] === 0xd8);
      if (!this.#eligible) {
        this.#skip = frameNo;
        this.#frameNo = -1;
        return "more";
      }
    }
    if (this.#seen[index - 1]) return "more";
    this.#seen[index - 1] = 1;
    this.#buf.set(bytes.subarray(payloadAt, payloadAt + dataLen), at);
    this.#count++;
    this.#bytes += dataLen;
    if (this.#count < this.#total) return "more";
    if (!this.#eligible || this.#bytes !== this.#len) {
      this.#skip = frameNo;
      this.#frameNo = -1;
      return "more";
    }
    this.#tries = this.#maxTries + 1; // done: nothing more to do
    return { bytes: this.#buf.subarray(0, this.#len), dataType: this.#dataType };
  }

  #start(bytes: Uint8Array, frameNo: number, dataType: number): boolean {
    this.#tries++;
    const len = u32(bytes, OFFSET.FRAME_LEN);
    const total = u16(bytes, OFFSET.TOTAL_PACKETS);
    const chunk = u16(bytes, OFFSET.PACK_LEN) || CHUNK_SIZE;
    if (
      this.#tries > this.#maxTries || len === 0 || len > this.#max || total === 0 ||
      total > Math.ceil(len / Math.min(chunk, CHUNK_SIZE)) + 1 || total > 4096
    ) {
      this.#skip = frameNo;
      this.#frameNo = -1;
      return false;
    }
    this.#frameNo = frameNo;
    this.#skip = -1;
    this.#dataType = dataType;
    this.#len = len;
    this.#total = total;
    this.#count = 0;
    this.#bytes = 0;
    this.#eligible = false;
    if (this.#buf.length < len) this.#buf = new Uint8Array(len);
    if (this.#seen.length < total) this.#seen = new Uint8Array(total);
    else this.#seen.fill(0, 0, total);
    return true;
  }
}
