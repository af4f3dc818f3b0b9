/**
 * Which rooms have a phone online on which gateway of the community (`--cluster`). Each gateway
 * publishes its own rooms and their online uids on `presence.<id>` at every change (at most
 * every {@linkcode DEBOUNCE_MS}) and every {@linkcode ANNOUNCE_MS}; every gateway keeps the
 * others' last announcement until it is {@linkcode EXPIRE_MS} old, or at once forgets them all
 * when the hub becomes unreachable (a cut link leaves each gateway with exactly its own phones).
 * Plain NATS subjects: they cross the leaf link, no JetStream needed.
 *
 * @module
 */

import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Clock, TimerId } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { ClusterLink } from "./link.ts";
import { PRESENCE_ALL, presenceSubject } from "./subjects.ts";

/** Announcements at least this often. */
export const ANNOUNCE_MS = 2000;
/** A gateway silent this long is forgotten. */
export const EXPIRE_MS = 6500;
/** Changes are gathered this long before they are announced. */
export const DEBOUNCE_MS = 50;
/** Rooms per announcement at most (the rest are left out and logged once). */
export const MAX_ROOMS = 5000;

/** One gateway's announcement. */
interface Announcement {
  readonly gateway: string;
  /** Room key → uids online. */
  readonly rooms: Record<string, string[]>;
}

/** Options of {@linkcode Presence}. */
export interface PresenceOptions {
  readonly link: ClusterLink;
  /** This gateway's rooms and their online uids now. */
  readonly local: () => Map<string, string[]>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** A remote phone came online in a room (it may join a ringing call). */
  readonly onJoined?: (uid: string, roomKey: string) => void;
  /** Remote phones are gone from these rooms (they leave calls). */
  readonly onLeft?: (uid: string, roomKeys: string[]) => void;
  /** A gateway fell silent for {@linkcode EXPIRE_MS} (the calls it originated are over). */
  readonly onGone?: (gateway: string) => void;
}

/** The community's presence, as seen by this gateway. */
export class Presence {
  readonly #o: PresenceOptions;
  /** Gateway → its announcement and when it came (monotonic ms). */
  readonly #remote = new Map<string, { rooms: Map<string, string[]>; at: number }>();
  #sub: Subscription | undefined;
  #timer: TimerId | undefined;
  #debounce: TimerId | undefined;
  #off: (() => void) | undefined;
  #closed = false;
  #loop: Promise<void> = Promise.resolve();

  /** Creates the presence; {@linkcode Presence.start} begins. */
  constructor(options: PresenceOptions) {
    this.#o = options;
  }

