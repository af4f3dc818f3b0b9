/**
 * The door registry: which door address speaks from which IP, and what the gateway knows about
 * each door (issue: a packet claiming a known door's address from another IP is rejected; an
 * installer can commission and replace doors).
 *
 * A door is configured (`--door-allowlist`, entries `ADDR` or `ADDR=IP`), learned, or pinned by
 * the installer (`door pin`). A door is learned only from a call that completed the handshake
 * (the gateway answered CALLANSWER and the door replied to a CALLCONFIRM from its IP:
 * {@linkcode DoorRegistry.learn}), never from an NS ask or any other single packet: a spoofed
 * packet can neither create an entry nor move one. {@linkcode DoorRegistry.admit} only says
 * whether a packet may be served (`known`, `unknown` but learnable, `refused`). Modes:
 * - `learned`: the IP of its first answered call. A learned door that calls from a new IP (DHCP,
 *   a replaced unit) is re-learned once its old IP was silent for `relearnAfterMs` (0: never)
 *   and the new IP completed a call, logged at `warn` with both IPs.
 * - `pinned`: a fixed `ADDR=IP` (from the allowlist or `door pin`); it never moves. Only
 *   `door forget` releases it.
 *
 * A known address claimed from a second IP while the door is pinned or its IP is active is an
 * alarm: refused, counted (`door_address_conflicts_total`), logged at `warn` and emitted as a
 * `door_conflict` event (both throttled per address and IP). A building whose doors are all
 * pinned (`door pin --all`) learns no new address: the safe mode. A door forgotten while the
 * gateway runs (`door forget`, a replaced unit) may be learned again.
 *
 * The inventory (IP, mode, first/last heard, header form, audio law, whether unlocking needs a
 * talk first) is kept per door, bounded to `maxDoors` (new doors beyond are refused and
 * counted), and written through a {@linkcode DoorPersistence} (the KV `DoorStore`): on learn and
 * on every change at once, `lastHeard` at most once per `heardWriteMs` per door. Every write is
 * checked against the store's change version; a change from another process (the CLI's
 * `door forget` / `door pin`) makes the write fail, and the registry reloads. {@linkcode
 * DoorRegistry.start} also polls that version, so such a change applies within `pollMs`.
 *
 * An allowlisted `ADDR=IP` is stored as pinned once heard: taken off the allowlist, it stays
 * pinned until `door forget`. With an allowlist, stored doors it does not name are ignored.
 *
 * Two time scales: silence (relearning) on the monotonic {@linkcode Clock}; `firstHeard` and
 * `lastHeard` of the inventory in wall-clock epoch milliseconds (they outlive the process).
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import { type Logger, nullLogger } from "../log.ts";
import type { Counter, Metrics } from "../metrics.ts";
import { canonicalAddress, displayAddress, parseIp } from "../protocol/address.ts";
import { LogThrottle } from "../log_throttle.ts";
import type { EventSink } from "../events/bus.ts";

/**
 * What the registry says of a door address speaking from an IP ({@linkcode DoorRegistry.admit}):
 * held at that IP, learnable from a call that completes the handshake, or refused.
 */
export type DoorStanding = "known" | "unknown" | "refused";

/** How a door's IP is held: re-learnable, or fixed. */
export type DoorMode = "learned" | "pinned";

/** The two media header forms a door may use (door-protocol.md §5): 77 or 86 bytes. */
export type HeaderForm = 77 | 86;

/** The G.711 law of a door's audio. */
export type AudioLaw = "alaw" | "ulaw";

/** One door as it is stored. Times are wall-clock epoch milliseconds. */
export interface DoorRecord {
  /** Display form, e.g. `M00010100`, `S00010108090`. */
  readonly address: string;
  /** The IPv4 the door speaks from. */
  readonly ip: string;
  /** `pinned` by `door pin` or an allowlisted `ADDR=IP`; such a door never moves. */
  readonly mode: DoorMode;
  /** When it was first heard, as far as the store knows. */
  readonly firstHeard?: number;
  /** When it was last heard (written at most once per `heardWriteMs`). */
  readonly lastHeard?: number;
  /** Its media header form, once seen. */
  readonly headerForm?: HeaderForm;
  /** Its audio law, once known. */
  readonly law?: AudioLaw;
  /** True once the door was seen to refuse an unlock outside talk. */
  readonly needsTalkForUnlock: boolean;
}

