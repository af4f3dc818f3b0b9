/**
 * A datagram receive loop that never dies of a bad datagram: each one goes to `handle`, whose
 * exceptions are counted by the caller's own logic and logged here at debug.
 *
 * @module
 */

import type { Logger } from "../log.ts";
import type { DatagramPort, Endpoint } from "./port.ts";

/** Receives until the port closes; resolves then. */
export async function receiveLoop(
  port: DatagramPort,
  handle: (bytes: Uint8Array, from: Endpoint) => void,
  logger: Logger,
): Promise<void> {
  for (;;) {
    let msg: [Uint8Array, Endpoint];
    try {
      msg = await port.receive();
    } catch (e) {
      if (port.closed) return;
      // A transient error (e.g. ICMP port unreachable surfacing on Linux): keep receiving.
      logger.debug("datagram receive failed", { error: e });
      continue;
    }
    try {
      handle(msg[0], msg[1]);
    } catch (e) {
      logger.debug("datagram handler failed", { error: e });
    } finally {
      port.release(msg[0]);
    }
  }
}
