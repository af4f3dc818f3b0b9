/**
 * The phone hub: connected phones, their rooms and presence (phone-protocol.md #1–#2).
 *
 * A phone (uid) is online for a room while it is logged in to that room and was heard (any
 * message) within the heartbeat timeout. A phone that falls silent is disconnected; a newer
 * connection of the same uid replaces the older one.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { CallNotice, PhoneNotifier } from "../call/ports.ts";
import type { EventSink } from "../events/bus.ts";
import type { PhoneSnapshot } from "../live/state.ts";
import { type AudioLaw, ERROR_TEXT, MAX_DND_MS } from "./messages.ts";
import { LogThrottle } from "../log_throttle.ts";
import { describeOrder } from "./trace.ts";

/** The part of a WebSocket the hub uses (a fake in tests). */
export interface PhoneSocket {
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** Bytes queued and not yet sent (back-pressure). */
  readonly bufferedAmount?: number;
}

/** A room a session is logged in to. */
export interface SessionRoom {
  readonly roomAddress: string;
  readonly community: string;
  /** The id of the token it logged in with (a rotated or removed binding ends the room). */
  readonly tokenId?: string;
}

/** One connected phone. */
export class PhoneSession {
  /** Unique per connection. */
  readonly id: number;
  readonly socket: PhoneSocket;
  /** Remote IP, for rate limits and logs. */
  readonly ip: string;
  uid: string | undefined;
  readonly rooms = new Map<string, SessionRoom>();
  /** Do not disturb: room key → until (wall epoch ms), set by the phone's `dnd` order. */
  readonly dnd = new Map<string, number>();
  lastHeard: number;
  /** Wall time (epoch ms) of the last login. */
  since = 0;
  closed = false;
  /** Serializes message handling so that replies keep the order of requests. */
  chain: Promise<void> = Promise.resolve();
  /** Messages handled later than at once (waiting in or on {@linkcode chain}). */
  pending = 0;
  /** The `heartbeat ok` text for {@linkcode heartbeatOkUid}, kept: a heartbeat builds no JSON. */
  heartbeatOk = "";
  heartbeatOkUid: string | undefined;

  /** Use {@linkcode PhoneHub.attach}. */
  constructor(id: number, socket: PhoneSocket, ip: string, now: number) {
    this.id = id;
    this.socket = socket;
    this.ip = ip;
    this.lastHeard = now;
  }
}

/** Options of {@linkcode PhoneHub}. */
export interface PhoneHubOptions {
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** Silence after which a phone is offline and disconnected. */
  heartbeatTimeoutMs: number;
  /** A phone left these rooms (closed, silent or replaced). */
  onLeft?: (uid: string, rooms: string[]) => void;
  /** A phone logged in to a room. */
  onJoined?: (uid: string, roomKey: string) => void;
  /** Domain events: `phone_joined`, `phone_left`, and `phone_trace` while someone listens. */
  events?: EventSink;
  /**
   * The G.711 law of a door (display address), when known: `call` and `talk begin` then carry
   * `audioLaw` (μ-law when this says nothing). Without it they carry no `audioLaw`.
   */
  audioLaw?: (doorAddress: string) => AudioLaw | undefined;
}

/** Close codes the hub uses. */
export const CLOSE_CODE = {
  unauthorized: 4001,
  replaced: 4002,
  heartbeat_timeout: 4003,
  /** The phone's last binding on this connection was removed or its token rotated. */
  binding_removed: 4004,
  shutdown: 1001,
} as const;

/** Connected phones by uid and room. */
export class PhoneHub implements PhoneNotifier {
  #o: PhoneHubOptions;
  #nextId = 1;
  #byUid = new Map<string, PhoneSession>();
  #sessions = new Set<PhoneSession>();
  #sweeper: TimerId | undefined;
  #stopped = false;
  #throttle: LogThrottle;
  /**
   * Do-not-disturb of phones that went offline ("uid\0roomKey" → until, wall ms): a sleeping
   * phone in DND is not woken by push. Bounded: the oldest are forgotten beyond 4096.
   */
  #offlineDnd = new Map<string, number>();
  /** When a phone of a room was last heard (wall ms), for "why is this room offline". */
  #roomHeard = new Map<string, number>();

