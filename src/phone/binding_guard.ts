/**
 * Keeps live phone sessions true to the bindings: when a binding is removed or its token rotated
 * (by `bind remove`/`bind add` in another process, or in this one), the phone's session for that
 * room ends within one poll interval: it gets `over` for a call of that room, an `error`
 * `unauthorized`, is dropped from the room's presence and ring group (so NS goes silent and its
 * media stops), and its connection closes (code 4004) when it has no room left.
 *
 * The store's change marker is polled (Deno KV's `watch` does not see other processes' writes):
 * one small read every {@linkcode GUARD_POLL_MS}; sessions are checked only when it changed.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { EventSink } from "../events/bus.ts";
import type { CallControl, PhoneNotifier } from "../call/ports.ts";
import type { PhoneHub } from "./hub.ts";

/** Poll interval of the binding change marker. */
export const GUARD_POLL_MS = 500;

/** Options of {@linkcode BindingGuard}. */
export interface BindingGuardOptions {
  hub: Pick<PhoneHub, "loggedIn" | "revokeRoom" | "sendTo">;
  notifier: PhoneNotifier;
  calls: Pick<CallControl, "byRoom">;
  /** The store's change marker (any value; a change means "check the sessions"). */
  version: () => Promise<string | null>;
  /** The id of the current token of (uid, room), undefined when unbound. */
  tokenIdOf: (uid: string, roomKey: string) => Promise<string | undefined>;
  clock: Clock;
  logger: Logger;
  events?: EventSink;
  /** @default {GUARD_POLL_MS} */
  pollMs?: number;
}

/** Ends sessions whose binding is gone. */
export class BindingGuard {
  #o: BindingGuardOptions;
  #last: string | null | undefined;
  #timer: TimerId | undefined;
  #stopped = false;
  #running: Promise<void> = Promise.resolve();

  /** Creates the guard; {@linkcode BindingGuard.start} begins polling. */
  constructor(options: BindingGuardOptions) {
    this.#o = options;
  }

  /** Reads the current marker, then polls. */
  async start(): Promise<void> {
    this.#last = await this.#o.version();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#running = this.poll().finally(() => this.#schedule());
    }, this.#o.pollMs ?? GUARD_POLL_MS);
  }

  /** One poll: checks every session when the marker changed. Never throws. */
  async poll(): Promise<void> {
    try {
      const v = await this.#o.version();
      if (v === this.#last) return;
      this.#last = v;
      await this.check();
    } catch (e) {
      this.#o.logger.error("binding check failed", { error: e });
    }
  }

  /** Checks every logged-in session's rooms against the store now. */
  async check(): Promise<void> {
    for (const { session, uid } of this.#o.hub.loggedIn()) {
      for (const [roomKey, room] of [...session.rooms]) {
        const current = await this.#o.tokenIdOf(uid, roomKey);
        if (current !== undefined && current === room.tokenId) continue;
        if (session.closed || session.uid !== uid || !session.rooms.has(roomKey)) continue;
        this.#revoke(session, uid, roomKey, room.roomAddress, current !== undefined);
      }
    }
  }

  #revoke(
    session: Parameters<PhoneHub["revokeRoom"]>[0],
    uid: string,
    roomKey: string,
    roomAddress: string,
    rotated: boolean,
  ): void {
    const o = this.#o;
    const why = rotated ? "token rotated" : "binding removed";
    o.logger.info("phone session ended: its binding changed", { uid, room: roomKey, why });
    const call = o.calls.byRoom(roomKey);
    if (call && (call.ringing.includes(uid) || call.talker === uid)) {
      // The call ended for this phone: the closest reason the phone protocol has.
      o.notifier.send(uid, roomKey, {
        order: "over",
        reason: "answered elsewhere",
        doorAddress: call.doorAddress,
        callId: call.callId,
      });
    }
    o.hub.sendTo(session, {
      order: "error",
      code: "unauthorized",
      message: `Cannot use room ${roomAddress}: this phone was removed by the building manager`,
      ref: "login",
      roomAddress,
    });
    o.hub.revokeRoom(session, roomKey, why);
    o.events?.emit({
      type: "binding_removed",
      at: o.clock.wallNow(),
      uid,
      roomKey,
      rotated,
    });
  }

  /** Stops polling and waits for a poll in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    await this.#running;
  }
}
