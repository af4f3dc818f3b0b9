/**
 * The phone protocol's messages (phone-protocol.md): order tables, message types and total
 * parsers, shared by the gateway and the phone simulator. Pure: no I/O, no `Deno`.
 *
 * - {@linkcode parsePhoneMessage}: a text frame from a phone → a typed message or a
 *   `bad_request` error ready to send back. Never throws.
 * - {@linkcode parseGatewayMessage}: a text frame from the gateway (used by the simulator to
 *   check what the gateway sends).
 * - {@linkcode parseMediaControl}: the UDP media-port control datagram
 *   `{"order":"enable_video","uid","callId","mediaKey"}`.
 *
 * Extra fields are allowed (the spec may add some) and dropped from the parsed result.
 *
 * @module
 */

import { OVER_REASON, type OverReason } from "../call/types.ts";

/** Orders a phone sends to the gateway. */
export const PHONE_ORDERS = {
  LOGIN: "login",
  HEARTBEAT: "heartbeat",
  CALL_OK: "call ok",
  ENABLE_VIDEO: "enable_video",
  TALK: "talk",
  UNLOCK: "unlock",
  OVER: "over",
  OVER_SUCCESS: "over success",
  DND: "dnd",
  PUSH_SUBSCRIBE: "push subscribe",
  PUSH_UNSUBSCRIBE: "push unsubscribe",
} as const;

/** A phone → gateway order. */
export type PhoneOrder = typeof PHONE_ORDERS[keyof typeof PHONE_ORDERS];

/** Orders the gateway sends to a phone. */
export const GATEWAY_ORDERS = {
  LOGIN_OK: "login ok",
  HEARTBEAT_OK: "heartbeat ok",
  CALL: "call",
  TALK_BEGIN: "talk begin",
  UNLOCK_SUCCESS: "unlock success",
  UNLOCK_FAIL: "unlock fail",
  OVER: "over",
  OVER_SUCCESS: "over success",
  ENABLE_VIDEO_OK: "enable_video ok",
  DND_OK: "dnd ok",
  PUSH_OK: "push ok",
  ERROR: "error",
} as const;

/** A gateway → phone order. */
export type GatewayOrder = typeof GATEWAY_ORDERS[keyof typeof GATEWAY_ORDERS];

/** Codes of the gateway's `error` message (phone-protocol.md row 10). */
export const ERROR_CODE = {
  BAD_REQUEST: "bad_request",
  UNAUTHORIZED: "unauthorized",
  LOGIN_REQUIRED: "login_required",
  NOT_BOUND: "not_bound",
  NOT_IN_CALL: "not_in_call",
  BUSY: "busy",
  RATE_LIMITED: "rate_limited",
  DOOR_TIMEOUT: "door_timeout",
} as const;

/** An error code. */
export type ErrorCode = typeof ERROR_CODE[keyof typeof ERROR_CODE];

/** The `message` sent with each error code (phone apps may show it). */
export const ERROR_TEXT: Readonly<Record<ErrorCode, string>> = {
  bad_request: "Cannot read the message",
  unauthorized: "Cannot log in: unknown uid, room or token",
  login_required: "Cannot do that before login",
  not_bound: "Cannot do that: this phone is not bound to that room",
  not_in_call: "Cannot do that: the room is not in a call with that door",
  busy: "Cannot talk: another phone answered first",
  rate_limited: "Cannot do that now: too many attempts, wait a little",
  door_timeout: "Cannot reach the door: it did not answer",
};

// Why the gateway ends a phone's call with `over` (row 9): defined once, with the call's data.
export { OVER_REASON, type OverReason };

/** How door media reaches a phone: its UDP media socket or binary frames on the WebSocket. */
export const MEDIA_TRANSPORT = { UDP: "udp", WS: "ws" } as const;

/** A media transport. */
export type MediaTransport = typeof MEDIA_TRANSPORT[keyof typeof MEDIA_TRANSPORT];

/** The G.711 law of a door's audio, as `call` and `talk begin` name it (`audioLaw`). */
export const AUDIO_LAW = { ULAW: "ulaw", ALAW: "alaw" } as const;

/** An audio law. */
export type AudioLaw = typeof AUDIO_LAW[keyof typeof AUDIO_LAW];

