/**
 * Calls across gateways (`--cluster`). The door's gateway (the *origin*) keeps the whole call:
 * its call machine rings local and remote phones alike, the first `call ok` answers, the first
 * `talk` wins, unlock and hang-ups run its usual checks. Phones on another gateway (the *host*)
 * are reached through NATS request/reply on the host's subjects:
 *
 * - `call.<host>.notice`: a call notice for one of its phones (reply: delivered or not; no reply
 *   within {@linkcode NOTICE_TIMEOUT_MS}, or "not delivered", and the phone leaves the call, so
 *   that a cut link ends a ringing call at once: the door gets LINEUSE);
 * - `call.<host>.route` / `call.<host>.close`: who gets door media, and the end of the call;
 * - `call.<origin>.request`: a remote phone's `call ok`, `talk`, `unlock`, `over`…, checked by
 *   the origin's manager exactly like a local phone's.
 *
 * Media is relayed over NATS (docs/cluster.md says why, with the measured figures): the origin
 * publishes the door's datagrams of a call with remote viewers on `media.<callId>.down`; the
 * host feeds them to its own media relay, where the call is open under a stand-in door address
 * (`remote:<callId>`), so that its phones latch, get video and send audio as with a local door;
 * what its relay sends to that stand-in door is published on `media.<callId>.up` and the origin
 * sends it to the real door.
 *
 * The host's side of the call layer is {@linkcode CallRouter.control}: the phone service asks it,
 * and it answers for the local manager's calls, or forwards to the origin for a remote call.
 *
 * @module
 */

import type { Msg, Subscription } from "@nats-io/transport-node";
import type { Logger } from "../log.ts";
import type {
  CallControl,
  CallNotice,
  CallView,
  LiveCallInfo,
  MediaPort,
  Peer,
  PhoneNotifier,
  PhoneRequest,
  RemotePhones,
  RequestResult,
} from "../call/ports.ts";
import type { CallParties } from "../protocol/types.ts";
import type { ClusterLink } from "./link.ts";
import type { Presence } from "./presence.ts";
import { callSubject } from "./subjects.ts";

/** A notice to a remote phone not acknowledged within this is lost (the phone leaves the call). */
export const NOTICE_TIMEOUT_MS = 1000;
/** Remote calls hosted at most (a bound on the proxies kept). */
export const MAX_HOSTED = 256;
/** The stand-in door host of a remote call in this gateway's media relay. */
export const REMOTE_DOOR_PREFIX = "remote:";

/** The call facts sent with a notice. */
interface WireCall {
  readonly callId: string;
  readonly roomKey: string;
  readonly doorAddress: string;
  readonly door: Peer;
  readonly parties: CallParties;
}

interface NoticeMsg {
  readonly origin: string;
  readonly uid: string;
  readonly roomKey: string;
  readonly notice: CallNotice;
  readonly call: WireCall;
  readonly mediaKey?: string;
}

interface RequestMsg {
  readonly uid: string;
  readonly roomKey: string;
  readonly order: PhoneRequest;
  readonly doorAddress?: string;
  readonly callId?: string;
}

/** A remote call this gateway hosts phones of. */
interface Hosted {
  readonly origin: string;
  readonly call: WireCall;
  readonly info: LiveCallInfo;
  readonly uids: Set<string>;
  readonly mediaKeys: Map<string, string>;
  talker: string | undefined;
  media: Subscription | undefined;
}

/** A local call with phones on other gateways. */
interface Originated {
  readonly info: LiveCallInfo;
  /** Host gateway → its uids in the call. */
  readonly hosts: Map<string, Set<string>>;
  /** Forward the door's media (someone remote watches). */
  down: boolean;
}

/** Options of {@linkcode CallRouter}. */
export interface CallRouterOptions {
  readonly link: ClusterLink;
  readonly presence: Presence;
  readonly logger: Logger;
  /** This gateway's phones (deliver a hosted call's notices). */
  readonly phones: PhoneNotifier;
  /** This gateway's call manager (origin side). */
  readonly calls: () => CallControl & { list(): CallView[] };
  /** This gateway's media relay. */
  readonly relay: MediaPort & {
    onDoorMedia(bytes: Uint8Array, from: Peer): void;
  };
  /** Sends bytes to a real door (the origin's door socket). */
  readonly sendToDoor: (bytes: Uint8Array, to: Peer) => void;
}

const enc = (v: unknown) => JSON.stringify(v);