/** One door of {@linkcode DoorRegistry.list}: its record as the running gateway holds it. */
export interface DoorInfo extends Omit<DoorRecord, "ip"> {
  /** `undefined` for an allowlisted `ADDR` that has not spoken yet. */
  readonly ip: string | undefined;
  /** True when `--door-allowlist` names it. */
  readonly allowlisted: boolean;
}

/** The store's view of the doors: its records and the change version they were read at. */
export interface DoorSnapshot {
  /** The stored doors. */
  readonly doors: readonly DoorRecord[];
  /** Versionstamp of the change version (`null` when never changed). */
  readonly version: string | null;
  /** Stored records that could not be read, skipped. */
  readonly skipped?: number;
}

/**
 * Where the registry keeps its doors (the KV `DoorStore`). `save` and `delete` commit only
 * while the change version is still `version`, and resolve to false otherwise.
 */
export interface DoorPersistence {
  /** Every stored door (bounded) and the change version. */
  load(): Promise<DoorSnapshot>;
  /** The current change version. */
  version(): Promise<string | null>;
  /** Writes one door unless the version moved. */
  save(record: DoorRecord, version: string | null): Promise<boolean>;
  /** Deletes one door (by any address form) unless the version moved. */
  delete(address: string, version: string | null): Promise<boolean>;
}

/** Default of {@linkcode DoorRegistryOptions.relearnAfterMs}. */
export const DEFAULT_RELEARN_AFTER_MS = 60_000;
/** Default of {@linkcode DoorRegistryOptions.maxDoors}. */
export const MAX_DOORS = 4096;
/** Default of {@linkcode DoorRegistryOptions.heardWriteMs}. */
export const HEARD_WRITE_MS = 60_000;
/** Default of {@linkcode DoorRegistryOptions.pollMs}. */
export const POLL_MS = 1000;

/** Options of {@linkcode DoorRegistry}. */
export interface DoorRegistryOptions {
  /** Monotonic time (silence) and the poll timer. */
  clock: Clock;
  /** Wall-clock epoch ms for `firstHeard` / `lastHeard`. @default {Date.now} */
  wallClock?: () => number;
  /** Logs learned (info), re-learned (warn), a full registry (warn), store failures (error). */
  logger?: Logger;
  /** Counters `doors_relearned_total`, `doors_refused_total`, gauge `doors_known`. */
  metrics?: Metrics;
  /** Entries `ADDR` or `ADDR=IP`; when not empty, only these doors are admitted. */
  allowlist?: readonly string[];
  /** Silence of a learned door's IP after which another IP may take it over; 0: never. @default {60_000} */
  relearnAfterMs?: number;
  /** Doors held at most; new ones beyond are refused and counted. @default {4096} */
  maxDoors?: number;
  /** Where doors persist; without it they live in memory only. */
  store?: DoorPersistence;
  /** Least interval between two `lastHeard` writes of one door. @default {60_000} */
  heardWriteMs?: number;
  /** Interval at which {@linkcode DoorRegistry.start} polls the store's change version. @default {1000} */
  pollMs?: number;
  /** Domain events: `door_conflict` (throttled like its log line). */
  events?: EventSink;
}

/** Where a door's pin comes from: none (learned), the installer (stored), the allowlist. */
type Pin = "none" | "store" | "config";