/**
 * Video codecs a phone may list in `enable_video`'s `codecs` (what it can decode): JPEG frames
 * (MJPEG doors), H.264 (Annex B), MPEG-4 Part 2. Other names are accepted and ignored.
 */
export const VIDEO_CODEC = { JPEG: "jpeg", H264: "h264", MPEG4: "mpeg4" } as const;

/** A video codec name. */
export type VideoCodec = typeof VIDEO_CODEC[keyof typeof VIDEO_CODEC];

/** Latest `until` of a `dnd` order the gateway keeps, from now: 7 days (later is cut to it). */
export const MAX_DND_MS = 7 * 24 * 3600 * 1000;

/** Largest text frame (UTF-8 bytes) a phone may send; larger is `bad_request`. */
export const MAX_MESSAGE_BYTES = 4096;

/** Largest UDP media-control datagram (bytes). */
export const MAX_MEDIA_CONTROL_BYTES = 512;

/** Field limits checked by the parsers. */
export const FIELD_LIMITS = {
  UID: 64,
  TOKEN: 256,
  COMMUNITY: 64,
  CALL_ID: 64,
  MEDIA_KEY: 128,
  REASON: 256,
  MESSAGE: 1024,
  /** Entries of `enable_video`'s `codecs`, and characters of each. */
  CODECS: 8,
  CODEC_NAME: 16,
  /** A Web Push endpoint URL (`push subscribe`). */
  ENDPOINT: 1024,
  /** base64url of the subscription's P-256 key (87 characters) and auth secret (22). */
  PUSH_KEY: 128,
} as const;

/** Phone-side room address: a letter and the 11-digit room key (`Y00010108090`). */
export const ROOM_ADDRESS_RE: RegExp = /^[A-Za-z]\d{11}$/;

/** Door address as phones see it: a letter and up to 19 letters or digits (`M00010100`). */
export const DOOR_ADDRESS_RE: RegExp = /^[A-Za-z][A-Za-z0-9]{0,19}$/;

/** Fields every phone message carries (seed). */
export interface PhoneIdentity {
  uid: string;
  roomAddress: string;
  community: string;
}

/** Fields of call-related messages (both directions). */
export interface CallFields {
  doorAddress: string;
  /** Always set by the gateway; optional from phones. */
  callId?: string;
}

/** `login`: the first message of a phone. */
export interface LoginMessage extends PhoneIdentity {
  order: "login";
  token: string;
}

/** `heartbeat`: at least every 2 s. */
export interface HeartbeatMessage extends Partial<PhoneIdentity> {
  order: "heartbeat";
}

/** `call ok`: the phone rings. */
export interface CallOkMessage extends PhoneIdentity, CallFields {
  order: "call ok";
}

/** `enable_video`: start forwarding the door's media to this phone. */
export interface EnableVideoMessage extends PhoneIdentity, CallFields {
  order: "enable_video";
  /** Defaults to `udp` when absent. */
  transport: MediaTransport;
  /**
   * The video codecs the phone decodes (`jpeg`, `h264`, `mpeg4`); absent: the door's stream as it
   * is. When the door's codec is not listed, the gateway converts its video to `jpeg` if it can.
   */
  codecs?: string[];
}

/** `talk`: answer. */
export interface TalkMessage extends PhoneIdentity, CallFields {
  order: "talk";
}

/** `unlock`: open the door's lock. */
export interface UnlockMessage extends PhoneIdentity, CallFields {
  order: "unlock";
}

/** `over` from a phone: hang up (or decline while ringing). */
export interface PhoneOverMessage extends PhoneIdentity, CallFields {
  order: "over";
}

/** `over success` from a phone: answer to a gateway `over`. */
export interface PhoneOverSuccessMessage extends PhoneIdentity, CallFields {
  order: "over success";
}

/** `dnd`: do not disturb this phone for the room until `until` (epoch ms; 0 or past: off). */
export interface DndMessage extends PhoneIdentity {
  order: "dnd";
  until: number;
}

/**
 * `push subscribe`: wake this phone for the room by Web Push while it sleeps (the fields of
 * `PushSubscription.toJSON()`: `endpoint`, `keys.p256dh`, `keys.auth`).
 */
