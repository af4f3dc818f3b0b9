/**
 * One readable line per door datagram, for the live trace (like a SIP trace tool):
 * `ASK CALL M00010100 10.0.0.5 → S00010108090 10.0.0.2`. Pure; never on the media path.
 *
 * @module
 */

import {
  decodePacket,
  displayAddress,
  MSG_TYPE,
  OP_NAME,
  PacketDecodeError,
} from "../protocol/mod.ts";

/** Describes a door datagram in one line (`?` and the reason when it does not decode). */
export function describePacket(bytes: Uint8Array, magic?: string): string {
  const p = decodePacket(bytes, magic ? { magic } : {});
  if (p instanceof PacketDecodeError) return `? ${p.code}`;
  switch (p.kind) {
    case "ns_ask":
      return `NS ASK ${displayAddress(p.asker)} ${p.askerIp} asks for ${displayAddress(p.target)}`;
    case "ns_reply":
      return `NS REPLY to ${displayAddress(p.asker)}: ${
        p.entries.map((e) => `${displayAddress(e.address)}=${e.ip}`).join(", ") || "(none)"
      }`;
    case "media":
      return `MEDIA ${OP_NAME[p.op] ?? p.op}`;
    case "call":
      return `${p.type === MSG_TYPE.REPLY ? "REPLY" : "ASK"} ${OP_NAME[p.op] ?? p.op} ${
        displayAddress(p.caller)
      } ${p.callerIp} → ${displayAddress(p.callee)} ${p.calleeIp}`;
  }
}