interface Door {
  /** Canonical address (the map key). */
  readonly key: string;
  ip: string | undefined;
  pin: Pin;
  allowlisted: boolean;
  /** The allowlist's fixed IP, if any. */
  configIp: string | undefined;
  /** Monotonic time the door was last heard from its IP (-Infinity: never). */
  heardAt: number;
  firstHeard: number | undefined;
  lastHeard: number | undefined;
  headerForm: HeaderForm | undefined;
  law: AudioLaw | undefined;
  needsTalkForUnlock: boolean;
  /** True once the store holds it (loaded or saved): absent from a reload means forgotten. */
  stored: boolean;
  /** True while a move or pin of this process is not yet stored (a reload keeps it). */
  ipPending: boolean;
  /** Monotonic time of the last write with a new `lastHeard`. */
  heardWrittenAt: number;
}

/** Media notes of not yet learned doors remembered at most. */
const MAX_PENDING_MEDIA = 256;
/** Forgotten addresses remembered at most (see {@linkcode DoorRegistry.forget}). */
const MAX_FORGOTTEN = 1024;
/** Reloads a write may take before it gives up (another process keeps changing the doors). */
const MAX_CONFLICTS = 8;
const HEADER_FORMS: readonly HeaderForm[] = [77, 86];
const LAWS: readonly AudioLaw[] = ["alaw", "ulaw"];

/** Door address ↔ IP, and the door inventory. */
export class DoorRegistry {
  readonly #o: DoorRegistryOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #relearnAfterMs: number;
  readonly #maxDoors: number;
  readonly #heardWriteMs: number;
  readonly #doors = new Map<string, Door>();
  readonly #allowOnly: boolean;
  /** Addresses whose record must be written, and those to delete. */
  readonly #dirty = new Set<string>();
  readonly #deleted = new Set<string>();
  #version: string | null = null;
  #flushing: Promise<void> | undefined;
  #loading: Promise<void> | undefined;
  #reloadAgain = false;
  #pollTimer: TimerId | undefined;
  #polling: Promise<void> | undefined;
  #closed = false;
  #fullLogged = false;
  #throttle: LogThrottle;
  readonly #relearned: Counter;
  readonly #refused: Counter;
  readonly #conflicts: Counter;
  /** Cached: does the registry hold doors, all of them pinned? (`undefined`: recompute.) */
  #allPinned: boolean | undefined;
  /** Addresses forgotten while this process runs: learnable again even in a pinned building. */
  readonly #forgotten = new Set<string>();
  /** Media details of calls from doors not (yet) held at their IP, by `address|ip`. */
  readonly #pendingMedia = new Map<string, { headerForm?: number; law?: string }>();

  /**
   * Builds the registry from the allowlist; {@linkcode DoorRegistry.load} adds the stored doors.
   *
   * @throws {RangeError} for a malformed allowlist entry or option.
   */
  constructor(options: DoorRegistryOptions) {
    this.#o = options;
    this.#log = options.logger ?? nullLogger;
    this.#throttle = new LogThrottle(options.clock);
    this.#now = options.wallClock ?? Date.now;
    this.#relearnAfterMs = options.relearnAfterMs ?? DEFAULT_RELEARN_AFTER_MS;
    this.#maxDoors = options.maxDoors ?? MAX_DOORS;
    this.#heardWriteMs = options.heardWriteMs ?? HEARD_WRITE_MS;
    if (!(this.#relearnAfterMs >= 0)) {
      throw new RangeError(`Cannot use relearnAfterMs ${this.#relearnAfterMs}: expected ≥ 0`);
    }
    if (!(this.#maxDoors >= 1)) {
      throw new RangeError(`Cannot use maxDoors ${this.#maxDoors}: expected ≥ 1`);
    }
    this.#relearned = options.metrics?.counter(
      "doors_relearned_total",
      {},
      "Learned doors that moved to a new IP after their old one was silent",
    ) ?? { value: 0 };
    this.#refused = options.metrics?.counter(
      "doors_refused_total",
      { reason: "full" },
      "New doors refused",
    ) ?? { value: 0 };
    this.#conflicts = options.metrics?.counter(
      "door_address_conflicts_total",
      {},
      "Packets claiming a known door's address from a second IP while it is pinned or active",
    ) ?? { value: 0 };
    options.metrics?.gauge("doors_known", () => this.#doors.size, "Doors in the registry");
    this.#allowOnly = (options.allowlist?.length ?? 0) > 0;
    for (const item of options.allowlist ?? []) {
      const [addr, ip, more] = item.split("=");
      if (!addr || more !== undefined || (ip !== undefined && !parseIp(ip))) {
        throw new RangeError(
          `Cannot use --door-allowlist entry "${item}": expected ADDR or ADDR=IP`,
        );
      }
      const door = this.#configDoor(canonicalAddress(addr), ip);
      this.#doors.set(door.key, door);
    }
  }

