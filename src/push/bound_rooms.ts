/**
 * Which phones of a room could be woken by push: the room's bindings, held in memory (the NS
 * answer is synchronous), reloaded when the binding store's change marker moves (polled, as the
 * binding guard does: KV `watch` does not see other processes' writes). A room is reachable by
 * push when it has a bound phone that is not connected, not in do-not-disturb, and can be woken:
 * any such phone when the webhook is configured (`anyWakes`), else one with a Web Push
 * subscription.
 *
 * Bounded by the binding store itself (every binding is held once).
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { SleepingPhones } from "./webhook.ts";

/** One binding as the directory needs it. */
export interface BoundPhone {
  readonly uid: string;
  readonly roomKey: string;
  readonly community: string;
  /** The room's address as bound (`Y00010108090`). */
  readonly roomAddress: string;
  /** True when this binding has a usable Web Push subscription. */
  readonly subscribed?: boolean;
}

/** Options of {@linkcode BoundRooms}. */
export interface BoundRoomsOptions {
  /** Every binding (the store's `list()`). */
  readonly list: () => Promise<readonly BoundPhone[]>;
  /** The store's change marker. */
  readonly version: () => Promise<string | null>;
  /** Is this phone connected for the room now (then it needs no push)? */
  readonly isConnected: (uid: string, roomKey: string) => boolean;
  /** Is this phone, connected or not, in do-not-disturb for the room (not to be woken)? */
  readonly inDnd?: (uid: string, roomKey: string) => boolean;
  /** Every sleeping phone can be woken (the webhook is configured). @default false */
  readonly anyWakes?: boolean;
  readonly clock: Clock;
  readonly logger: Logger;
  /** @default 2000 */
  readonly pollMs?: number;
}

interface Room {
  uids: string[];
  /** Uids with a Web Push subscription. */
  subscribed: Set<string>;
  community: string;
  roomAddress: string;
}

/** The rooms' bound phones, in memory. */
export class BoundRooms implements SleepingPhones {
  #o: BoundRoomsOptions;
  #rooms = new Map<string, Room>();
  #version: string | null | undefined = undefined;
  #timer: TimerId | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  /** Creates the directory, empty until {@linkcode BoundRooms.refresh} or `start`. */
  constructor(options: BoundRoomsOptions) {
    this.#o = options;
  }

  /** Loads the bindings now (and remembers the marker). Never throws. */
  async refresh(): Promise<void> {
    try {
      const version = await this.#o.version();
      if (version === this.#version && this.#version !== undefined) return;
      const rooms = new Map<string, Room>();
      for (const b of await this.#o.list()) {
        const room = rooms.get(b.roomKey) ??
          { uids: [], subscribed: new Set(), community: b.community, roomAddress: b.roomAddress };
        room.uids.push(b.uid);
        if (b.subscribed) room.subscribed.add(b.uid);
        if (!room.community) room.community = b.community;
        rooms.set(b.roomKey, room);
      }
      this.#rooms = rooms;
      this.#version = version;
    } catch (e) {
      this.#o.logger.warn("Cannot read the bindings for push: keeping the last ones", { error: e });
    }
  }

  /** Loads the bindings, then reloads them whenever the marker changes. */
  async start(): Promise<void> {
    await this.refresh();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#running = this.refresh().finally(() => this.#schedule());
    }, this.#o.pollMs ?? 2000);
  }

  /** The room's bound phones that are not connected, and its community. */
  sleepersOf(roomKey: string): { uids: string[]; community: string; roomAddress?: string } {
    const room = this.#rooms.get(roomKey);
    if (!room) return { uids: [], community: "" };
    return {
      uids: room.uids.filter((u) => !this.#o.isConnected(u, roomKey)),
      community: room.community,
      roomAddress: room.roomAddress,
    };
  }

  /** The room's bound phones not connected and not in do-not-disturb: the ones to wake. */
  toWake(roomKey: string): { uids: string[]; community: string; roomAddress?: string } {
    const s = this.sleepersOf(roomKey);
    return { ...s, uids: s.uids.filter((u) => !this.#o.inDnd?.(u, roomKey)) };
  }

  /**
   * True when push may wake a phone of the room: one bound, not connected, not in DND, and
   * wakeable (the webhook, or its Web Push subscription).
   */
  canWake(roomKey: string): boolean {
    const room = this.#rooms.get(roomKey);
    if (!room) return false;
    return this.toWake(roomKey).uids.some((u) => this.#o.anyWakes || room.subscribed.has(u));
  }

  /** Stops polling. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    await this.#running;
  }
}