  /** Starts the presence sweeper (every second). */
  constructor(options: PhoneHubOptions) {
    this.#o = options;
    this.#throttle = new LogThrottle(options.clock);
    options.metrics.gauge("phones_connected", () => this.#sessions.size, "Open phone connections");
    options.metrics.gauge("phones_logged_in", () => this.#byUid.size, "Phones logged in");
    this.#scheduleSweep();
  }

  #scheduleSweep(): void {
    if (this.#stopped) return;
    this.#sweeper = this.#o.clock.setTimeout(() => {
      this.sweep();
      this.#scheduleSweep();
    }, 1000);
  }

  /** Number of open connections. */
  get size(): number {
    return this.#sessions.size;
  }

  /** A new connection (not logged in yet). */
  attach(socket: PhoneSocket, ip = "unknown"): PhoneSession {
    const s = new PhoneSession(this.#nextId++, socket, ip, this.#o.clock.now());
    this.#sessions.add(s);
    return s;
  }

  /** Records that the phone was heard. */
  heard(s: PhoneSession): void {
    s.lastHeard = this.#o.clock.now();
  }

  /** Logs `s` in as `uid` for a room; replaces another connection of the same uid. */
  login(s: PhoneSession, uid: string, roomKey: string, room: SessionRoom): void {
    if (s.uid !== undefined && s.uid !== uid) {
      // A connection speaks for one uid; logging in as another is a new identity.
      this.#release(s, "relogin");
    }
    const old = this.#byUid.get(uid);
    if (old && old !== s) {
      for (const [k, r] of old.rooms) if (!s.rooms.has(k)) s.rooms.set(k, r);
      // Do-not-disturb is the phone's, not the connection's: it moves too.
      for (const [k, until] of old.dnd) if (!s.dnd.has(k)) s.dnd.set(k, until);
      old.rooms.clear();
      old.dnd.clear();
      old.uid = undefined;
      this.#drop(old, CLOSE_CODE.replaced, "replaced by a newer connection");
    }
    s.uid = uid;
    s.rooms.set(roomKey, room);
    s.since = this.#o.clock.wallNow();
    this.#byUid.set(uid, s);
    this.heard(s);
    this.#o.events?.emit({
      type: "phone_joined",
      at: this.#o.clock.wallNow(),
      uid,
      roomKey,
      ip: s.ip,
      transport: "ws",
    });
    // A phone in do-not-disturb is not rung, not even by a call already ringing.
    if (!this.#inDnd(s, roomKey)) this.#o.onJoined?.(uid, roomKey);
  }

  /**
   * Do not disturb `s` for a room it is logged in to until `until` (wall epoch ms; 0 or a time
   * past: off). Returns the time kept: cut to {@linkcode MAX_DND_MS} from now, 0 when off. While
   * it lasts the phone is not {@linkcode PhoneHub.online} for the room: not rung, and the room's
   * NS asks go unanswered when no other phone is online.
   */
  setDnd(s: PhoneSession, roomKey: string, until: number): number {
    const now = this.#o.clock.wallNow();
    if (!s.rooms.has(roomKey) || until <= now) {
      s.dnd.delete(roomKey);
      return 0;
    }
    const kept = Math.min(until, now + MAX_DND_MS);
    s.dnd.set(roomKey, kept);
    return kept;
  }

  /** True while `s` is in do-not-disturb for the room (an expired entry is forgotten). */
  #inDnd(s: PhoneSession, roomKey: string): boolean {
    const until = s.dnd.get(roomKey);
    if (until === undefined) return false;
    if (until > this.#o.clock.wallNow()) return true;
    s.dnd.delete(roomKey);
    return false;
  }

