/**
 * Protocol constants of the XXXCID door-station protocol (door-protocol.md §1–§5).
 *
 * @module
 */

/** Default packet magic (§2); some OEM builds use `QIUSHI`. */
export const DEFAULT_MAGIC = "XXXCID";

/** What a packet magic may be (§2): exactly 6 printable ASCII characters. */
export const MAGIC_PATTERN: RegExp = /^[\x20-\x7e]{6}$/;

/** True when `s` can be a packet magic ({@linkcode MAGIC_PATTERN}). */
export function isMagic(s: string): boolean {
  return MAGIC_PATTERN.test(s);
}

/** Byte 6: command (§2). */
export const COMMAND = {
  /** Call signalling and media. */
  VIDEOTALK: 150,
  /** Relayed call (same header as 150). */
  RELAYCALL: 151,
  /** Live view (same header as 150). */
  VIDEOWATCH: 152,
  /** Reserved call-family command (same header as 150). */
  CALL_153: 153,
  /** Name resolution by multicast. */
  NSORDER: 154,
} as const;

/** A command byte. */
export type Command = typeof COMMAND[keyof typeof COMMAND];

/** Byte 7 low two bits: ASK or REPLY (§2). Upper bits are capability flags. */
export const MSG_TYPE = { ASK: 1, REPLY: 2 } as const;

/** ASK or REPLY. */
export type MsgType = typeof MSG_TYPE[keyof typeof MSG_TYPE];

/** Mask of the type bits in byte 7. */
export const TYPE_MASK = 0x03;

/** Byte 8 of command 150: the operation (§4). */
export const OP = {
  CALL: 1,
  LINEUSE: 2,
  QUERYFAIL: 3,
  CALLANSWER: 4,
  CALLSTART: 6,
  CALLUP: 7,
  CALLDOWN: 8,
  CALLCONFIRM: 9,
  REMOTEOPENLOCK: 10,
  FORCEIFRAME: 11,
  ZOOMOUT: 15,
  ZOOMIN: 16,
  CALLEND: 30,
} as const;

/** An operation byte. */
export type Op = typeof OP[keyof typeof OP];

/** Signalling operations (everything but media). */
export type SignalOp = Exclude<Op, typeof OP.CALLUP | typeof OP.CALLDOWN>;

/** Operation names by value, for logs and the simulator's event log. */
export const OP_NAME: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(OP).map(([name, value]) => [value, name]),
);

/** Exact lengths the gateway emits and minimum lengths it accepts (§3, §4, §5). */
export const LENGTH = {
  /** Common prefix: magic, command, type, operation. */
  PREFIX: 9,
  /** NS ask. */
  NS_ASK: 56,
  /** NS reply without entries: 32 copied bytes + count. */
  NS_REPLY_BASE: 33,
  /** One NS reply entry: address + IP. */
  NS_ENTRY: 24,
  /** Call header (and the whole of most call packets). */
  CALL_HEADER: 57,
  /** CALLCONFIRM: header + 4-byte counter. */
  CALL_CONFIRM: 61,
  /** CALL and CALLANSWER: header + multicast flag + group IP. */
  CALL_WITH_GROUP: 62,
  /** Media header, short form (payload at 77). */
  MEDIA_SHORT: 77,
  /** Media header, long form (payload at 86). */
  MEDIA_LONG: 86,
} as const;

/** Field offsets shared by call and media packets (§4, §5). */
export const OFFSET = {
  MAGIC: 0,
  COMMAND: 6,
  TYPE: 7,
  OP: 8,
  CALLER: 9,
  CALLER_IP: 29,
  CALLEE: 33,
  CALLEE_IP: 53,
  MULTICAST: 57,
  GROUP_IP: 58,
  COUNTER: 57,
  TIMESTAMP: 57,
  DATA_TYPE: 61,
  FRAME_NO: 63,
  FRAME_LEN: 65,
  TOTAL_PACKETS: 69,
  PACKET_INDEX: 71,
  DATA_LEN: 73,
  PACK_LEN: 75,
  /** NS: asker, asker IP, target, target IP / entry count. */
  NS_ASKER: 8,
  NS_ASKER_IP: 28,
  NS_TARGET: 32,
  NS_TARGET_IP: 52,
  NS_COUNT: 32,
} as const;

/** Exact emitted length of each signalling operation (§4 table). */
export const SIGNAL_LENGTH: Readonly<Record<SignalOp, number>> = {
  [OP.CALL]: LENGTH.CALL_WITH_GROUP,
  [OP.LINEUSE]: LENGTH.CALL_HEADER,
  [OP.QUERYFAIL]: LENGTH.CALL_HEADER,
  [OP.CALLANSWER]: LENGTH.CALL_WITH_GROUP,
  [OP.CALLSTART]: LENGTH.CALL_HEADER,
  [OP.CALLCONFIRM]: LENGTH.CALL_CONFIRM,
  [OP.REMOTEOPENLOCK]: LENGTH.CALL_HEADER,
  [OP.FORCEIFRAME]: LENGTH.CALL_HEADER,
  [OP.ZOOMOUT]: LENGTH.CALL_HEADER,
  [OP.ZOOMIN]: LENGTH.CALL_HEADER,
  [OP.CALLEND]: LENGTH.CALL_HEADER,
};

/** Media data types (§5 offset 61). */
export const DATA_TYPE = {
  AUDIO: 1,
  CIF_I: 2,
  CIF_P: 3,
  D1_I: 4,
  D1_P: 5,
} as const;

/** Nominal video chunk size (§5 offset 75). */
export const CHUNK_SIZE = 1200;

/** Bytes of G.711 audio per packet: 8 ms at 8 kHz (§5). */
export const AUDIO_FRAME_BYTES = 64;

/** Milliseconds of audio per packet. */
export const AUDIO_FRAME_MS = 8;

/** Size of an address field (§2). */
export const ADDRESS_SIZE = 20;

/** Significant lengths of device addresses by first letter (§2). */
export const SIGNIFICANT_LENGTH: Readonly<Record<string, number>> = {
  S: 12,
  M: 8,
  B: 6,
  H: 6,
  W: 5,
  Z: 5,
};

/** Well-known UDP ports and the multicast group (§1). */
export const DEFAULTS = {
  DOOR_PORT: 8302,
  MULTICAST_GROUP: "238.9.9.1",
} as const;