export interface PushSubscribeMessage extends PhoneIdentity {
  order: "push subscribe";
  endpoint: string;
  p256dh: string;
  auth: string;
}

/** `push unsubscribe`: forget the subscription of `endpoint` for the room. */
export interface PushUnsubscribeMessage extends PhoneIdentity {
  order: "push unsubscribe";
  endpoint: string;
}

/** Any phone → gateway message. */
export type PhoneMessage =
  | LoginMessage
  | HeartbeatMessage
  | DndMessage
  | PushSubscribeMessage
  | PushUnsubscribeMessage
  | CallOkMessage
  | EnableVideoMessage
  | TalkMessage
  | UnlockMessage
  | PhoneOverMessage
  | PhoneOverSuccessMessage;

/** Phone messages that name a call (carry `doorAddress`). */
export type PhoneCallMessage = Exclude<
  PhoneMessage,
  LoginMessage | HeartbeatMessage | DndMessage | PushSubscribeMessage | PushUnsubscribeMessage
>;

/** Identity fields the gateway may echo on messages that are not call-related. */
export type OptionalIdentity = Partial<PhoneIdentity>;

/** Fields of call-related gateway messages: identity, door and the call's id (always). */
export interface GatewayCallFields extends PhoneIdentity {
  doorAddress: string;
  callId: string;
}

/** `login ok`. */
export interface LoginOkMessage extends OptionalIdentity {
  order: "login ok";
  /** Seconds between heartbeats the gateway expects. */
  heartbeatInterval: number;
  /** The gateway's UDP media port (8303). */
  mediaPort: number;
  /** The gateway's VAPID public key (base64url): the web app's `applicationServerKey`. */
  vapidPublicKey?: string;
}

/** `heartbeat ok`. */
export interface HeartbeatOkMessage extends OptionalIdentity {
  order: "heartbeat ok";
}

/** `call`: a door calls the room. */
export interface CallMessage extends GatewayCallFields {
  order: "call";
  /** Secret of this call's media, for the UDP control datagram. */
  mediaKey: string;
  /** The door's G.711 law (μ-law unless the door registry knows better). */
  audioLaw?: AudioLaw;
}

/** `talk begin`: the door accepted CALLSTART; audio flows. */
export interface TalkBeginMessage extends GatewayCallFields {
  order: "talk begin";
  /** The door's G.711 law, as in `call`. */
  audioLaw?: AudioLaw;
}

/** `unlock success`. */
export interface UnlockSuccessMessage extends GatewayCallFields {
  order: "unlock success";
}

/** `unlock fail`. */
export interface UnlockFailMessage extends GatewayCallFields {
  order: "unlock fail";
  reason: string;
}

/** `over` from the gateway: the call ended elsewhere. */
export interface GatewayOverMessage extends GatewayCallFields {
  order: "over";
  reason: OverReason;
}

/** `over success` from the gateway: the phone's hang-up went through. */
export interface GatewayOverSuccessMessage extends GatewayCallFields {
  order: "over success";
}

/** `enable_video ok` on the signalling socket (WS transport). */
export interface EnableVideoOkMessage extends OptionalIdentity {
  order: "enable_video ok";
  transport?: MediaTransport;
  callId?: string;
  doorAddress?: string;
}

/** `dnd ok`: the do-not-disturb time the gateway keeps for the room (0: off). */
export interface DndOkMessage extends OptionalIdentity {
  order: "dnd ok";
  until: number;
}

/** `push ok`: the subscription is kept (`subscribed: true`) or forgotten (`false`). */
export interface PushOkMessage extends OptionalIdentity {
  order: "push ok";
  subscribed: boolean;
  endpoint?: string;
  /** Subscriptions the gateway now keeps for this phone and room. */
  count?: number;
}

/** What an `error` message carries. */
export interface PhoneProtocolError {
  code: ErrorCode;
  message: string;
  /** The order the error answers, when known. */
  ref?: string;
}

/** `error`. */
export interface ErrorMessage extends PhoneProtocolError, OptionalIdentity {
  order: "error";
}