  /** New doors refused because the registry was full. */
  get refused(): number {
    return this.#refused.value;
  }

  /**
   * Reads the store and merges it in: stored doors are added (or, when the store no longer has
   * a door it had, that door is forgotten); IP and mode come from the store, except for
   * allowlist pins; what this process heard since (times, media details) is kept and written
   * back. Concurrent calls are coalesced. A store failure is logged, never thrown.
   */
  load(): Promise<void> {
    if (!this.#o.store) return Promise.resolve();
    if (this.#loading) {
      this.#reloadAgain = true;
      return this.#loading;
    }
    this.#loading = (async () => {
      do {
        this.#reloadAgain = false;
        try {
          this.#merge(await this.#o.store!.load());
        } catch (e) {
          this.#log.error("Cannot load the doors", { error: e });
        }
      } while (this.#reloadAgain && !this.#closed);
    })().finally(() => (this.#loading = undefined));
    return this.#loading;
  }

  /**
   * Reloads when the store's change version moved (another process forgot or pinned a door);
   * {@linkcode DoorRegistry.start} calls it every `pollMs`. Never throws.
   */
  async sync(): Promise<void> {
    try {
      if (this.#o.store && (await this.#o.store.version()) !== this.#version) await this.load();
    } catch (e) {
      this.#log.error("Cannot read the doors' change version", { error: e });
    }
  }

  /** Polls the store's change version every `pollMs` and reloads when it moved. */
  start(): void {
    if (!this.#o.store || this.#pollTimer !== undefined || this.#closed) return;
    const tick = () => {
      this.#polling = this.sync().finally(() => {
        this.#polling = undefined;
        if (!this.#closed) {
          this.#pollTimer = this.#o.clock.setTimeout(tick, this.#o.pollMs ?? POLL_MS);
        }
      });
    };
    this.#pollTimer = this.#o.clock.setTimeout(tick, this.#o.pollMs ?? POLL_MS);
  }

  /** Stops polling and waits for pending writes (call before closing the store). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#pollTimer !== undefined) this.#o.clock.clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    await this.#polling;
    await this.#loading;
    await this.flush();
  }

  /** Resolves once every pending write has been tried. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  /**
   * May `address` speak from `ip`? Changes nothing but the door's `lastHeard`: `known` when the
   * registry holds the address at that IP (refreshed as heard); `unknown` when it does not but the
   * door may be learned from a call that completes the handshake ({@linkcode DoorRegistry.learn}):
   * a new address in an open building, an allowlisted `ADDR` without IP, a learned door whose IP
   * was silent for `relearnAfterMs`; `refused` otherwise (not on the allowlist, a new address in
   * a pinned building, the registry full, or the address known at another IP: a conflict).
   */
  admit(address: string, ip: string): DoorStanding {
    const key = canonicalAddress(address);
    const d = this.#doors.get(key);
    if (d && d.ip === ip) {
      this.#touch(d, this.#o.clock.now());
      return "known";
    }
    return this.#mayLearn(key, d, ip) ? "unknown" : "refused";
  }

  /** True when the registry holds `address` at `ip` (no side effect). */
  isKnown(address: string, ip: string): boolean {
    const d = this.#doors.get(canonicalAddress(address));
    return d !== undefined && d.ip === ip;
  }

  /**
   * A call from `address` at `ip` completed the handshake (the gateway answered CALLANSWER and
   * the door replied to a CALLCONFIRM from that IP): the door is learned (new address), gets its
   * IP (allowlisted `ADDR`), or is re-learned (its old IP silent for `relearnAfterMs`), under the
   * rules of {@linkcode DoorRegistry.admit}, checked again now. True when the registry holds
   * the address at `ip` afterwards.
   */
  learn(address: string, ip: string): boolean {
    const key = canonicalAddress(address);
    const now = this.#o.clock.now();
    let d = this.#doors.get(key);
    if (d && d.ip === ip) {
      this.#touch(d, now);
      return true;
    }
    if (!this.#mayLearn(key, d, ip)) return false;
    if (!d) {
      // A replaced door learned into a pinned building is pinned too: the building stays closed.
      const pin = this.#forgotten.has(key) && this.#pinnedBuilding();
      d = this.#newDoor(key);
      if (pin) d.pin = "store";
      this.#doors.set(key, d);
      this.#pinsChanged();
    }
    this.#forgotten.delete(key);
    const media = this.#pendingMedia.get(`${key}|${ip}`);
    this.#pendingMedia.delete(`${key}|${ip}`);
    if (media) this.#applyMedia(d, media);
    const oldIp = d.ip;
    d.ip = ip;
    d.ipPending = true;
    if (oldIp === undefined) {
      this.#log.info("door learned", { door: displayAddress(key), ip });
    } else {
      const silentMs = now - d.heardAt;
      this.#log.warn("door re-learned at a new IP", {
        door: displayAddress(key),
        ip,
        oldIp,
        silentS: Number.isFinite(silentMs) ? Math.round(silentMs / 1000) : "unknown",
      });
      this.#relearned.value++;
    }
    this.#touch(d, now);
    this.#changed(d);
    return true;
  }

  /** Whether `key` (held as `d`, if at all) may be learned at `ip`; logs and counts a refusal. */
  #mayLearn(key: string, d: Door | undefined, ip: string): boolean {
    if (!d) {
      if (this.#allowOnly) {
        if (this.#throttle.allow(`allow|${ip}`)) {
          this.#log.info("door refused: not on --door-allowlist", {
            door: displayAddress(key),
            ip,
            hint: `add ${displayAddress(key)}=${ip} to --door-allowlist (INTERCOM_DOOR_ALLOWLIST)`,
          });
        }
        return false;
      }
      if (this.#pinnedBuilding() && !this.#forgotten.has(key)) {
        if (this.#throttle.allow(`pinned|${ip}`)) {
          this.#log.info(
            "door refused: every known door is pinned (door pin), new doors are not learned",
            {
              door: displayAddress(key),
              ip,
              hint: `to add this door, name it in --door-allowlist with the pinned doors ` +
                `(ADDR=IP each, see \`intercom-gateway door list\`)`,
            },
          );
        }
        return false;
      }
      if (this.#doors.size >= this.#maxDoors) {
        this.#refused.value++;
        if (!this.#fullLogged) {
          this.#fullLogged = true;
          this.#log.warn("door registry full: new doors refused", {
            door: displayAddress(key),
            ip,
            maxDoors: this.#maxDoors,
          });
        }
        return false;
      }
      return true;
    }
    if (d.ip === undefined) return true;
    const silentMs = this.#o.clock.now() - d.heardAt;
    if (d.pin === "none" && this.#relearnAfterMs > 0 && silentMs >= this.#relearnAfterMs) {
      return true;
    }
    this.#conflict(d, ip);
    return false;
  }

  /** `d`'s address claimed from `ip` while it is pinned or its own IP is active: an alarm. */
  #conflict(d: Door, ip: string): void {
    this.#conflicts.value++;
    if (!this.#throttle.allow(`conflict|${d.key}|${ip}`)) return;
    const door = displayAddress(d.key);
    const knownIp = d.ip!;
    this.#log.warn("door address conflict: its address is claimed from a second IP", {
      door,
      ip,
      knownIp,
      mode: d.pin !== "none" ? "pinned" : "learned",
      hint: d.pin !== "none" || this.#relearnAfterMs === 0
        ? `a replaced door: run \`intercom-gateway door forget ${door}\`; else someone is ` +
          `spoofing the door`
        : `a replaced door is re-learned once ${knownIp} is silent for ${
          this.#relearnAfterMs / 1000
        } s and it completes a call, or run \`intercom-gateway door forget ${door}\`; else ` +
          `someone is spoofing the door`,
    });
    this.#o.events?.emit({
      type: "door_conflict",
      at: this.#now(),
      address: door,
      knownIp,
      claimedIp: ip,
    });
  }

  /**
   * Whether the building is pinned: it holds doors and every one of them is pinned (`door pin
   * --all`, or allowlisted `ADDR=IP`). Then a new address is not learned (unless this process
   * saw it forgotten: a replaced door).
   */
  #pinnedBuilding(): boolean {
    if (this.#allPinned === undefined) {
      let all = this.#doors.size > 0;
      for (const d of this.#doors.values()) {
        if (d.pin === "none") {
          all = false;
          break;
        }
      }
      this.#allPinned = all;
    }
    return this.#allPinned;
  }

  /** A door was added, removed, pinned or unpinned. */
  #pinsChanged(): void {
    this.#allPinned = undefined;
  }

  /** Remembers a forgotten address (bounded): a replaced door may be learned even when pinned. */
  #rememberForgotten(key: string): void {
    this.#forgotten.delete(key);
    if (this.#forgotten.size >= MAX_FORGOTTEN) {
      this.#forgotten.delete(this.#forgotten.values().next().value!);
    }
    this.#forgotten.add(key);
  }

  /**
   * A sign of life from `address` at `ip` that did not pass {@linkcode DoorRegistry.admit}
   * (a REPLY, door media): refreshes `lastHeard` when that is the door's IP, else nothing.
   */
  heard(address: string, ip: string): void {
    const d = this.#doors.get(canonicalAddress(address));
    if (d && d.ip === ip) this.#touch(d, this.#o.clock.now());
  }

  /**
   * Records what the door's media showed: its header form (77/86) and/or audio law. With `ip`,
   * a note about a door not held at that IP waits for {@linkcode DoorRegistry.learn}.
   */
  noteMedia(address: string, media: { headerForm?: number; law?: string }, ip?: string): void {
    const key = canonicalAddress(address);
    const d = this.#doors.get(key);
    if (!d || (ip !== undefined && d.ip !== ip)) {
      // A call's media comes before its first keep-alive reply: kept (bounded) until the call
      // completes the handshake and the door is learned at that IP.
      if (ip === undefined) return;
      const id = `${key}|${ip}`;
      this.#pendingMedia.delete(id);
      if (this.#pendingMedia.size >= MAX_PENDING_MEDIA) {
        this.#pendingMedia.delete(this.#pendingMedia.keys().next().value!);
      }
      this.#pendingMedia.set(id, media);
      return;
    }
    this.#applyMedia(d, media);
  }

  #applyMedia(d: Door, media: { headerForm?: number; law?: string }): void {
    let changed = false;
    const form = HEADER_FORMS.find((f) => f === media.headerForm);
    if (form !== undefined && form !== d.headerForm) {
      d.headerForm = form;
      changed = true;
    }
    const law = LAWS.find((l) => l === media.law);
    if (law !== undefined && law !== d.law) {
      d.law = law;
      changed = true;
    }
    if (changed) this.#changed(d);
  }

  /** Records that the door only unlocks during talk (or, with `false`, that it does not). */
  setNeedsTalkForUnlock(address: string, value = true): void {
    const d = this.#doors.get(canonicalAddress(address));
    if (!d || d.needsTalkForUnlock === value) return;
    d.needsTalkForUnlock = value;
    this.#changed(d);
  }

  /** The door inventory, by address. */
  list(): DoorInfo[] {
    return [...this.#doors.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map(info);
  }

  /** One door of the inventory. */
  get(address: string): DoorInfo | undefined {
    const d = this.#doors.get(canonicalAddress(address));
    return d ? info(d) : undefined;
  }

  /**
   * Forgets a door: it is learned afresh on its next contact. An allowlisted door returns to
   * its allowlist entry. Resolves to false when the door was unknown.
   */
  async forget(address: string): Promise<boolean> {
    const key = canonicalAddress(address);
    const d = this.#doors.get(key);
    if (!d) return false;
    if (d.allowlisted) this.#doors.set(key, this.#configDoor(key, d.configIp));
    else this.#doors.delete(key);
    this.#pinsChanged();
    this.#rememberForgotten(key);
    this.#dirty.delete(key);
    this.#deleted.add(key);
    this.#kick();
    await this.flush();
    return true;
  }

  /**
   * Pins learned doors to their current IP (all when `address` is omitted): they no longer
   * move. Resolves to the doors pinned now.
   */
  async pin(address?: string): Promise<DoorInfo[]> {
    const doors = address === undefined
      ? [...this.#doors.values()]
      : [this.#doors.get(canonicalAddress(address))].filter((d) => d !== undefined);
    const pinned: DoorInfo[] = [];
    for (const d of doors) {
      if (d.pin !== "none" || d.ip === undefined) continue;
      d.pin = "store";
      this.#pinsChanged();
      d.ipPending = true;
      this.#changed(d);
      pinned.push(info(d));
    }
    await this.flush();
    return pinned;
  }

  // ---- internals ----

  #newDoor(key: string): Door {
    return {
      key,
      ip: undefined,
      pin: "none",
      allowlisted: false,
      configIp: undefined,
      heardAt: -Infinity,
      firstHeard: undefined,
      lastHeard: undefined,
      headerForm: undefined,
      law: undefined,
      needsTalkForUnlock: false,
      stored: false,
      ipPending: false,
      heardWrittenAt: -Infinity,
    };
  }

  #configDoor(key: string, ip: string | undefined): Door {
    const d = this.#newDoor(key);
    d.allowlisted = true;
    d.configIp = ip;
    d.ip = ip;
    d.pin = ip === undefined ? "none" : "config";
    return d;
  }

  #touch(d: Door, now: number): void {
    d.heardAt = now;
    const wall = this.#now();
    d.lastHeard = wall;
    if (d.firstHeard === undefined) {
      d.firstHeard = wall;
      this.#changed(d);
    } else if (now - d.heardWrittenAt >= this.#heardWriteMs) {
      this.#changed(d);
    }
  }

  /** The door needs writing; its `lastHeard` goes with it. */
  #changed(d: Door): void {
    if (!this.#o.store || d.ip === undefined) return;
    d.heardWrittenAt = this.#o.clock.now();
    this.#deleted.delete(d.key);
    this.#dirty.add(d.key);
    this.#kick();
  }

  #kick(): void {
    if (!this.#o.store || this.#flushing) return;
    // In a microtask, so that the changes of one datagram make one write.
    this.#flushing = Promise.resolve().then(() => this.#drain()).finally(() =>
      this.#flushing = undefined
    );
  }

  async #drain(): Promise<void> {
    const store = this.#o.store!;
    let conflicts = 0;
    for (;;) {
      const del = this.#deleted.size > 0;
      const key = first(del ? this.#deleted : this.#dirty);
      if (key === undefined) return;
      (del ? this.#deleted : this.#dirty).delete(key);
      const d = this.#doors.get(key);
      if (!del && (!d || d.ip === undefined)) continue;
      const pending = d?.ipPending ?? false;
      if (d && !del) d.ipPending = false;
      let ok: boolean;
      try {
        ok = del
          ? await store.delete(key, this.#version)
          : await store.save(record(d!, d!.ip!), this.#version);
      } catch (e) {
        if (d && !del) d.ipPending ||= pending;
        this.#log.error(`Cannot ${del ? "delete" : "save"} door ${displayAddress(key)}`, {
          error: e,
        });
        continue;
      }
      if (ok) {
        if (d && !del) d.stored = true;
        continue;
      }
      // Another process changed the doors: take its changes in, then write ours again.
      if (d && !del) d.ipPending ||= pending;
      (del ? this.#deleted : this.#dirty).add(key);
      if (++conflicts > MAX_CONFLICTS) {
        this.#log.error("Cannot write the doors: the store keeps changing", { conflicts });
        return;
      }
      await this.load();
    }
  }

  #merge(snapshot: DoorSnapshot): void {
    this.#version = snapshot.version;
    if (snapshot.skipped) {
      this.#log.warn("unreadable door records skipped", { count: snapshot.skipped });
    }
    const nowMono = this.#o.clock.now();
    const wall = this.#now();
    const seen = new Set<string>();
    for (const r of snapshot.doors) {
      const key = canonicalAddress(r.address);
      if (seen.has(key) || this.#deleted.has(key)) continue;
      seen.add(key);
      let d = this.#doors.get(key);
      if (!d) {
        if (this.#allowOnly || this.#doors.size >= this.#maxDoors) continue;
        d = this.#newDoor(key);
        this.#doors.set(key, d);
        this.#forgotten.delete(key);
      }
      if (d.heardAt === -Infinity) {
        // Silence survives a restart: a door last heard long ago may be re-learned at once.
        d.heardAt = r.lastHeard === undefined ? nowMono : nowMono - Math.max(0, wall - r.lastHeard);
      }
      if (d.pin !== "config") {
        // The store's IP and mode, unless this process moved or pinned the door since; a pin
        // from either side stays.
        if (!d.ipPending || d.ip === undefined) d.ip = r.ip;
        d.pin = r.mode === "pinned" || (d.ipPending && d.pin === "store") ? "store" : "none";
      }
      this.#pinsChanged();
      d.firstHeard = min(d.firstHeard, r.firstHeard);
      d.lastHeard = max(d.lastHeard, r.lastHeard);
      d.headerForm ??= r.headerForm;
      d.law ??= r.law;
      d.needsTalkForUnlock ||= r.needsTalkForUnlock;
      d.stored = true;
      if (!sameRecord(record(d, d.ip!), r)) this.#changed(d);
    }
    for (const d of [...this.#doors.values()]) {
      if (seen.has(d.key) || !d.stored) continue;
      // The store had it and no longer has it: forgotten elsewhere (`door forget`).
      this.#dirty.delete(d.key);
      if (d.allowlisted) this.#doors.set(d.key, this.#configDoor(d.key, d.configIp));
      else this.#doors.delete(d.key);
      this.#pinsChanged();
      this.#rememberForgotten(d.key);
      this.#log.info("door forgotten", { door: displayAddress(d.key) });
    }
  }
}

function first(set: Set<string>): string | undefined {
  for (const v of set) return v;
  return undefined;
}

function min(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

function max(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.max(a, b);
}

function record(d: Door, ip: string): DoorRecord {
  const r: {
    -readonly [K in keyof DoorRecord]: DoorRecord[K];
  } = {
    address: displayAddress(d.key),
    ip,
    mode: d.pin === "none" ? "learned" : "pinned",
    needsTalkForUnlock: d.needsTalkForUnlock,
  };
  if (d.firstHeard !== undefined) r.firstHeard = d.firstHeard;
  if (d.lastHeard !== undefined) r.lastHeard = d.lastHeard;
  if (d.headerForm !== undefined) r.headerForm = d.headerForm;
  if (d.law !== undefined) r.law = d.law;
  return r;
}

function sameRecord(a: DoorRecord, b: DoorRecord): boolean {
  return a.ip === b.ip && a.mode === b.mode && a.firstHeard === b.firstHeard &&
    a.lastHeard === b.lastHeard && a.headerForm === b.headerForm && a.law === b.law &&
    a.needsTalkForUnlock === b.needsTalkForUnlock;
}

function info(d: Door): DoorInfo {
  return { ...record(d, d.ip ?? ""), ip: d.ip, allowlisted: d.allowlisted };
}
