/**
 * The door registry: which door address speaks from which IP (issue: a packet claiming a known
 * door's address from another IP is rejected). Doors are configured (`--door-allowlist`, entries
 * `ADDR` or `ADDR=IP`) or learned on first contact.
 *
 * A learned door that moved (DHCP) is re-learned once its old address was silent for
 * `relearnAfterMs`; a configured `ADDR=IP` never moves.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { canonicalAddress, parseIp } from "../protocol/address.ts";

/** Options of {@linkcode DoorRegistry}. */
export interface DoorRegistryOptions {
  clock: Clock;
  /** Entries `ADDR` or `ADDR=IP`; when not empty, only these doors are admitted. */
  allowlist?: readonly string[];
  /** @default one hour */
  relearnAfterMs?: number;
  /** Called when a door is learned (to persist it). */
  onLearn?: (address: string, ip: string) => void;
}

interface Entry {
  ip: string | undefined;
  fixed: boolean;
  lastHeard: number;
}

/** Door address ↔ IP. */
export class DoorRegistry {
  #o: DoorRegistryOptions;
  #doors = new Map<string, Entry>();
  #allowOnly: boolean;

  /** Builds the registry from the allowlist. */
  constructor(options: DoorRegistryOptions) {
    this.#o = options;
    this.#allowOnly = (options.allowlist?.length ?? 0) > 0;
    for (const item of options.allowlist ?? []) {
      const [addr, ip] = item.split("=");
      if (!addr || (ip !== undefined && !parseIp(ip))) {
        throw new RangeError(
          `Cannot use --door-allowlist entry "${item}": expected ADDR or ADDR=IP`,
        );
      }
      this.#doors.set(canonicalAddress(addr), {
        ip,
        fixed: ip !== undefined,
        lastHeard: -Infinity,
      });
    }
  }

  /** Restores learned doors (from storage). */
  restore(address: string, ip: string): void {
    const key = canonicalAddress(address);
    if (!this.#doors.has(key) && !this.#allowOnly) {
      this.#doors.set(key, { ip, fixed: false, lastHeard: this.#o.clock.now() });
    }
  }

  /** Known doors (address → IP). */
  entries(): [string, string | undefined][] {
    return [...this.#doors].map(([a, e]) => [a, e.ip]);
  }

  /** May `address` speak from `ip`? Learns unknown doors unless allowlist-only. */
  admit(address: string, ip: string): boolean {
    const key = canonicalAddress(address);
    const now = this.#o.clock.now();
    const e = this.#doors.get(key);
    if (!e) {
      if (this.#allowOnly) return false;
      this.#doors.set(key, { ip, fixed: false, lastHeard: now });
      this.#o.onLearn?.(key, ip);
      return true;
    }
    if (e.ip === undefined || e.ip === ip) {
      if (e.ip === undefined) this.#o.onLearn?.(key, ip);
      e.ip = ip;
      e.lastHeard = now;
      return true;
    }
    if (!e.fixed && now - e.lastHeard >= (this.#o.relearnAfterMs ?? 3_600_000)) {
      e.ip = ip;
      e.lastHeard = now;
      this.#o.onLearn?.(key, ip);
      return true;
    }
    return false;
  }
}