/** Any gateway → phone message. */
export type GatewayMessage =
  | LoginOkMessage
  | HeartbeatOkMessage
  | CallMessage
  | TalkBeginMessage
  | UnlockSuccessMessage
  | UnlockFailMessage
  | GatewayOverMessage
  | GatewayOverSuccessMessage
  | EnableVideoOkMessage
  | DndOkMessage
  | PushOkMessage
  | ErrorMessage;

/** The parsers' failure: always `bad_request`, `ref` = the order when known. */
export interface BadRequest {
  error: { code: "bad_request"; message: string; ref?: string };
}

/** The UDP control datagram a phone sends to the media port (and repeats every 2 s). */
export interface MediaControl {
  order: "enable_video";
  uid: string;
  callId: string;
  mediaKey: string;
}

// ---------------------------------------------------------------------------------------------
// Field checks: each returns a problem ("must be …") or undefined.

type Check = (v: unknown) => string | undefined;

const str = (min: number, max: number): Check => (v) =>
  typeof v !== "string"
    ? `must be a string, got ${typeName(v)}`
    : v.length < min || v.length > max
    ? (min === 0
      ? `must be at most ${max} characters, got ${v.length}`
      : `must be a string of ${min}–${max} characters, got ${v.length}`)
    : undefined;

const pattern = (re: RegExp, what: string): Check => (v) =>
  typeof v !== "string"
    ? `must be a string, got ${typeName(v)}`
    : re.test(v)
    ? undefined
    : `must be ${what}, got ${JSON.stringify(v.slice(0, 32))}`;

const oneOf = (values: readonly string[]): Check => (v) =>
  typeof v === "string" && values.includes(v)
    ? undefined
    : `must be one of ${values.map((x) => JSON.stringify(x)).join(", ")}, got ${
      typeof v === "string" ? JSON.stringify(v.slice(0, 32)) : typeName(v)
    }`;

const num = (min: number, max: number, integer: boolean): Check => (v) =>
  typeof v !== "number" || !Number.isFinite(v)
    ? `must be a number, got ${typeName(v)}`
    : (integer && !Number.isInteger(v)) || v < min || v > max
    ? `must be ${integer ? "an integer" : "a number"} in ${min}–${max}, got ${v}`
    : undefined;

const codecList: Check = (v) => {
  if (!Array.isArray(v)) return `must be an array of codec names, got ${typeName(v)}`;
  if (v.length > FIELD_LIMITS.CODECS) {
    return `must list at most ${FIELD_LIMITS.CODECS} codecs, got ${v.length}`;
  }
  const bad = v.find((c) =>
    typeof c !== "string" || c.length < 1 || c.length > FIELD_LIMITS.CODEC_NAME
  );
  return bad === undefined
    ? undefined
    : `must hold strings of 1–${FIELD_LIMITS.CODEC_NAME} characters, got ${
      typeof bad === "string" ? JSON.stringify(bad.slice(0, 32)) : typeName(bad)
    }`;
};

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : typeof v;
}

const FIELD = {
  uid: str(1, FIELD_LIMITS.UID),
  token: str(1, FIELD_LIMITS.TOKEN),
  roomAddress: pattern(ROOM_ADDRESS_RE, "a letter followed by 11 digits"),
  community: str(0, FIELD_LIMITS.COMMUNITY),
  doorAddress: pattern(DOOR_ADDRESS_RE, "a letter followed by up to 19 letters or digits"),
  callId: str(1, FIELD_LIMITS.CALL_ID),
  mediaKey: str(1, FIELD_LIMITS.MEDIA_KEY),
  transport: oneOf(Object.values(MEDIA_TRANSPORT)),
  codecs: codecList,
  audioLaw: oneOf(Object.values(AUDIO_LAW)),
  until: num(0, Number.MAX_SAFE_INTEGER, true),
  heartbeatInterval: num(0.001, 3600, false),
  mediaPort: num(0, 65535, true),
  overReason: oneOf(Object.values(OVER_REASON)),
  reason: str(0, FIELD_LIMITS.REASON),
  code: oneOf(Object.values(ERROR_CODE)),
  message: str(0, FIELD_LIMITS.MESSAGE),
  ref: str(0, 64),
  endpoint: str(1, FIELD_LIMITS.ENDPOINT),
  pushKey: str(1, FIELD_LIMITS.PUSH_KEY),
  vapidPublicKey: str(1, FIELD_LIMITS.PUSH_KEY),
  subscribed: (v: unknown) =>
    typeof v === "boolean" ? undefined : `must be a boolean, got ${typeName(v)}`,
  count: num(0, 1000, true),
} as const;

