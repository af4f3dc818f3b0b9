/**
 * Doors heard, from the event stream (`door_seen`, `door_media`): address, IP, first and last
 * heard, header form. In memory and bounded; the oldest entry goes first.
 *
 * @module
 */

import type { GatewayEvent } from "../events/types.ts";
import type { DoorSnapshot } from "./state.ts";

/** Doors kept at most. */
export const MAX_DOORS = 4096;

interface Entry {
  ip: string;
  firstHeard: number;
  lastHeard: number;
  headerForm: 77 | 86 | undefined;
}

/** The door inventory of the live state. */
export class DoorInventory {
  #doors = new Map<string, Entry>();

  /** Takes `door_seen` and `door_media` events. */
  onEvent(e: GatewayEvent): void {
    if (e.type !== "door_seen" && e.type !== "door_media") return;
    let d = this.#doors.get(e.address);
    if (!d) {
      if (this.#doors.size >= MAX_DOORS) this.#doors.delete(this.#doors.keys().next().value!);
      d = { ip: e.ip, firstHeard: e.at, lastHeard: e.at, headerForm: undefined };
      this.#doors.set(e.address, d);
    }
    d.ip = e.ip;
    d.lastHeard = Math.max(d.lastHeard, e.at);
    if (e.type === "door_media") d.headerForm = e.headerForm;
  }

  /** Every door heard, by address. */
  list(): DoorSnapshot[] {
    return [...this.#doors].map(([address, d]) => ({
      address,
      ip: d.ip,
      mode: "seen" as const,
      firstHeard: d.firstHeard,
      lastHeard: d.lastHeard,
      headerForm: d.headerForm,
      law: undefined,
      needsTalkForUnlock: false,
    })).sort((a, b) => a.address.localeCompare(b.address));
  }
}
