/**
 * Console sessions, in memory (a restart logs everyone out): a random 256-bit id in an
 * `HttpOnly`, `SameSite=Strict` cookie. A session ends after {@linkcode IDLE_MS} without a
 * request, {@linkcode ABSOLUTE_MS} after login whatever happens, at logout, and when its
 * account is removed or its password changes (checked by the handler on every request).
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { AdminAccount } from "../store/admins.ts";

/** Idle expiry. */
export const IDLE_MS = 30 * 60_000;
/** Absolute expiry. */
export const ABSOLUTE_MS = 12 * 3600_000;
/** Sessions held at most (the oldest is dropped beyond). */
export const MAX_SESSIONS = 256;

/** One logged-in console client. */
export interface Session {
  readonly id: string;
  readonly name: string;
  /** The account's `passwordSetAt` at login: a later change ends the session. */
  passwordSetAt: string;
  /** The password must be changed before anything else. */
  mustChange: boolean;
  readonly ip: string;
  /** Monotonic ms. */
  readonly createdAt: number;
  lastSeen: number;
}

/** Options of {@linkcode SessionStore}. */
export interface SessionStoreOptions {
  clock: Pick<Clock, "now">;
  /** @default {IDLE_MS} */
  idleMs?: number;
  /** @default {ABSOLUTE_MS} */
  absoluteMs?: number;
  /** @default {MAX_SESSIONS} */
  max?: number;
}

function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...b)).replaceAll("+", "-").replaceAll("/", "_").replace(
    /=+$/,
    "",
  );
}

/** The live sessions. */
export class SessionStore {
  readonly #o: Required<SessionStoreOptions>;
  readonly #byId = new Map<string, Session>();

  /** Creates an empty store. */
  constructor(options: SessionStoreOptions) {
    this.#o = {
      idleMs: IDLE_MS,
      absoluteMs: ABSOLUTE_MS,
      max: MAX_SESSIONS,
      ...options,
    };
  }

  /** Sessions now. */
  get size(): number {
    return this.#byId.size;
  }

  /** Opens a session for `account` from `ip`. */
  create(account: AdminAccount, ip: string): Session {
    while (this.#byId.size >= this.#o.max) {
      this.#byId.delete(this.#byId.keys().next().value!);
    }
    const now = this.#o.clock.now();
    const s: Session = {
      id: randomId(),
      name: account.name,
      passwordSetAt: account.passwordSetAt,
      mustChange: account.mustChange,
      ip,
      createdAt: now,
      lastSeen: now,
    };
    this.#byId.set(s.id, s);
    return s;
  }

  /** The live session of `id` (its idle time starts again), or `undefined`. */
  touch(id: string | undefined): Session | undefined {
    const s = this.peek(id);
    if (s) s.lastSeen = this.#o.clock.now();
    return s;
  }

  /** The live session of `id` without touching it. */
  peek(id: string | undefined): Session | undefined {
    if (id === undefined) return undefined;
    const s = this.#byId.get(id);
    if (!s) return undefined;
    const now = this.#o.clock.now();
    if (now - s.lastSeen >= this.#o.idleMs || now - s.createdAt >= this.#o.absoluteMs) {
      this.#byId.delete(id);
      return undefined;
    }
    return s;
  }

  /** Epoch-independent expiry: ms left before the session ends (idle or absolute). */
  remainingMs(s: Session): number {
    const now = this.#o.clock.now();
    return Math.max(
      0,
      Math.min(s.lastSeen + this.#o.idleMs, s.createdAt + this.#o.absoluteMs) - now,
    );
  }

  /** Ends a session. */
  end(id: string): void {
    this.#byId.delete(id);
  }

  /** Ends every session of `name` except `keep`. */
  endFor(name: string, keep?: string): void {
    for (const [id, s] of this.#byId) if (s.name === name && id !== keep) this.#byId.delete(id);
  }
}
