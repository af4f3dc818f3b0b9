/**
 * The gateway's domain events: one typed stream of what happens. Producers (door transport,
 * call manager, phone hub and service, media relay, binding watcher) emit; records, metrics, logs
 * and later the console, push and cluster subscribe. Times are epoch ms from the injected clock.
 *
 * Never on the media fast path: the relay emits once per call at most.
 *
 * @module
 */

import type { EndReason } from "../call/types.ts";

/** An end reason of a call. */
export type CallEndReason = EndReason;

/** Why a CALL was refused before a call existed. */
export type RefuseReason = "not_a_room" | "busy";

/** Outcomes of an unlock attempt (the audit's `result`). */
export type UnlockOutcome =
  | "success"
  | "fail"
  | "not_bound"
  | "not_in_call"
  | "rate_limited";

/** Door packet header form: payload at byte 77 or 86. */
export type HeaderForm = 77 | 86;

/** Everything the gateway reports. */
export type GatewayEvent =
  | {
    /** A door was heard (first contact, a new IP, or at most every few seconds after). */
    readonly type: "door_seen";
    readonly at: number;
    readonly address: string;
    readonly ip: string;
  }
  | {
    /**
     * A known door's address claimed from a second IP while the door is pinned or its own IP is
     * active: refused (a spoofed door, or a replaced one that needs `door forget`). Throttled
     * per address and claimed IP.
     */
    readonly type: "door_conflict";
    readonly at: number;
    /** The door address, display form. */
    readonly address: string;
    /** The IP the registry holds for it. */
    readonly knownIp: string;
    /** The IP the packet came from. */
    readonly claimedIp: string;
  }
  | {
    /** A door's media header form (and audio law, when known), learned once per call. */
    readonly type: "door_media";
    readonly at: number;
    readonly address: string;
    readonly ip: string;
    readonly headerForm: HeaderForm;
  }
  | {
    /** A door datagram (signalling only), for a live trace. Emitted only while someone listens. */
    readonly type: "door_trace";
    readonly at: number;
    readonly direction: "in" | "out";
    readonly peer: string;
    /** One decoded line, e.g. `ASK CALL M00010100 → S00010108090`. */
    readonly summary: string;
    readonly length: number;
  }
  | {
    /**
     * A phone order (a JSON text frame of its WebSocket), for a live trace. Emitted only while
     * someone listens. The summary never holds a token or media key.
     */
    readonly type: "phone_trace";
    readonly at: number;
    readonly direction: "in" | "out";
    /** The phone's IP. */
    readonly peer: string;
    /** The session's uid, once logged in. */
    readonly uid: string | undefined;
    /** One line, e.g. `call ok uid=… room=Y00010108090 door=M00010100`. */
    readonly summary: string;
    readonly length: number;
  }
  | {
    /** A door's NS ask left unanswered: no phone of the room is online (throttled per door and room). */
    readonly type: "ns_unanswered";
    readonly at: number;
    readonly doorAddress: string;
    readonly doorIp: string;
    readonly roomKey: string;
  }
  | {
    /** A door's CALL refused at once (LINEUSE, no call). */
    readonly type: "call_refused";
    readonly at: number;
    readonly doorAddress: string;
    readonly doorIp: string;
    readonly roomAddress: string;
    readonly reason: RefuseReason;
  }
  | {
    readonly type: "call_started";
    readonly at: number;
    readonly callId: string;
    readonly doorAddress: string;
    readonly doorIp: string;
    readonly roomAddress: string;
    readonly roomKey: string;
    /**
     * Set when no phone of the room was online but push may wake one: the epoch ms until which
     * the call waits for a phone to connect (the wake window).
     */
    readonly wakeBy?: number;
  }
  | {
    readonly type: "call_phase";
    readonly at: number;
    readonly callId: string;
    readonly from: string;
    readonly to: string;
    /** The machine event that moved it. */
    readonly cause: string;
  }
  | {
    /** The first `call ok`: the door got CALLANSWER. */
    readonly type: "call_answered";
    readonly at: number;
    readonly callId: string;
    readonly uid: string;
  }
  | {
    /** The first `talk`. */
    readonly type: "call_talk";
    readonly at: number;
    readonly callId: string;
    readonly uid: string;
  }
  | {
    readonly type: "call_ended";
    readonly at: number;
    readonly callId: string;
    readonly roomKey: string;
    readonly reason: CallEndReason;
  }
  | {
    readonly type: "phone_joined";
    readonly at: number;
    readonly uid: string;
    readonly roomKey: string;
    readonly ip: string;
    readonly transport: "ws";
  }
  | {
    readonly type: "phone_left";
    readonly at: number;
    readonly uid: string;
    readonly rooms: readonly string[];
    readonly why: string;
  }
  | {
    /** Every unlock attempt, refused ones included. */
    readonly type: "unlock_attempted";
    readonly at: number;
    readonly uid: string;
    readonly roomAddress: string;
    readonly doorAddress: string;
    readonly result: UnlockOutcome;
    readonly callId?: string;
    readonly reason?: string;
    readonly ip?: string;
  }
  | {
    /**
     * Learned from a call: the door ignored REMOTEOPENLOCK until CALLSTART, so its unlocks now
     * send CALLSTART first. Emitted once per door (while the gateway remembers it).
     */
    readonly type: "door_quirk";
    readonly at: number;
    readonly address: string;
    readonly ip: string;
    readonly needsTalkForUnlock: true;
  }
  | {
    readonly type: "binding_added";
    readonly at: number;
    readonly uid: string;
    readonly roomKey: string;
  }
  | {
    /** A binding was removed or its token rotated: the uid's sessions of the room must end. */
    readonly type: "binding_removed";
    readonly at: number;
    readonly uid: string;
    readonly roomKey: string;
    readonly rotated: boolean;
  }
  | {
    /**
     * The community link changed (`--cluster`): `leaf` is this box's NATS leaf node, `hub` the
     * office's JetStream cluster behind it. Down means this gateway works on its own.
     */
    readonly type: "cluster_link";
    readonly at: number;
    readonly part: "leaf" | "hub";
    readonly up: boolean;
    readonly detail?: string;
  };

/** An event type tag. */
export type GatewayEventType = GatewayEvent["type"];

/** The event of type `T`. */
export type EventOf<T extends GatewayEventType> = Extract<GatewayEvent, { type: T }>;
