/**
 * NSORDER 154: name resolution by multicast (door-protocol.md §3).
 *
 * ```
 * ask (56):   magic(6) 154 type | asker(20) @8 | askerIp(4) @28 | target(20) @32 | 0.0.0.0 @52
 * reply:      bytes 0–31 as the ask, type REPLY | N @32 | N × (address(20) ip(4))   = 33 + 24·N
 * ```
 *
 * @module
 */

import { COMMAND, LENGTH, MSG_TYPE, OFFSET, TYPE_MASK } from "./constants.ts";
import { PacketDecodeError } from "./errors.ts";
import { readIp, writeAddress, writeIp } from "./address.ts";
import { address, need } from "./reader.ts";
import { writePrefix } from "./prefix.ts";
import type { NsAsk, NsEntry, NsReply } from "./types.ts";
import { DEFAULT_MAGIC } from "./constants.ts";

/** Decodes an NS packet whose prefix was already checked. */
export function decodeNs(bytes: Uint8Array): NsAsk | NsReply | PacketDecodeError {
  const type = bytes[OFFSET.TYPE]! & TYPE_MASK;
  const flags = bytes[OFFSET.TYPE]! & ~TYPE_MASK;
  if (type === MSG_TYPE.ASK) {
    const short = need(bytes, LENGTH.NS_ASK, "ns_ask");
    if (short) return short;
    const asker = address(bytes, OFFSET.NS_ASKER, "ns_ask");
    if (typeof asker !== "string") return asker;
    const target = address(bytes, OFFSET.NS_TARGET, "ns_ask");
    if (typeof target !== "string") return target;
    return {
      kind: "ns_ask",
      flags,
      asker,
      askerIp: readIp(bytes, OFFSET.NS_ASKER_IP),
      target,
      targetIp: readIp(bytes, OFFSET.NS_TARGET_IP),
    };
  }
  if (type === MSG_TYPE.REPLY) {
    const short = need(bytes, LENGTH.NS_REPLY_BASE, "ns_reply");
    if (short) return short;
    const asker = address(bytes, OFFSET.NS_ASKER, "ns_reply");
    if (typeof asker !== "string") return asker;
    const count = bytes[OFFSET.NS_COUNT]!;
    const full = need(bytes, LENGTH.NS_REPLY_BASE + LENGTH.NS_ENTRY * count, "ns_reply");
    if (full) return full;
    const entries: NsEntry[] = [];
    for (let i = 0; i < count; i++) {
      const at = LENGTH.NS_REPLY_BASE + LENGTH.NS_ENTRY * i;
      const a = address(bytes, at, "ns_reply");
      if (typeof a !== "string") return a;
      entries.push({ address: a, ip: readIp(bytes, at + 20) });
    }
    return { kind: "ns_reply", flags, asker, askerIp: readIp(bytes, OFFSET.NS_ASKER_IP), entries };
  }
  return new PacketDecodeError("unknown_type", OFFSET.TYPE, `Cannot decode ns: type ${type}`, "ns");
}

/** Encodes an NS ask: exactly 56 bytes. */
export function encodeNsAsk(p: Omit<NsAsk, "kind" | "flags">, magic = DEFAULT_MAGIC): Uint8Array {
  const out = new Uint8Array(LENGTH.NS_ASK);
  writePrefix(out, magic, COMMAND.NSORDER, MSG_TYPE.ASK);
  writeAddress(out, OFFSET.NS_ASKER, p.asker);
  writeIp(out, OFFSET.NS_ASKER_IP, p.askerIp);
  writeAddress(out, OFFSET.NS_TARGET, p.target);
  writeIp(out, OFFSET.NS_TARGET_IP, p.targetIp);
  return out;
}

/** Encodes an NS reply: exactly 33 + 24·N bytes. */
export function encodeNsReply(
  p: Omit<NsReply, "kind" | "flags">,
  magic = DEFAULT_MAGIC,
): Uint8Array {
  const out = new Uint8Array(LENGTH.NS_REPLY_BASE + LENGTH.NS_ENTRY * p.entries.length);
  writePrefix(out, magic, COMMAND.NSORDER, MSG_TYPE.REPLY);
  writeAddress(out, OFFSET.NS_ASKER, p.asker);
  writeIp(out, OFFSET.NS_ASKER_IP, p.askerIp);
  out[OFFSET.NS_COUNT] = p.entries.length;
  p.entries.forEach((e, i) => {
    const at = LENGTH.NS_REPLY_BASE + LENGTH.NS_ENTRY * i;
    writeAddress(out, at, e.address);
    writeIp(out, at + 20, e.ip);
  });
  return out;
}

/**
 * The reply to an NS ask, built the way the spec asks: bytes 0–31 copied from the ask with type
 * REPLY, then one entry. Copying keeps the asker's field exactly as the door wrote it.
 */
export function nsReplyFor(ask: Uint8Array, entry: NsEntry): Uint8Array {
  const out = new Uint8Array(LENGTH.NS_REPLY_BASE + LENGTH.NS_ENTRY);
  out.set(ask.subarray(0, 32), 0);
  out[OFFSET.TYPE] = MSG_TYPE.REPLY;
  out[OFFSET.NS_COUNT] = 1;
  writeAddress(out, LENGTH.NS_REPLY_BASE, entry.address);
  writeIp(out, LENGTH.NS_REPLY_BASE + 20, entry.ip);
  return out;
}
