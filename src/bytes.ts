/**
 * Plain byte helpers. Pure, no Deno API: any layer may import this (protocol, call machine,
 * crypto, HTTP).
 *
 * @module
 */

/**
 * Concatenates byte arrays into one new array (over a plain ArrayBuffer, as WebCrypto takes it).
 * The parts are copied, never aliased.
 *
 * @example
 * ```ts
 * concatBytes(Uint8Array.of(1), Uint8Array.of(2, 3)); // Uint8Array [1, 2, 3]
 * ```
 */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
