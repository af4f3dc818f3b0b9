/**
 * Web Push message encryption, RFC 8291 (the `aes128gcm` content coding of RFC 8188, one
 * record), with WebCrypto only: ECDH P-256 between a fresh key pair of the sender and the
 * subscription's `p256dh`, HKDF-SHA-256 keyed by the subscription's `auth` secret, AES-128-GCM.
 *
 * Body layout (RFC 8188 §2.1, RFC 8291 §4):
 *
 * ```
 * salt (16) | rs (4, big-endian, 4096) | idlen (1, 65) | keyid (65: the sender's public key)
 *   | AES-GCM(plaintext | 0x02 | zero padding) with its 16-byte tag
 * ```
 *
 * {@linkcode decryptWebPush} is the user agent's side: the tests' push service reads what was
 * sent with it, with the subscription keys the test made.
 *
 * @module
 */

import { concatBytes } from "../bytes.ts";

/** The record size the gateway writes (one record holds the whole message). */
export const RECORD_SIZE = 4096;

/** Largest plaintext of one push message: a record less the delimiter and the GCM tag. */
export const MAX_PLAINTEXT = RECORD_SIZE - 1 - 16 - 86;

const HEADER_BYTES = 16 + 4 + 1 + 65;
const enc = new TextEncoder();

/** base64url without padding (how subscriptions and VAPID carry keys). */
export function b64u(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

/** Decodes base64url (padding optional). @throws {SyntaxError} when it is not base64url. */
export function fromB64u(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.fromBase64(text, { alphabet: "base64url" }) as Uint8Array<ArrayBuffer>;
}

async function hkdf(
  salt: Uint8Array<ArrayBuffer>,
  ikm: Uint8Array<ArrayBuffer>,
  info: Uint8Array<ArrayBuffer>,
  bytes: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt, info },
    key,
    bytes * 8,
  );
  return new Uint8Array(bits);
}

/** Imports an uncompressed P-256 point (65 bytes, `0x04 | x | y`) as an ECDH public key. */
export function importP256Public(raw: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw, { name: "ECDH", namedCurve: "P-256" }, true, []);
}

let probe: Promise<CryptoKeyPair> | undefined;

/**
 * True when `raw` is an uncompressed point on P-256 (a browser's `p256dh`). WebCrypto's import
 * alone does not check the curve equation here; a key agreement with a throwaway key does.
 */
export async function isP256Public(raw: Uint8Array<ArrayBuffer>): Promise<boolean> {
  if (raw.length !== 65 || raw[0] !== 4) return false;
  probe ??= crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, [
    "deriveBits",
  ]) as Promise<CryptoKeyPair>;
  try {
    const key = await importP256Public(raw);
    await crypto.subtle.deriveBits({ name: "ECDH", public: key }, (await probe).privateKey, 256);
    return true;
  } catch {
    return false;
  }
}

/** An ECDH P-256 private key from its 32-byte scalar and its public point (tests, vectors). */
export function importP256Private(
  d: Uint8Array,
  publicRaw: Uint8Array,
  usage: "ECDH" | "ECDSA" = "ECDH",
): Promise<CryptoKey> {
  const jwk: JsonWebKey = {
    kty: "EC",
    crv: "P-256",
    d: b64u(d),
    x: b64u(publicRaw.subarray(1, 33)),
    y: b64u(publicRaw.subarray(33, 65)),
    ext: true,
  };
  return crypto.subtle.importKey(
    "jwk",
    jwk,
    { name: usage, namedCurve: "P-256" },
    true,
    usage === "ECDH" ? ["deriveBits"] : ["sign"],
  );
}

