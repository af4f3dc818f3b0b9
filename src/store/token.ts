/**
 * Phone tokens: the secret a phone presents at `login` (phone-protocol.md, order 1).
 *
 * A token is issued once, when a uid is bound to a room; only its SHA-256 hash is stored, and a
 * presented token is checked against that hash in constant time.
 *
 * @module
 */

/** Random bytes in a token (256 bits). */
export const TOKEN_BYTES = 32;

const encoder = new TextEncoder();

/** Base64url without padding (RFC 4648 §5). */
function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * A new random token: {@linkcode TOKEN_BYTES} bytes from the system CSPRNG, base64url without
 * padding (43 characters).
 */
export function newToken(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(TOKEN_BYTES)));
}

/** The SHA-256 of a token's UTF-8 bytes, as 64 lowercase hex digits. */
export async function hashToken(token: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(token)));
  let hex = "";
  for (const b of digest) hex += b.toString(16).padStart(2, "0");
  return hex;
}

/**
 * True when `token` hashes to `storedHash`. The comparison runs over the whole computed hash
 * without an early exit, and a length difference is folded into the result instead of being
 * tested first, so the time taken does not reveal how much of the hash matched.
 */
export async function tokenMatches(token: string, storedHash: string): Promise<boolean> {
  const actual = await hashToken(token);
  // charCodeAt past the end is NaN, which `^` treats as 0: no branch on the stored length.
  let diff = actual.length ^ storedHash.length;
  for (let i = 0; i < actual.length; i++) {
    diff |= actual.charCodeAt(i) ^ storedHash.charCodeAt(i);
  }
  return diff === 0;
}
