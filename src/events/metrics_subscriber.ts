/**
 * Call metrics from the event stream: `calls_total`, `calls_refused_total{reason}`,
 * `calls_ended_total{reason}`, `unlocks_total{result}`, `phones_left_total{why}`.
 *
 * @module
 */

import type { Metrics } from "../metrics.ts";
import type { GatewayEvent } from "./types.ts";

/** The event types {@linkcode countEvent} counts. */
export const COUNTED_EVENTS = [
  "call_started",
  "call_refused",
  "call_ended",
  "unlock_attempted",
] as const;

/** Bumps the counters an event stands for. */
export function countEvent(metrics: Metrics, e: GatewayEvent): void {
  switch (e.type) {
    case "call_started":
      return metrics.inc("calls_total");
    case "call_refused":
      return metrics.inc("calls_refused_total", { reason: e.reason });
    case "call_ended":
      return metrics.inc("calls_ended_total", { reason: e.reason });
    case "unlock_attempted":
      return metrics.inc("unlocks_total", { result: e.result });
  }
}