/** Field name on the wire → its check. */
type FieldSpec = Readonly<Record<string, Check>>;

interface OrderSpec {
  readonly required: FieldSpec;
  readonly optional: FieldSpec;
}

const IDENTITY: FieldSpec = {
  uid: FIELD.uid,
  roomAddress: FIELD.roomAddress,
  community: FIELD.community,
};
const PHONE_CALL: FieldSpec = { ...IDENTITY, doorAddress: FIELD.doorAddress };
const CALL_ID: FieldSpec = { callId: FIELD.callId };

/** What each phone order must and may carry. */
const PHONE_SPEC: Readonly<Record<PhoneOrder, OrderSpec>> = {
  "login": { required: { ...IDENTITY, token: FIELD.token }, optional: {} },
  // Lenient on purpose: a heartbeat only proves presence; the session already knows who it is.
  "heartbeat": { required: {}, optional: IDENTITY },
  "call ok": { required: PHONE_CALL, optional: CALL_ID },
  "enable_video": {
    required: PHONE_CALL,
    optional: { ...CALL_ID, transport: FIELD.transport, codecs: FIELD.codecs },
  },
  "talk": { required: PHONE_CALL, optional: CALL_ID },
  "unlock": { required: PHONE_CALL, optional: CALL_ID },
  "over": { required: PHONE_CALL, optional: CALL_ID },
  "over success": { required: PHONE_CALL, optional: CALL_ID },
  "dnd": { required: { ...IDENTITY, until: FIELD.until }, optional: {} },
  "push subscribe": {
    required: { ...IDENTITY, endpoint: FIELD.endpoint, p256dh: FIELD.pushKey, auth: FIELD.pushKey },
    optional: {},
  },
  "push unsubscribe": { required: { ...IDENTITY, endpoint: FIELD.endpoint }, optional: {} },
};

const GW_CALL: FieldSpec = { ...PHONE_CALL, callId: FIELD.callId };
const OPTIONAL_IDENTITY: FieldSpec = IDENTITY;

/** What each gateway order must and may carry. */
const GATEWAY_SPEC: Readonly<Record<GatewayOrder, OrderSpec>> = {
  "login ok": {
    required: { heartbeatInterval: FIELD.heartbeatInterval, mediaPort: FIELD.mediaPort },
    optional: { ...OPTIONAL_IDENTITY, vapidPublicKey: FIELD.vapidPublicKey },
  },
  "heartbeat ok": { required: {}, optional: OPTIONAL_IDENTITY },
  "call": {
    required: { ...GW_CALL, mediaKey: FIELD.mediaKey },
    optional: { audioLaw: FIELD.audioLaw },
  },
  "talk begin": { required: GW_CALL, optional: { audioLaw: FIELD.audioLaw } },
  "unlock success": { required: GW_CALL, optional: {} },
  "unlock fail": { required: { ...GW_CALL, reason: FIELD.reason }, optional: {} },
  "over": { required: { ...GW_CALL, reason: FIELD.overReason }, optional: {} },
  "over success": { required: GW_CALL, optional: {} },
  "enable_video ok": {
    required: {},
    optional: {
      ...OPTIONAL_IDENTITY,
      transport: FIELD.transport,
      callId: FIELD.callId,
      doorAddress: FIELD.doorAddress,
    },
  },
  "dnd ok": { required: { until: FIELD.until }, optional: OPTIONAL_IDENTITY },
  "push ok": {
    required: { subscribed: FIELD.subscribed },
    optional: { ...OPTIONAL_IDENTITY, endpoint: FIELD.endpoint, count: FIELD.count },
  },
  "error": {
    required: { code: FIELD.code, message: FIELD.message },
    optional: { ...OPTIONAL_IDENTITY, ref: FIELD.ref },
  },
};

const MEDIA_CONTROL_SPEC: OrderSpec = {
  required: { uid: FIELD.uid, callId: FIELD.callId, mediaKey: FIELD.mediaKey },
  optional: {},
};