/** The CEK and nonce of one message (RFC 8291 §3.4, RFC 8188 §2.2–2.3). */
async function keys(
  ecdhSecret: Uint8Array<ArrayBuffer>,
  auth: Uint8Array<ArrayBuffer>,
  uaPublic: Uint8Array,
  asPublic: Uint8Array,
  salt: Uint8Array<ArrayBuffer>,
): Promise<{ cek: CryptoKey; nonce: Uint8Array<ArrayBuffer> }> {
  const keyInfo = concatBytes(enc.encode("WebPush: info\0"), uaPublic, asPublic);
  const ikm = await hkdf(auth, ecdhSecret, keyInfo, 32);
  const cekBytes = await hkdf(salt, ikm, enc.encode("Content-Encoding: aes128gcm\0"), 16);
  const nonce = await hkdf(salt, ikm, enc.encode("Content-Encoding: nonce\0"), 12);
  const cek = await crypto.subtle.importKey("raw", cekBytes, "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
  return { cek, nonce };
}

/** A subscription's keys, as `PushSubscription.toJSON().keys` gives them (base64url). */
export interface SubscriptionKeys {
  /** The user agent's ECDH P-256 public key, uncompressed (65 bytes). */
  readonly p256dh: string;
  /** The 16-byte authentication secret. */
  readonly auth: string;
}

/** Fixed inputs, for the RFC's example; a real message gets fresh ones. */
export interface EncryptFixed {
  readonly salt?: Uint8Array<ArrayBuffer>;
  /** The sender's ECDH key pair (its public key raw, 65 bytes). */
  readonly sender?: { readonly privateKey: CryptoKey; readonly publicRaw: Uint8Array };
}

/**
 * Encrypts `plaintext` for a subscription: the `aes128gcm` body of the push request.
 *
 * @throws {RangeError} "Cannot encrypt the push message: …" for a bad key or a message longer
 *   than {@linkcode MAX_PLAINTEXT}.
 */
export async function encryptWebPush(
  plaintext: Uint8Array,
  sub: SubscriptionKeys,
  fixed: EncryptFixed = {},
): Promise<Uint8Array<ArrayBuffer>> {
  if (plaintext.length > MAX_PLAINTEXT) {
    throw new RangeError(
      `Cannot encrypt the push message: ${plaintext.length} bytes, at most ${MAX_PLAINTEXT}`,
    );
  }
  const uaPublic = fromB64u(sub.p256dh);
  const auth = fromB64u(sub.auth);
  if (uaPublic.length !== 65 || uaPublic[0] !== 4 || auth.length !== 16) {
    throw new RangeError(
      "Cannot encrypt the push message: p256dh must be a 65-byte point, auth 16 bytes",
    );
  }
  const uaKey = await importP256Public(uaPublic);
  let sender = fixed.sender;
  if (!sender) {
    const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
      "deriveBits",
    ]) as CryptoKeyPair;
    sender = {
      privateKey: pair.privateKey,
      publicRaw: new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey)),
    };
  }
  const salt = fixed.salt ?? crypto.getRandomValues(new Uint8Array(16));
  const secret = new Uint8Array(
    await crypto.subtle.deriveBits({ name: "ECDH", public: uaKey }, sender.privateKey, 256),
  );
  const { cek, nonce } = await keys(secret, auth, uaPublic, sender.publicRaw, salt);
  const padded = concatBytes(plaintext, new Uint8Array([2]));
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce }, cek, padded),
  );
  const header = new Uint8Array(HEADER_BYTES);
  header.set(salt, 0);
  new DataView(header.buffer).setUint32(16, RECORD_SIZE);
  header[20] = 65;
  header.set(sender.publicRaw, 21);
  return concatBytes(header, sealed);
}

/**
 * Decrypts an `aes128gcm` push body with the subscription's private key: what a browser does
 * (the tests' push service uses it).
 *
 * @throws {Error} "Cannot decrypt the push message: …" for a malformed body or a wrong key
 *   (the GCM tag does not match).
 */
export async function decryptWebPush(
  body: Uint8Array,
  ua: { readonly privateKey: CryptoKey; readonly publicRaw: Uint8Array; readonly auth: string },
): Promise<Uint8Array> {
  if (body.length < HEADER_BYTES + 17) {
    throw new Error(`Cannot decrypt the push message: ${body.length} bytes is too short`);
  }
  const salt = body.slice(0, 16);
  const rs = new DataView(body.buffer, body.byteOffset).getUint32(16);
  const idlen = body[20]!;
  if (idlen !== 65 || rs < 18 || body.length - 21 - idlen > rs) {
    throw new Error(`Cannot decrypt the push message: idlen ${idlen}, rs ${rs}`);
  }
  const asPublic = body.slice(21, 21 + idlen);
  const asKey = await importP256Public(asPublic);
  const secret = new Uint8Array(
    await crypto.subtle.deriveBits({ name: "ECDH", public: asKey }, ua.privateKey, 256),
  );
  const { cek, nonce } = await keys(secret, fromB64u(ua.auth), ua.publicRaw, asPublic, salt);
  let padded: Uint8Array;
  try {
    padded = new Uint8Array(
      await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce }, cek, body.slice(21 + idlen)),
    );
  } catch {
    throw new Error("Cannot decrypt the push message: the tag does not match (wrong keys?)");
  }
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (end < 0 || padded[end] !== 2) {
    throw new Error("Cannot decrypt the push message: no last-record delimiter (0x02)");
  }
  return padded.subarray(0, end);
}
