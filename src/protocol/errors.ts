/**
 * The one error type of the codec.
 *
 * @module
 */

/** Why a byte string is not a packet. */
export type DecodeErrorCode =
  | "truncated"
  | "bad_magic"
  | "unknown_command"
  | "unknown_type"
  | "unknown_operation"
  | "bad_length"
  | "bad_address";

/** A byte string that is not a valid packet: where and why. */
export class PacketDecodeError extends SyntaxError {
  /** Byte offset where decoding stopped. */
  readonly offset: number;
  /** Machine-readable reason, used as a counter label. */
  readonly code: DecodeErrorCode;
  /** The packet kind being decoded, when known. */
  readonly packetType: string | undefined;

  /** Creates the error; `message` should read "Cannot decode X: detail". */
  constructor(code: DecodeErrorCode, offset: number, message: string, packetType?: string) {
    // A decode error is data about a datagram, not a bug: skip the stack capture, which is
    // most of its cost when junk arrives at thousands a second.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.name = "PacketDecodeError";
    this.code = code;
    this.offset = offset;
    this.packetType = packetType;
  }
}
