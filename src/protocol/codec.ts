/**
 * Top-level decode and encode: dispatch on command and operation.
 *
 * Decoding is tolerant (type flags masked, longer packets accepted, address tails ignored past
 * the significant length, configurable magic) and total: any byte string yields a packet or a
 * {@linkcode PacketDecodeError} with its offset; nothing else is thrown and nothing is read out
 * of bounds. Encoding is exact (56/57/61/62 bytes, '0' padding).
 *
 * @module
 */

import {
  COMMAND,
  type Command,
  DEFAULT_MAGIC,
  type MsgType,
  OFFSET,
  OP,
  type SignalOp,
  TYPE_MASK,
} from "./constants.ts";
import { PacketDecodeError } from "./errors.ts";
import { hasMagic, magicBytes } from "./prefix.ts";
import { decodeNs, encodeNsAsk, encodeNsReply } from "./ns.ts";
import { decodeCall, encodeCall } from "./call.ts";
import { decodeMedia, encodeMedia } from "./media.ts";
import type { CodecOptions, Packet } from "./types.ts";

const CALL_COMMANDS: ReadonlySet<number> = new Set([
  COMMAND.VIDEOTALK,
  COMMAND.RELAYCALL,
  COMMAND.VIDEOWATCH,
  COMMAND.CALL_153,
]);

const SIGNAL_OPS: ReadonlySet<number> = new Set(
  Object.values(OP).filter((op) => op !== OP.CALLUP && op !== OP.CALLDOWN),
);

/**
 * Decodes one datagram.
 *
 * @example
 * ```ts
 * const p = decodePacket(bytes);
 * if (p instanceof PacketDecodeError) counters.bad++;
 * else if (p.kind === "ns_ask") answer(p);
 * ```
 */
export function decodePacket(
  bytes: Uint8Array,
  options: CodecOptions = {},
): Packet | PacketDecodeError {
  try {
    return decodeUnsafe(bytes, magicBytes(options.magic ?? DEFAULT_MAGIC));
  } catch (e) {
    // Defensive: a decoder bug must not take the receive loop down; report it as our error.
    return new PacketDecodeError("bad_length", 0, `Cannot decode packet: ${String(e)}`);
  }
}

function decodeUnsafe(bytes: Uint8Array, magic: Uint8Array): Packet | PacketDecodeError {
  if (bytes.length < 6) {
    return new PacketDecodeError(
      "truncated",
      bytes.length,
      `Cannot decode packet: ${bytes.length} bytes`,
    );
  }
  if (!hasMagic(bytes, magic)) {
    return new PacketDecodeError("bad_magic", 0, "Cannot decode packet: wrong magic");
  }
  if (bytes.length < 8) {
    return new PacketDecodeError(
      "truncated",
      bytes.length,
      `Cannot decode packet: ${bytes.length} bytes`,
    );
  }
  const command = bytes[OFFSET.COMMAND]!;
  const type = bytes[OFFSET.TYPE]! & TYPE_MASK;
  if (command === COMMAND.NSORDER) return decodeNs(bytes);
  if (!CALL_COMMANDS.has(command)) {
    return new PacketDecodeError(
      "unknown_command",
      OFFSET.COMMAND,
      `Cannot decode packet: command ${command}`,
    );
  }
  if (type !== 1 && type !== 2) {
    return new PacketDecodeError(
      "unknown_type",
      OFFSET.TYPE,
      `Cannot decode call: type ${type}`,
      "call",
    );
  }
  if (bytes.length < 9) {
    return new PacketDecodeError(
      "truncated",
      bytes.length,
      `Cannot decode call: ${bytes.length} bytes`,
      "call",
    );
  }
  const op = bytes[OFFSET.OP]!;
  if (op === OP.CALLUP || op === OP.CALLDOWN) {
    return decodeMedia(bytes, command as Command, type as MsgType, op);
  }
  if (!SIGNAL_OPS.has(op)) {
    return new PacketDecodeError(
      "unknown_operation",
      OFFSET.OP,
      `Cannot decode call: operation ${op}`,
      "call",
    );
  }
  return decodeCall(bytes, command as Command, type as MsgType, op as SignalOp);
}

/** Encodes any packet exactly. Media packets are written in their `payloadOffset` form. */
export function encodePacket(p: Packet, options: CodecOptions = {}): Uint8Array {
  const magic = options.magic ?? DEFAULT_MAGIC;
  switch (p.kind) {
    case "ns_ask":
      return encodeNsAsk(p, magic);
    case "ns_reply":
      return encodeNsReply(p, magic);
    case "call":
      return encodeCall(p, magic);
    case "media":
      return encodeMedia(p, magic);
  }
}
