/**
 * The door protocol codec: bytes ↔ typed packets. Pure: no I/O, no `Deno`.
 *
 * @module
 */

export * from "./constants.ts";
export * from "./types.ts";
export * from "./errors.ts";
export * from "./address.ts";
export { decodePacket, encodePacket } from "./codec.ts";
export { encodeNsAsk, encodeNsReply, nsReplyFor } from "./ns.ts";
export { type CallInit, encodeCall, replyTo } from "./call.ts";
export { encodeMedia, type MediaInit, mediaPayloadOffset, patchMediaHeader } from "./media.ts";
export { hasMagic, magicBytes } from "./prefix.ts";
