/**
 * The datagram port: the one interface the gateway's UDP logic talks to. Adapters: the Deno UDP
 * socket (`udp.ts`) and, for tests, the in-memory network (`src/testing/memory_network.ts`).
 *
 * @module
 */

/** A UDP peer. */
export interface Endpoint {
  readonly hostname: string;
  readonly port: number;
}

/** A bound UDP socket. */
export interface DatagramPort {
  /** The bound address. */
  readonly local: Endpoint;
  /**
   * Sends without waiting; a failure is counted in {@linkcode DatagramPort.sendErrors}, never
   * thrown. The bytes must not change until the next turn of the event loop.
   */
  send(data: Uint8Array, to: Endpoint): void;
  /** The next datagram; rejects once the port is closed. */
  receive(): Promise<[Uint8Array, Endpoint]>;
  /**
   * Hands a received datagram's buffer back (pooled ports reuse it once every send of those
   * bytes has settled). Call it when done with the bytes; a no-op for unpooled ports.
   */
  release(data: Uint8Array): void;
  /** Closes the port; pending receives reject. Idempotent. */
  close(): void;
  /** Sends that failed (unreachable, closed, …). */
  readonly sendErrors: number;
  /** True once closed. */
  readonly closed: boolean;
}

/** `"host:port"`: the key used for endpoints in maps. */
export function endpointKey(e: Endpoint): string {
  return `${e.hostname}:${e.port}`;
}
