/**
 * What the phone service needs from bindings, media and rate limiting: types only, owned here
 * because the phone service is their user (implemented by `store/bindings.ts`,
 * `media/relay.ts` and `phone/limiter.ts`).
 *
 * @module
 */

/** Binding checks (implemented by `BindingStore`). */
export interface BindingCheck {
  /** The binding (with the id of its token) when `token` is current, else undefined. */
  verify(
    uid: string,
    roomAddress: string,
    token: string,
  ): Promise<{ readonly tokenId?: string } | undefined>;
  isBound(uid: string, roomKey: string): Promise<boolean>;
  /** The id of the binding's current token, or undefined when unbound. */
  tokenIdOf?(uid: string, roomKey: string): Promise<string | undefined>;
  /** The rooms (keys) `uid` is bound to (explains a refused login). */
  roomsOf?(uid: string): Promise<string[]>;
}

/** Media attachment of a phone on its signalling socket (WebSocket transport). */
export interface PhoneMedia {
  /**
   * Starts sending the call's door media to this phone over `send` while `isOpen` (its
   * WebSocket); false if not allowed. `codecs`: the video codecs the phone decodes
   * (`enable_video`'s `codecs`), when it said.
   */
  enableWs(
    callId: string,
    uid: string,
    send: (bytes: Uint8Array) => void,
    isOpen?: () => boolean,
    codecs?: readonly string[],
  ): boolean;
  /** Phone audio arriving as a binary frame. */
  wsAudio(uid: string, bytes: Uint8Array): void;
  /** The phone asked for UDP media: the relay may force an I-frame once it latches. */
  enableUdp?(callId: string, uid: string): void;
  /** Stops all media of `uid` in a call (its binding was removed). */
  detach?(callId: string, uid: string): void;
}

/** A rate limiter keyed by strings (per uid, per IP). */
export interface Limiter {
  /** True when one more attempt of `kind` by `key` is allowed now (and counts it). */
  take(kind: "login" | "unlock", key: string): boolean;
  /** Un-counts an attempt that turned out not to count (a login whose token was right). */
  refund(kind: "login" | "unlock", key: string): void;
}

/** A Web Push subscription as a phone sends it (`push subscribe`). */
export interface PhonePushSubscription {
  readonly endpoint: string;
  readonly p256dh: string;
  readonly auth: string;
}

/** What a push registration answers. */
export type PushRegistration =
  | { readonly ok: true; readonly count: number }
  | { readonly ok: false; readonly code: "bad_request" | "not_bound"; readonly message: string };

/** Web Push subscriptions of phones (implemented in `app.ts` over the subscription store). */
export interface PushRegistry {
  /** The gateway's VAPID public key (base64url), told to phones in `login ok`. */
  readonly publicKey: string;
  /** Keeps `sub` for the binding; `tokenId`: the token the session logged in with. */
  subscribe(
    uid: string,
    roomKey: string,
    tokenId: string | undefined,
    sub: PhonePushSubscription,
  ): Promise<PushRegistration>;
  /** Forgets the subscription of `endpoint`; resolves to the subscriptions left. */
  unsubscribe(uid: string, roomKey: string, endpoint: string): Promise<number>;
}