const PHONE_ORDER_LIST: readonly string[] = Object.values(PHONE_ORDERS);
const GATEWAY_ORDER_LIST: readonly string[] = Object.values(GATEWAY_ORDERS);

function bad(message: string, ref?: string): BadRequest {
  return ref === undefined
    ? { error: { code: "bad_request", message } }
    : { error: { code: "bad_request", message, ref } };
}

/** Internal failure wrapper: JSON input can never produce an instance of it. */
class Failure {
  constructor(readonly result: BadRequest) {}
}

function fail(message: string, ref?: string): Failure {
  return new Failure(bad(message, ref));
}

/** UTF-8 length of `text`, stopping early once it exceeds `limit`. */
function utf8Exceeds(text: string, limit: number): boolean {
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
    if (bytes > limit) return true;
  }
  return false;
}

/** Parses JSON text into a plain object, or explains why not. */
function parseObject(text: string): Record<string, unknown> | Failure {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail("message is not valid JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return fail(`message must be a JSON object, got ${typeName(value)}`);
  }
  return value as Record<string, unknown>;
}

/** Checks `obj` against `spec`, copying only the known fields. */
function pick(
  obj: Record<string, unknown>,
  order: string,
  spec: OrderSpec,
  what: string,
): Record<string, unknown> | Failure {
  const out: Record<string, unknown> = { order };
  // for-in over the spec's own literal: no entries array per message.
  for (const name in spec.required) {
    const check = spec.required[name]!;
    if (!Object.hasOwn(obj, name) || obj[name] === undefined) {
      return fail(`${what} "${order}": missing field "${name}"`, order);
    }
    const problem = check(obj[name]);
    if (problem) return fail(`${what} "${order}": field "${name}" ${problem}`, order);
    out[name] = obj[name];
  }
  for (const name in spec.optional) {
    const check = spec.optional[name]!;
    if (!Object.hasOwn(obj, name) || obj[name] === undefined || obj[name] === null) continue;
    const problem = check(obj[name]);
    if (problem) return fail(`${what} "${order}": field "${name}" ${problem}`, order);
    out[name] = obj[name];
  }
  return out;
}

function readOrder(
  obj: Record<string, unknown>,
  known: readonly string[],
  who: string,
): string | Failure {
  const order = obj.order;
  if (order === undefined) return fail(`message has no "order"`);
  if (typeof order !== "string") return fail(`"order" must be a string, got ${typeName(order)}`);
  if (!known.includes(order)) {
    const shown = order.length > 32 ? `${order.slice(0, 32)}…` : order;
    return fail(
      `unknown order ${JSON.stringify(shown)} (${who} orders: ${known.join(", ")})`,
      order.slice(0, 32),
    );
  }
  return order;
}

function isBad(v: unknown): v is Failure {
  return v instanceof Failure;
}

/**
 * Parses one text frame from a phone. Never throws: anything that is not a well-formed phone
 * message (not JSON, not an object, no or unknown `order`, a missing or wrong-typed field,
 * larger than {@linkcode MAX_MESSAGE_BYTES}) yields a `bad_request` with a readable message and
 * `ref` = the order when it is known.
 *
 * @example
 * ```ts
 * const m = parsePhoneMessage(frame);
 * if ("error" in m) ws.send(JSON.stringify({ order: "error", ...m.error }));
 * else if (m.order === "talk") startTalk(m.doorAddress, m.callId);
 * ```
 */
export function parsePhoneMessage(text: string): PhoneMessage | BadRequest {
  if (typeof text !== "string") return bad("message must be a text frame");
  if (utf8Exceeds(text, MAX_MESSAGE_BYTES)) {
    return bad(`message is larger than ${MAX_MESSAGE_BYTES} bytes`);
  }
  const obj = parseObject(text);
  if (isBad(obj)) return obj.result;
  const order = readOrder(obj, PHONE_ORDER_LIST, "phone");
  if (typeof order !== "string") return order.result;
  const out = pick(obj, order, PHONE_SPEC[order as PhoneOrder], "order");
  if (isBad(out)) return out.result;
  if (order === PHONE_ORDERS.ENABLE_VIDEO && out.transport === undefined) {
    out.transport = MEDIA_TRANSPORT.UDP;
  }
  return out as unknown as PhoneMessage;
}