  /** The connection closed. */
  detach(s: PhoneSession): void {
    if (!this.#sessions.has(s)) return;
    s.closed = true;
    this.#sessions.delete(s);
    this.#release(s, "closed");
  }

  #release(s: PhoneSession, why: string): void {
    const uid = s.uid;
    if (uid === undefined) return;
    if (this.#byUid.get(uid) === s) this.#byUid.delete(uid);
    const rooms = [...s.rooms.keys()];
    this.#noteRooms(rooms, s);
    for (const room of rooms) {
      this.#offlineDnd.delete(`${uid}\0${room}`);
      const until = s.dnd.get(room);
      if (until === undefined) continue;
      if (this.#offlineDnd.size >= 4096) {
        this.#offlineDnd.delete(this.#offlineDnd.keys().next().value!);
      }
      this.#offlineDnd.set(`${uid}\0${room}`, until);
    }
    s.rooms.clear();
    s.dnd.clear();
    s.uid = undefined;
    if (rooms.length) {
      this.#o.events?.emit({ type: "phone_left", at: this.#o.clock.wallNow(), uid, rooms, why });
      this.#o.onLeft?.(uid, rooms);
    }
  }

  #drop(s: PhoneSession, code: number, reason: string): void {
    try {
      s.socket.close(code, reason);
    } catch {
      // already closing
    }
    this.detach(s);
  }

