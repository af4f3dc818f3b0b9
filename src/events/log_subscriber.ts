/**
 * Call logs from the event stream: one line per call start, refusal, end and (at debug) phase
 * change and phone departure, with the call id on each.
 *
 * @module
 */

import type { Logger } from "../log.ts";
import type { GatewayEvent } from "./types.ts";

/** The event types {@linkcode logEvent} writes. */
export const LOGGED_EVENTS = [
  "call_started",
  "call_refused",
  "call_phase",
  "call_ended",
  "phone_left",
] as const;

/** Writes the log line an event stands for. */
export function logEvent(logger: Logger, e: GatewayEvent): void {
  switch (e.type) {
    case "call_started":
      return logger.info("door calls room", {
        callId: e.callId,
        door: e.doorAddress,
        doorIp: e.doorIp,
        room: e.roomKey,
      });
    case "call_refused":
      return logger.info(e.reason === "busy" ? "room busy: LINEUSE" : "not a room: LINEUSE", {
        door: e.doorAddress,
        doorIp: e.doorIp,
        room: e.roomAddress,
      });
    case "call_phase":
      if (!logger.enabled("debug")) return;
      return logger.debug("call phase", {
        callId: e.callId,
        from: e.from,
        to: e.to,
        event: e.cause,
      });
    case "call_ended":
      if (e.reason === "door_lost") {
        logger.warn("door lost: no CALLCONFIRM reply", { callId: e.callId });
      }
      return logger.info("call ended", { callId: e.callId, reason: e.reason });
    case "phone_left":
      if (!logger.enabled("debug")) return;
      return logger.debug("phone left", { uid: e.uid, rooms: e.rooms, why: e.why });
  }
}