/**
 * Parses one text frame from the gateway, as strictly as {@linkcode parsePhoneMessage} (the
 * simulator uses it to check the gateway against the spec). Never throws.
 */
export function parseGatewayMessage(text: string): GatewayMessage | BadRequest {
  if (typeof text !== "string") return bad("message must be a text frame");
  if (utf8Exceeds(text, MAX_MESSAGE_BYTES)) {
    return bad(`message is larger than ${MAX_MESSAGE_BYTES} bytes`);
  }
  const obj = parseObject(text);
  if (isBad(obj)) return obj.result;
  const order = readOrder(obj, GATEWAY_ORDER_LIST, "gateway");
  if (typeof order !== "string") return order.result;
  const out = pick(obj, order, GATEWAY_SPEC[order as GatewayOrder], "order");
  if (isBad(out)) return out.result;
  return out as unknown as GatewayMessage;
}

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();
const OPEN_BRACE = 0x7b;

/**
 * Parses a datagram received on the media port as the control datagram
 * `{"order":"enable_video","uid":…,"callId":…,"mediaKey":…}`. Never throws. Cheap for media:
 * anything not starting with `{` is rejected after one byte.
 */
export function parseMediaControl(bytes: Uint8Array): MediaControl | BadRequest {
  if (bytes.length === 0 || bytes[0] !== OPEN_BRACE) {
    return bad("datagram is not a JSON control message");
  }
  if (bytes.length > MAX_MEDIA_CONTROL_BYTES) {
    return bad(`control datagram is larger than ${MAX_MEDIA_CONTROL_BYTES} bytes`);
  }
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return bad("control datagram is not valid UTF-8");
  }
  const obj = parseObject(text);
  if (isBad(obj)) return obj.result;
  const order = readOrder(obj, [PHONE_ORDERS.ENABLE_VIDEO], "media-port");
  if (typeof order !== "string") return order.result;
  const out = pick(obj, order, MEDIA_CONTROL_SPEC, "control datagram");
  if (isBad(out)) return out.result;
  return out as unknown as MediaControl;
}

/** Encodes the UDP control datagram (phone side). */
export function encodeMediaControl(c: Omit<MediaControl, "order">): Uint8Array {
  return encoder.encode(
    JSON.stringify({
      order: PHONE_ORDERS.ENABLE_VIDEO,
      uid: c.uid,
      callId: c.callId,
      mediaKey: c.mediaKey,
    }),
  );
}

/** The gateway's answer to a valid control datagram: `{"order":"enable_video ok"}`. */
export const MEDIA_CONTROL_OK: Uint8Array = encoder.encode(
  JSON.stringify({ order: GATEWAY_ORDERS.ENABLE_VIDEO_OK }),
);

/** True when a datagram is the gateway's `{"order":"enable_video ok"}` (extra fields allowed). */
export function isMediaControlOk(bytes: Uint8Array): boolean {
  if (bytes.length === 0 || bytes[0] !== OPEN_BRACE || bytes.length > MAX_MEDIA_CONTROL_BYTES) {
    return false;
  }
  try {
    const v: unknown = JSON.parse(decoder.decode(bytes));
    return typeof v === "object" && v !== null &&
      (v as Record<string, unknown>).order === GATEWAY_ORDERS.ENABLE_VIDEO_OK;
  } catch {
    return false;
  }
}

/** True when the order names a call (carries `doorAddress`) on the phone side. */
export function isPhoneCallMessage(m: PhoneMessage): m is PhoneCallMessage {
  return m.order !== PHONE_ORDERS.LOGIN && m.order !== PHONE_ORDERS.HEARTBEAT &&
    m.order !== PHONE_ORDERS.DND && m.order !== PHONE_ORDERS.PUSH_SUBSCRIBE &&
    m.order !== PHONE_ORDERS.PUSH_UNSUBSCRIBE;
}

/** Builds the `error` message the gateway sends back. */
export function errorMessage(code: ErrorCode, message: string, ref?: string): ErrorMessage {
  return ref === undefined ? { order: "error", code, message } : {
    order: "error",
    code,
    message,
    ref,
  };
}