  /** Logged-in sessions with their uid (revalidation of bindings). */
  loggedIn(): { session: PhoneSession; uid: string }[] {
    return [...this.#byUid].map(([uid, session]) => ({ session, uid }));
  }

  /**
   * Ends `s`'s presence in one room (its binding was removed or rotated): the room is offline for
   * it at once and the call layer is told; the connection closes with
   * {@linkcode CLOSE_CODE.binding_removed} when it has no room left.
   */
  revokeRoom(s: PhoneSession, roomKey: string, why: string): void {
    const uid = s.uid;
    if (uid === undefined || !s.rooms.delete(roomKey)) return;
    s.dnd.delete(roomKey);
    this.#o.events?.emit({
      type: "phone_left",
      at: this.#o.clock.wallNow(),
      uid,
      rooms: [roomKey],
      why,
    });
    this.#o.onLeft?.(uid, [roomKey]);
    if (s.rooms.size === 0) this.#drop(s, CLOSE_CODE.binding_removed, why);
  }

  /** Disconnects phones not heard within the timeout. */
  sweep(): void {
    const now = this.#o.clock.now();
    // Deleting from a Set while iterating it is safe: no copy of every session each second.
    for (const s of this.#sessions) {
      if (now - s.lastHeard >= this.#o.heartbeatTimeoutMs) {
        this.#o.metrics.inc("phones_timed_out_total");
        if (s.uid !== undefined && this.#throttle.allow(s.uid)) {
          // Why a room went offline for the doors (NS unanswered): its phone stopped heartbeating.
          this.#o.logger.info("phone closed: no heartbeat", {
            uid: s.uid,
            rooms: [...s.rooms.keys()],
            ip: s.ip,
            lastHeard: new Date(this.#o.clock.wallNow() - (now - s.lastHeard)).toISOString(),
            timeoutS: this.#o.heartbeatTimeoutMs / 1000,
          });
        }
        this.#drop(s, CLOSE_CODE.heartbeat_timeout, "heartbeat timeout");
      }
    }
  }

  /** Is `uid` online for `roomKey` right now? */
  isOnline(uid: string, roomKey: string): boolean {
    const s = this.#byUid.get(uid);
    return !!s && s.rooms.has(roomKey) &&
      this.#o.clock.now() - s.lastHeard < this.#o.heartbeatTimeoutMs;
  }

  /** Uids online for a room: logged in, heard within the timeout, not in do-not-disturb. */
  online(roomKey: string): string[] {
    const now = this.#o.clock.now();
    const out: string[] = [];
    for (const [uid, s] of this.#byUid) {
      if (
        s.rooms.has(roomKey) && now - s.lastHeard < this.#o.heartbeatTimeoutMs &&
        !this.#inDnd(s, roomKey)
      ) out.push(uid);
    }
    return out;
  }

  /**
   * True while `uid` is in do-not-disturb for the room: its session's, or the one it had when it
   * went offline (a sleeping phone in DND is not woken by push).
   */
  inDnd(uid: string, roomKey: string): boolean {
    const s = this.#byUid.get(uid);
    if (s && s.rooms.has(roomKey)) return this.#inDnd(s, roomKey);
    const key = `${uid}\0${roomKey}`;
    const until = this.#offlineDnd.get(key);
    if (until === undefined) return false;
    if (until > this.#o.clock.wallNow()) return true;
    this.#offlineDnd.delete(key);
    return false;
  }

  /** True when a phone of the room is online (feeds the door's NS answers). */
  roomOnline(roomKey: string): boolean {
    return this.online(roomKey).length > 0;
  }

  #noteRooms(rooms: Iterable<string>, s: PhoneSession): void {
    const at = this.#o.clock.wallNow() - (this.#o.clock.now() - s.lastHeard);
    for (const r of rooms) {
      this.#roomHeard.delete(r);
      if (this.#roomHeard.size >= 65_536) {
        this.#roomHeard.delete(this.#roomHeard.keys().next().value!);
      }
      this.#roomHeard.set(r, at);
    }
  }

  /** When a phone of the room was last heard (wall ms): now if one is online. */
  lastHeardIn(roomKey: string): number | undefined {
    if (this.roomOnline(roomKey)) return this.#o.clock.wallNow();
    return this.#roomHeard.get(roomKey);
  }

  /** Phones logged in now (the live state). */
  snapshot(): PhoneSnapshot[] {
    const now = this.#o.clock.now();
    const wall = this.#o.clock.wallNow();
    return [...this.#byUid].map(([uid, s]) => ({
      uid,
      rooms: [...s.rooms.keys()],
      ip: s.ip,
      since: s.since,
      lastHeard: wall - (now - s.lastHeard),
      transport: "ws" as const,
    }));
  }

  /** The session of a uid. */
  sessionOf(uid: string): PhoneSession | undefined {
    return this.#byUid.get(uid);
  }

  /** Sends a call notice to a phone, in the seed's field order. */
  send(uid: string, roomKey: string, notice: CallNotice): boolean {
    const s = this.#byUid.get(uid);
    if (!s) return false;
    const room = s.rooms.get(roomKey);
    const { order, doorAddress, ...rest } = notice;
    const lawOf = this.#o.audioLaw;
    return this.sendTo(s, {
      order,
      doorAddress,
      roomAddress: room?.roomAddress ?? `Y${roomKey}`,
      uid,
      community: room?.community ?? "",
      ...rest,
      ...(notice.order === "error" ? { message: ERROR_TEXT[notice.code] } : {}),
      ...(lawOf && (order === "call" || order === "talk begin")
        ? { audioLaw: lawOf(doorAddress) ?? "ulaw" }
        : {}),
    });
  }

  /** Sends one JSON message to a session (`text`: its JSON when already known). */
  sendTo(s: PhoneSession, message: Record<string, unknown>, known?: string): boolean {
    if (s.closed) return false;
    try {
      const text = known ?? JSON.stringify(message);
      s.socket.send(text);
      if (this.#o.events?.wants("phone_trace")) {
        this.#o.events.emit({
          type: "phone_trace",
          at: this.#o.clock.wallNow(),
          direction: "out",
          peer: s.ip,
          uid: s.uid,
          summary: describeOrder(message),
          length: text.length,
        });
      }
      return true;
    } catch (e) {
      this.#o.logger.debug("phone send failed", { session: s.id, error: e });
      return false;
    }
  }

  /** Closes every connection and stops the sweeper. */
  close(): void {
    this.#stopped = true;
    if (this.#sweeper !== undefined) this.#o.clock.clearTimeout(this.#sweeper);
    for (const s of [...this.#sessions]) {
      this.#drop(s, CLOSE_CODE.shutdown, "gateway shutting down");
    }
  }
}
