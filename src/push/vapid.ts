/**
 * VAPID (RFC 8292): the gateway identifies itself to a push service with an ES256-signed JWT
 * and its public key, `Authorization: vapid t=<JWT>, k=<public key>`. The web app subscribes
 * with the same public key (`applicationServerKey`), so only this gateway can push to it.
 *
 * Keys: an ECDSA P-256 pair made on first start and kept in the store ({@linkcode
 * ../store/vapid_keys.ts}); the public key travels as the uncompressed point in base64url.
 *
 * The claims are pure ({@linkcode vapidClaims}); signing needs only WebCrypto.
 *
 * @module
 */

import { b64u, fromB64u } from "./web_push_crypto.ts";

/** The gateway's VAPID key pair. */
export interface VapidKeys {
  /** The uncompressed P-256 public point (65 bytes) in base64url: `applicationServerKey`. */
  readonly publicKey: string;
  /** The private key, for ES256. */
  readonly privateKey: CryptoKey;
}

/** What is kept in the store: the JWK of the private key (it holds the public point too). */
export interface StoredVapidKeys {
  readonly publicKey: string;
  readonly privateJwk: JsonWebKey;
  /** ISO 8601. */
  readonly createdAt: string;
}

/** A token is valid this long (RFC 8292 §2: at most 24 hours). */
export const VAPID_TOKEN_SECONDS = 12 * 3600;

/** The JWT claims of a push to `endpoint`: its origin, an expiry, the contact. */
export interface VapidClaims {
  readonly aud: string;
  readonly exp: number;
  readonly sub: string;
}

/**
 * The claims for a push request: `aud` the origin of the endpoint, `exp` `nowSeconds` +
 * {@linkcode VAPID_TOKEN_SECONDS}, `sub` the operator's contact (`mailto:` or `https:`).
 */
export function vapidClaims(endpoint: string, subject: string, nowSeconds: number): VapidClaims {
  return {
    aud: new URL(endpoint).origin,
    exp: Math.floor(nowSeconds) + VAPID_TOKEN_SECONDS,
    sub: subject,
  };
}

const enc = new TextEncoder();
const JWT_HEADER = b64u(enc.encode(JSON.stringify({ typ: "JWT", alg: "ES256" })));

/** Makes a new key pair (extractable: it is stored). */
export async function generateVapidKeys(): Promise<StoredVapidKeys> {
  const pair = await crypto.subtle.generateKey(
    { name: "ECDSA", namedCurve: "P-256" },
    true,
    ["sign", "verify"],
  ) as CryptoKeyPair;
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return {
    publicKey: b64u(raw),
    privateJwk: await crypto.subtle.exportKey("jwk", pair.privateKey),
    createdAt: new Date().toISOString(),
  };
}

/**
 * The usable keys of a stored pair.
 *
 * @throws {Error} "Cannot use the VAPID keys: …" when the stored value is not a P-256 pair whose
 *   public key matches.
 */
export async function importVapidKeys(stored: StoredVapidKeys): Promise<VapidKeys> {
  const jwk = stored.privateJwk;
  if (jwk?.kty !== "EC" || jwk.crv !== "P-256" || !jwk.d || !jwk.x || !jwk.y) {
    throw new Error("Cannot use the VAPID keys: not a P-256 private key");
  }
  const raw = fromB64u(stored.publicKey);
  if (
    raw.length !== 65 || b64u(raw.subarray(1, 33)) !== jwk.x || b64u(raw.subarray(33)) !== jwk.y
  ) {
    throw new Error("Cannot use the VAPID keys: the public key does not match the private one");
  }
  const { key_ops: _ops, ...clean } = jwk;
  const privateKey = await crypto.subtle.importKey(
    "jwk",
    clean,
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    ["sign"],
  );
  return { publicKey: stored.publicKey, privateKey };
}

/** Signs `claims` as an ES256 JWT (the signature is the 64-byte `r | s`, RFC 7518 §3.4). */
export async function signVapidJwt(claims: VapidClaims, keys: VapidKeys): Promise<string> {
  const input = `${JWT_HEADER}.${b64u(enc.encode(JSON.stringify(claims)))}`;
  const sig = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    keys.privateKey,
    enc.encode(input),
  );
  return `${input}.${b64u(new Uint8Array(sig))}`;
}

/** The `Authorization` header of a push request to `endpoint`. */
export async function vapidAuthorization(
  endpoint: string,
  subject: string,
  keys: VapidKeys,
  nowSeconds: number,
): Promise<string> {
  const jwt = await signVapidJwt(vapidClaims(endpoint, subject, nowSeconds), keys);
  return `vapid t=${jwt}, k=${keys.publicKey}`;
}

/** What a push service reads from a VAPID `Authorization` header. */
export interface VerifiedVapid {
  readonly claims: VapidClaims & Record<string, unknown>;
  readonly publicKey: string;
}

/**
 * Checks a VAPID header as a push service does: the scheme, the ES256 signature with `k`, the
 * header's `alg`. Resolves to the claims and the key, or a reason string. (Tests, and anyone
 * writing a push service.)
 */
export async function verifyVapidAuthorization(
  header: string | null,
): Promise<VerifiedVapid | string> {
  const m = /^vapid t=([\w-]+\.[\w-]+\.[\w-]+), k=([\w-]+)$/.exec(header ?? "");
  if (!m) return `not a vapid header: ${JSON.stringify(header)}`;
  const [h, c, s] = m[1]!.split(".") as [string, string, string];
  const publicKey = m[2]!;
  try {
    const head = JSON.parse(new TextDecoder().decode(fromB64u(h)));
    if (head.alg !== "ES256" || head.typ !== "JWT") return `header ${JSON.stringify(head)}`;
    const key = await crypto.subtle.importKey(
      "raw",
      fromB64u(publicKey),
      { name: "ECDSA", namedCurve: "P-256" },
      false,
      ["verify"],
    );
    const ok = await crypto.subtle.verify(
      { name: "ECDSA", hash: "SHA-256" },
      key,
      fromB64u(s),
      enc.encode(`${h}.${c}`),
    );
    if (!ok) return "bad signature";
    return { claims: JSON.parse(new TextDecoder().decode(fromB64u(c))), publicKey };
  } catch (e) {
    return `unreadable: ${e instanceof Error ? e.message : String(e)}`;
  }
}
