/**
 * The live trace's lines: door datagrams (`door_trace`) and phone orders (`phone_trace`) as they
 * happen, one readable line each, and the filters by door and by room.
 *
 * @module
 */

import type { EventOf } from "../events/types.ts";

/** One trace line as the console receives it. */
export interface TraceLine {
  /** Epoch ms. */
  readonly at: number;
  readonly kind: "door" | "phone";
  readonly direction: "in" | "out";
  /** `ip:port` of a door, the IP of a phone. */
  readonly peer: string;
  readonly uid?: string;
  readonly summary: string;
  readonly length: number;
}

/** A trace event as a line. */
export function traceLine(e: EventOf<"door_trace" | "phone_trace">): TraceLine {
  return {
    at: e.at,
    kind: e.type === "door_trace" ? "door" : "phone",
    direction: e.direction,
    peer: e.peer,
    ...(e.type === "phone_trace" && e.uid !== undefined ? { uid: e.uid } : {}),
    summary: e.summary,
    length: e.length,
  };
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, "0");
}

/** The line as text: `12:00:01.250 ← door 10.0.0.5:8302  ASK CALL …  (62 B)` (UTC). */
export function formatTraceLine(l: TraceLine): string {
  const d = new Date(l.at);
  const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${
    pad(d.getUTCMilliseconds(), 3)
  }`;
  const arrow = l.direction === "in" ? "←" : "→";
  return `${time} ${arrow} ${l.kind.padEnd(5)} ${l.peer.padEnd(21)} ${l.summary}  (${l.length} B)`;
}

/** What a trace stream shows. */
export interface TraceFilter {
  /** A door address: its datagrams (by address in the line, or its IP) and its calls' orders. */
  readonly door?: string;
  /** A room address or key: lines naming its 11 digits. */
  readonly room?: string;
}

/**
 * True when the line passes the filter. `doorIps` are the IPs the door speaks from (from the
 * door inventory); a phone order passes a door filter when it names the door.
 */
export function traceMatches(
  l: TraceLine,
  filter: TraceFilter,
  doorIps: readonly string[] = [],
): boolean {
  if (filter.door) {
    const named = l.summary.includes(filter.door);
    const fromIt = l.kind === "door" && doorIps.some((ip) => l.peer.split(":")[0] === ip);
    if (!named && !fromIt) return false;
  }
  if (filter.room) {
    const digits = /\d{11}$/.exec(filter.room)?.[0] ?? filter.room;
    if (!l.summary.includes(digits)) return false;
  }
  return true;
}