/** Routes calls, their requests and their media between gateways. */
export class CallRouter implements RemotePhones {
  readonly #o: CallRouterOptions;
  readonly #hosted = new Map<string, Hosted>();
  readonly #originated = new Map<string, Originated>();
  /** Door host → originated call id, for the door media tap. */
  readonly #byDoor = new Map<string, string>();
  #subs: Subscription[] = [];
  /** The subscriptions' loops still running (each leaves the set when it ends). */
  readonly #loops = new Set<Promise<void>>();
  #off: (() => void) | undefined;
  /** Subscription loops running (tests: ended ones do not accumulate). */
  get loops(): number {
    return this.#loops.size;
  }
  /** Door datagrams published for remote phones, and hosted ones received. */
  readonly counters = { down: 0, up: 0, hostedIn: 0 };

  /** Creates the router; {@linkcode CallRouter.start} subscribes. */
  constructor(options: CallRouterOptions) {
    this.#o = options;
  }

  /** Subscribes (again on every leaf reconnection). */
  start(): void {
    this.#off = this.#o.link.onChange((c) => {
      if (c.part === "leaf" && c.up) this.#subscribe();
      if (!c.up) this.#dropHosted();
    });
    if (this.#o.link.leafUp) this.#subscribe();
  }

  /**
   * Runs a subscription's loop, kept until it ends: a loop that fails is logged, never an
   * unhandled rejection, and one ended (unsubscribed, reconnected) leaves no trace.
   */
  #track(subject: string, loop: () => Promise<void>): void {
    const p: Promise<void> = loop()
      .catch((e) => this.#o.logger.warn("cluster: a subscription failed", { subject, error: e }))
      .finally(() => this.#loops.delete(p));
    this.#loops.add(p);
  }

  #subscribe(): void {
    const nc = this.#o.link.nc;
    if (!nc) return;
    for (const s of this.#subs) s.unsubscribe();
    const me = this.#o.link.gatewayId;
    const on = (subject: string, fn: (m: Msg) => void) => {
      const sub = nc.subscribe(subject);
      this.#subs.push(sub);
      this.#track(subject, async () => {
        for await (const m of sub) {
          try {
            fn(m);
          } catch (e) {
            this.#o.logger.warn("cluster: bad message", { subject: m.subject, error: e });
          }
        }
      });
    };
    this.#subs = [];
    on(callSubject(me, "notice"), (m) => m.respond(enc({ ok: this.#onNotice(m.json()) })));
    on(callSubject(me, "route"), (m) => this.#onRoute(m.json()));
    on(callSubject(me, "close"), (m) => this.#closeHosted(m.json<{ callId: string }>().callId));
    on(callSubject(me, "request"), (m) => m.respond(enc(this.#onRequest(m.json()))));
    on("media.*.up", (m) => this.#onUp(m));
    // Echo: measures the path between two gateways (tests, `docs/cluster.md` figures).
    on(callSubject(me, "ping"), (m) => m.respond(m.data));
  }

  // ---- origin side ----

  /** {@inheritDoc RemotePhones.online} */
  online(roomKey: string): string[] {
    return this.#o.link.hubUp ? this.#o.presence.online(roomKey) : [];
  }

  /** {@inheritDoc RemotePhones.send} */
  send(uid: string, roomKey: string, notice: CallNotice, call: LiveCallInfo): boolean {
    const host = this.#o.presence.gatewayOf(uid, roomKey);
    const nc = this.#o.link.nc;
    if (!host || !nc || !this.#o.link.hubUp) return false;
    const o = this.#originated.get(call.callId);
    if (o) {
      let uids = o.hosts.get(host);
      if (!uids) o.hosts.set(host, uids = new Set());
      uids.add(uid);
    }
    const msg: NoticeMsg = {
      origin: this.#o.link.gatewayId,
      uid,
      roomKey,
      notice,
      call: {
        callId: call.callId,
        roomKey: call.roomKey,
        doorAddress: call.doorAddress,
        door: { hostname: call.door.hostname, port: call.door.port },
        parties: call.parties,
      },
      ...(call.mediaKeyOf(uid) ? { mediaKey: call.mediaKeyOf(uid) } : {}),
    };
    nc.request(callSubject(host, "notice"), enc(msg), { timeout: NOTICE_TIMEOUT_MS })
      .then((r) => {
        if (!r.json<{ ok: boolean }>().ok) throw new Error("phone not connected there");
      })
      .catch((e) => {
        this.#o.logger.info("cluster: a remote phone cannot be reached: it leaves the call", {
          uid,
          room: roomKey,
          gateway: host,
          callId: call.callId,
          error: e instanceof Error ? e.message : String(e),
        });
        this.#o.presence.lost(uid, roomKey);
      });
    return true;
  }

  /** The origin's media port: the local relay, plus the hosts of remote phones. */
  readonly media: MediaPort = {
    open: (info) => {
      this.#o.relay.open(info);
      this.#originated.set(info.callId, { info, hosts: new Map(), down: false });
    },
    route: (callId, video, audioFrom) => {
      this.#o.relay.route(callId, video, audioFrom);
      const o = this.#originated.get(callId);
      const nc = this.#o.link.nc;
      if (!o || !nc) return;
      let down = false;
      for (const [host, uids] of o.hosts) {
        const v = video.filter((u) => uids.has(u));
        const a = audioFrom !== undefined && uids.has(audioFrom) ? audioFrom : undefined;
        if (v.length) down = true;
        nc.publish(callSubject(host, "route"), enc({ callId, video: v, audioFrom: a }));
      }
      o.down = down;
      if (down) this.#byDoor.set(o.info.door.hostname, callId);
      else if (this.#byDoor.get(o.info.door.hostname) === callId) {
        this.#byDoor.delete(o.info.door.hostname);
      }
    },
    close: (callId) => {
      this.#o.relay.close(callId);
      const o = this.#originated.get(callId);
      this.#originated.delete(callId);
      if (!o) return;
      if (this.#byDoor.get(o.info.door.hostname) === callId) {
        this.#byDoor.delete(o.info.door.hostname);
      }
      const nc = this.#o.link.nc;
      for (const host of o.hosts.keys()) nc?.publish(callSubject(host, "close"), enc({ callId }));
    },
  };

  /** The door socket's media tap: a call with remote viewers gets its datagrams forwarded. */
  onDoorMedia(bytes: Uint8Array, from: Peer): void {
    if (this.#byDoor.size === 0) return;
    const callId = this.#byDoor.get(from.hostname);
    if (callId === undefined) return;
    const nc = this.#o.link.nc;
    if (!nc) return;
    this.counters.down++;
    // A copy: `bytes` is the door socket's pooled receive buffer, reused once this returns, and
    // the NATS client keeps a published payload until its next flush (or a reconnection).
    nc.publish(`media.${callId}.down`, bytes.slice());
  }

  #onUp(m: Msg): void {
    const callId = m.subject.split(".")[1] ?? "";
    const o = this.#originated.get(callId);
    if (!o) return;
    this.counters.up++;
    this.#o.sendToDoor(m.data, o.info.door);
  }

  #onRequest(r: RequestMsg): RequestResult {
    return this.#o.calls().phoneRequest(r.uid, r.roomKey, r.order, r.doorAddress, r.callId);
  }

  // ---- host side ----

  #onNotice(m: NoticeMsg): boolean {
    let h = this.#hosted.get(m.call.callId);
    if (!h) {
      if (m.notice.order !== "call") return false;
      // The origin runs one call per room: one still hosted for the room is over there (its
      // close was lost, or the origin restarted), and would shadow this one in `control`.
      for (const [callId, old] of [...this.#hosted]) {
        if (old.origin === m.origin && old.call.roomKey === m.call.roomKey) this.#endHosted(callId);
      }
      if (this.#hosted.size >= MAX_HOSTED) return false;
      h = this.#host(m);
    }
    if (m.mediaKey) h.mediaKeys.set(m.uid, m.mediaKey);
    const n = m.notice;
    if (n.order === "call") h.uids.add(m.uid);
    else if (n.order === "talk begin") h.talker = m.uid;
    const sent = this.#o.phones.send(m.uid, m.roomKey, n);
    if (n.order === "over" || n.order === "over success") {
      h.uids.delete(m.uid);
      if (h.talker === m.uid) h.talker = undefined;
    }
    return sent;
  }

  #host(m: NoticeMsg): Hosted {
    const mediaKeys = new Map<string, string>();
    const door: Peer = {
      hostname: `${REMOTE_DOOR_PREFIX}${m.call.callId}`,
      port: m.call.door.port,
    };
    const info: LiveCallInfo = {
      callId: m.call.callId,
      mediaKeyOf: (uid) => mediaKeys.get(uid),
      roomKey: m.call.roomKey,
      door,
      parties: m.call.parties,
      doorAddress: m.call.doorAddress,
    };
    const h: Hosted = {
      origin: m.origin,
      call: m.call,
      info,
      uids: new Set(),
      mediaKeys,
      talker: undefined,
      media: undefined,
    };
    this.#hosted.set(m.call.callId, h);
    this.#o.relay.open(info);
    const nc = this.#o.link.nc;
    if (nc) {
      const sub = nc.subscribe(`media.${m.call.callId}.down`);
      h.media = sub;
      this.#track(`media.${m.call.callId}.down`, async () => {
        for await (const d of sub) {
          this.counters.hostedIn++;
          this.#o.relay.onDoorMedia(d.data, door);
        }
      });
    }
    return h;
  }

  #onRoute(r: { callId: string; video: string[]; audioFrom?: string }): void {
    if (!this.#hosted.has(r.callId)) return;
    this.#o.relay.route(r.callId, r.video, r.audioFrom);
  }

  #closeHosted(callId: string): void {
    const h = this.#hosted.get(callId);
    if (!h) return;
    this.#hosted.delete(callId);
    h.media?.unsubscribe();
    this.#o.relay.close(callId);
  }

  #dropHosted(): void {
    for (const callId of [...this.#hosted.keys()]) this.#endHosted(callId);
  }

  /** Tells a hosted call's phones it is over, and closes it. */
  #endHosted(callId: string): void {
    const h = this.#hosted.get(callId);
    if (!h) return;
    for (const uid of h.uids) {
      this.#o.phones.send(uid, h.call.roomKey, {
        order: "over",
        reason: "door hung up",
        doorAddress: h.call.doorAddress,
        callId,
      } as CallNotice);
    }
    this.#closeHosted(callId);
  }

  /**
   * A gateway of the community fell silent (its presence expired: crashed, powered off, cut
   * from the hub): the calls it originated here are over, as no close will come for them.
   */
  originGone(gateway: string): void {
    for (const [callId, h] of [...this.#hosted]) if (h.origin === gateway) this.#endHosted(callId);
  }

  /** What the relay sends to a hosted call's stand-in door goes to the origin. */
  sendToRemoteDoor(bytes: Uint8Array, to: Peer): void {
    const callId = to.hostname.slice(REMOTE_DOOR_PREFIX.length);
    if (!this.#hosted.has(callId)) return;
    // A copy: the relay's bytes may live in a reused buffer.
    this.#o.link.nc?.publish(`media.${callId}.up`, bytes.slice());
  }

  #hostedOfRoom(roomKey: string): Hosted | undefined {
    for (const h of this.#hosted.values()) if (h.call.roomKey === roomKey) return h;
    return undefined;
  }

  /** The call layer as this gateway's phone service sees it: local calls, then hosted ones. */
  readonly control: Pick<CallControl, "phoneRequest" | "byRoom"> = {
    phoneRequest: (uid, roomKey, order, doorAddress, callId) => {
      const local = this.#o.calls();
      if (local.byRoom(roomKey)) {
        return local.phoneRequest(uid, roomKey, order, doorAddress, callId);
      }
      const h = this.#hostedOfRoom(roomKey);
      const nc = this.#o.link.nc;
      if (!h || !nc || (callId !== undefined && callId !== h.call.callId)) {
        return { ok: false, code: "not_in_call" };
      }
      const msg: RequestMsg = {
        uid,
        roomKey,
        order,
        ...(doorAddress !== undefined ? { doorAddress } : {}),
        callId: h.call.callId,
      };
      nc.request(callSubject(h.origin, "request"), enc(msg), { timeout: NOTICE_TIMEOUT_MS })
        .then((r) => {
          const res = r.json<RequestResult>();
          if (!res.ok) throw new Error(res.code);
        })
        .catch((e) => {
          this.#o.logger.info("cluster: a request to the door's gateway failed", {
            uid,
            order,
            callId: h.call.callId,
            error: e instanceof Error ? e.message : String(e),
          });
          this.#o.phones.send(uid, roomKey, {
            order: "error",
            code: "not_in_call",
            ref: order,
            doorAddress: h.call.doorAddress,
            callId: h.call.callId,
          });
        });
      return { ok: true, callId: h.call.callId };
    },
    byRoom: (roomKey) => {
      const local = this.#o.calls().byRoom(roomKey);
      if (local) return local;
      const h = this.#hostedOfRoom(roomKey);
      if (!h) return undefined;
      return {
        ...h.info,
        phase: h.talker ? "talking" : "ringing",
        ringing: [...h.uids].filter((u) => u !== h.talker),
        talker: h.talker,
      } as CallView;
    },
  };

  /** Unsubscribes. */
  async stop(): Promise<void> {
    this.#off?.();
    for (const h of this.#hosted.values()) h.media?.unsubscribe();
    for (const s of this.#subs) s.unsubscribe();
    await Promise.allSettled([...this.#loops]);
  }
}
