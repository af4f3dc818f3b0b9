/**
 * Typed packets of the door protocol: a discriminated union on `kind`.
 *
 * Addresses are their significant part (see `address.ts`), IPs dotted strings.
 *
 * @module
 */

import type { Command, MsgType, SignalOp } from "./constants.ts";

/** NS ask (§3, 56 bytes): who has `target`? */
export interface NsAsk {
  readonly kind: "ns_ask";
  /** Upper bits of byte 7. */
  readonly flags: number;
  readonly asker: string;
  readonly askerIp: string;
  readonly target: string;
  readonly targetIp: string;
}

/** One NS reply entry. */
export interface NsEntry {
  readonly address: string;
  readonly ip: string;
}

/** NS reply (§3, 33 + 24·N bytes). */
export interface NsReply {
  readonly kind: "ns_reply";
  readonly flags: number;
  readonly asker: string;
  readonly askerIp: string;
  readonly entries: readonly NsEntry[];
}

/** The 48 bytes after the operation: caller and callee (§4). Caller first, whoever sends. */
export interface CallParties {
  readonly caller: string;
  readonly callerIp: string;
  readonly callee: string;
  readonly calleeIp: string;
}

/** A signalling packet of commands 150–153 (§4). */
export interface CallPacket extends CallParties {
  readonly kind: "call";
  readonly command: Command;
  readonly type: MsgType;
  /** Upper bits of byte 7 (e.g. 0x04 on some CALLSTART replies). */
  readonly flags: number;
  readonly op: SignalOp;
  /** CALL and CALLANSWER: byte 57. */
  readonly multicast?: number;
  /** CALL and CALLANSWER: bytes 58–61. */
  readonly groupIp?: string;
  /** CALLCONFIRM: bytes 57–60 as hex, opaque (byte order varies by build). */
  readonly counter?: string;
}

/** Header form of a media packet: where its payload starts (§5). */
export type PayloadOffset = 77 | 86;

/** A media packet, CALLUP 7 or CALLDOWN 8 (§5). */
export interface MediaPacket extends CallParties {
  readonly kind: "media";
  readonly command: Command;
  readonly type: MsgType;
  readonly flags: number;
  readonly op: 7 | 8;
  readonly timestamp: number;
  readonly dataType: number;
  readonly frameNo: number;
  readonly frameLen: number;
  readonly totalPackets: number;
  readonly packet: number;
  readonly dataLen: number;
  readonly packLen: number;
  readonly payloadOffset: PayloadOffset;
  /** A view into the decoded bytes (not a copy). */
  readonly payload: Uint8Array;
}

/** Any packet. */
export type Packet = NsAsk | NsReply | CallPacket | MediaPacket;

/** Options shared by the decoder and encoder. */
export interface CodecOptions {
  /** Packet magic. @default {"XXXCID"} */
  magic?: string;
}