  /** Subscribes and announces (again on every reconnection); forgets all on a cut. */
  start(): void {
    this.#off = this.#o.link.onChange((c) => {
      if (!c.up) this.#forgetAll();
      else if (c.part === "leaf") this.#subscribe();
      else this.changed();
    });
    if (this.#o.link.leafUp) this.#subscribe();
    this.#tick();
  }

  #subscribe(): void {
    const nc = this.#o.link.nc;
    if (!nc || this.#closed) return;
    this.#sub?.unsubscribe();
    const sub = nc.subscribe(PRESENCE_ALL);
    this.#sub = sub;
    this.#loop = this.#receive(sub);
    this.changed();
  }

  async #receive(sub: Subscription): Promise<void> {
    for await (const m of sub) {
      try {
        const a = m.json<Announcement>();
        if (a.gateway === this.#o.link.gatewayId || typeof a.rooms !== "object") continue;
        this.#apply(a);
      } catch {
        // not an announcement
      }
    }
  }

  #apply(a: Announcement): void {
    if (!this.#o.link.hubUp) return; // a cut link: only our own phones count
    const rooms = new Map<string, string[]>();
    for (const [room, uids] of Object.entries(a.rooms)) {
      if (Array.isArray(uids)) rooms.set(room, uids.map(String));
    }
    const before = this.#remote.get(a.gateway)?.rooms ?? new Map<string, string[]>();
    this.#remote.set(a.gateway, { rooms, at: this.#o.clock.now() });
    this.#diff(before, rooms);
  }

  /** Reports who came and who went between two views of one gateway. */
  #diff(before: Map<string, string[]>, after: Map<string, string[]>): void {
    for (const [room, uids] of after) {
      const old = before.get(room) ?? [];
      for (const u of uids) if (!old.includes(u)) this.#o.onJoined?.(u, room);
    }
    for (const [room, uids] of before) {
      const now = after.get(room) ?? [];
      for (const u of uids) {
        if (!now.includes(u) && !this.online(room).includes(u)) this.#o.onLeft?.(u, [room]);
      }
    }
  }

  #forgetAll(): void {
    const all = [...this.#remote.values()];
    this.#remote.clear();
    for (const g of all) this.#diff(g.rooms, new Map());
  }

  #tick(): void {
    if (this.#closed) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#announce();
      const now = this.#o.clock.now();
      for (const [gw, g] of [...this.#remote]) {
        if (now - g.at > EXPIRE_MS) {
          this.#remote.delete(gw);
          this.#diff(g.rooms, new Map());
          try {
            this.#o.onGone?.(gw);
          } catch (e) {
            this.#o.logger.error("cluster: presence listener failed", { error: e });
          }
        }
      }
      this.#tick();
    }, ANNOUNCE_MS);
  }

  /** The local phones changed: announce soon. */
  changed(): void {
    if (this.#debounce !== undefined || this.#closed) return;
    this.#debounce = this.#o.clock.setTimeout(() => {
      this.#debounce = undefined;
      this.#announce();
    }, DEBOUNCE_MS);
  }

  #announce(): void {
    const nc: NatsConnection | undefined = this.#o.link.nc;
    if (!nc) return;
    const rooms: Record<string, string[]> = {};
    let n = 0;
    for (const [room, uids] of this.#o.local()) {
      if (uids.length === 0) continue;
      if (++n > MAX_ROOMS) break;
      rooms[room] = uids;
    }
    try {
      nc.publish(
        presenceSubject(this.#o.link.gatewayId),
        JSON.stringify({ gateway: this.#o.link.gatewayId, rooms } satisfies Announcement),
      );
    } catch (e) {
      this.#o.logger.debug("cluster: presence not announced", { error: e });
    }
  }

  /** Uids of `roomKey` online on other gateways. */
  online(roomKey: string): string[] {
    const out: string[] = [];
    for (const g of this.#remote.values()) {
      for (const u of g.rooms.get(roomKey) ?? []) if (!out.includes(u)) out.push(u);
    }
    return out;
  }

  /** The gateway that has `uid` online in `roomKey` (the first one), if any. */
  gatewayOf(uid: string, roomKey: string): string | undefined {
    for (const [gw, g] of this.#remote) if (g.rooms.get(roomKey)?.includes(uid)) return gw;
    return undefined;
  }

  /** Rooms with a phone online on another gateway. */
  rooms(): Set<string> {
    const out = new Set<string>();
    for (const g of this.#remote.values()) for (const r of g.rooms.keys()) out.add(r);
    return out;
  }

  /** Forgets a remote phone (a notice to it found nobody): it leaves the room's call. */
  lost(uid: string, roomKey: string): void {
    for (const g of this.#remote.values()) {
      const uids = g.rooms.get(roomKey);
      if (!uids?.includes(uid)) continue;
      const rest = uids.filter((u) => u !== uid);
      if (rest.length) g.rooms.set(roomKey, rest);
      else g.rooms.delete(roomKey);
    }
    this.#o.onLeft?.(uid, [roomKey]);
  }

  /** Stops. */
  async stop(): Promise<void> {
    this.#closed = true;
    this.#off?.();
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    if (this.#debounce !== undefined) this.#o.clock.clearTimeout(this.#debounce);
    this.#sub?.unsubscribe();
    await this.#loop;
  }
}
