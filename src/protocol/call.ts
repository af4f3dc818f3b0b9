/**
 * Call signalling packets of commands 150–153 (door-protocol.md §4).
 *
 * ```
 * 0  magic(6) | 6 command | 7 type(+flags) | 8 op
 * 9  caller address(20) | 29 caller IP(4) | 33 callee address(20) | 53 callee IP(4)   = 57
 * CALL, CALLANSWER: 57 multicast flag(1) | 58 group IP(4)                              = 62
 * CALLCONFIRM:      57 counter(4, opaque)                                              = 61
 * ```
 *
 * @module
 */

import {
  DEFAULT_MAGIC,
  MSG_TYPE,
  OFFSET,
  OP,
  SIGNAL_LENGTH,
  type SignalOp,
  TYPE_MASK,
} from "./constants.ts";
import { PacketDecodeError } from "./errors.ts";
import { readIp, writeAddress, writeIp } from "./address.ts";
import { address, need } from "./reader.ts";
import { writePrefix } from "./prefix.ts";
import type { CallPacket, CallParties } from "./types.ts";
import type { Command, MsgType } from "./constants.ts";

/** Reads the caller/callee pairs at 9–56 of a packet at least 57 bytes long. */
export function decodeParties(bytes: Uint8Array, what: string): CallParties | PacketDecodeError {
  const caller = address(bytes, OFFSET.CALLER, what);
  if (typeof caller !== "string") return caller;
  const callee = address(bytes, OFFSET.CALLEE, what);
  if (typeof callee !== "string") return callee;
  return {
    caller,
    callerIp: readIp(bytes, OFFSET.CALLER_IP),
    callee,
    calleeIp: readIp(bytes, OFFSET.CALLEE_IP),
  };
}

/** Decodes a signalling packet (not media) whose prefix, command and op were checked. */
export function decodeCall(
  bytes: Uint8Array,
  command: Command,
  type: MsgType,
  op: SignalOp,
): CallPacket | PacketDecodeError {
  const what = `call op ${op}`;
  const short = need(bytes, SIGNAL_LENGTH[op], what);
  if (short) return short;
  const parties = decodeParties(bytes, what);
  if (parties instanceof PacketDecodeError) return parties;
  const base = {
    kind: "call",
    command,
    type,
    flags: bytes[OFFSET.TYPE]! & ~TYPE_MASK,
    op,
  } as const;
  if (op === OP.CALL || op === OP.CALLANSWER) {
    return {
      ...base,
      ...parties,
      multicast: bytes[OFFSET.MULTICAST]!,
      groupIp: readIp(bytes, OFFSET.GROUP_IP),
    };
  }
  if (op === OP.CALLCONFIRM) {
    return {
      ...base,
      ...parties,
      counter: bytes.subarray(OFFSET.COUNTER, OFFSET.COUNTER + 4).toHex(),
    };
  }
  return { ...base, ...parties };
}

/** Writes the 57-byte call header into `out`. */
export function writeCallHeader(
  out: Uint8Array,
  magic: string,
  command: number,
  type: number,
  op: number,
  parties: CallParties,
): void {
  writePrefix(out, magic, command, type);
  out[OFFSET.OP] = op;
  writeAddress(out, OFFSET.CALLER, parties.caller);
  writeIp(out, OFFSET.CALLER_IP, parties.callerIp);
  writeAddress(out, OFFSET.CALLEE, parties.callee);
  writeIp(out, OFFSET.CALLEE_IP, parties.calleeIp);
}

/** What {@linkcode encodeCall} needs: a call packet; `command` defaults to 150, `flags` to 0. */
export type CallInit =
  & Omit<CallPacket, "kind" | "command" | "flags">
  & Partial<Pick<CallPacket, "command" | "flags">>;

/** Encodes a signalling packet at the exact length of its operation (57, 61 or 62). */
export function encodeCall(p: CallInit, magic = DEFAULT_MAGIC): Uint8Array {
  const out = new Uint8Array(SIGNAL_LENGTH[p.op]);
  writeCallHeader(out, magic, p.command ?? 150, (p.type & TYPE_MASK) | (p.flags ?? 0), p.op, p);
  if (p.op === OP.CALL || p.op === OP.CALLANSWER) {
    out[OFFSET.MULTICAST] = p.multicast ?? 0;
    writeIp(out, OFFSET.GROUP_IP, p.groupIp ?? "0.0.0.0");
  } else if (p.op === OP.CALLCONFIRM) {
    const counter = p.counter && /^[0-9a-fA-F]{8}$/.test(p.counter) ? p.counter : "00000000";
    out.set(Uint8Array.fromHex(counter), OFFSET.COUNTER);
  }
  return out;
}

/**
 * The REPLY to an ASK: a byte copy of the ask's exact-length prefix with type REPLY (§4
 * "Replies are byte copies of the request").
 */
export function replyTo(ask: Uint8Array, op: SignalOp): Uint8Array {
  const out = ask.slice(0, SIGNAL_LENGTH[op]);
  out[OFFSET.TYPE] = MSG_TYPE.REPLY;
  return out;
}
